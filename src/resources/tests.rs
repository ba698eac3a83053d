//! Unit and property tests of the pure builders, from YAML fixtures (tests/fixtures/ and inline).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::rbac::v1::{PolicyRule, RoleBinding, Subject};
use kube::ResourceExt;
use proptest::prelude::*;

use super::*;
use crate::api::conditions::{
    INVALID_PROFILE, NAME_CONFLICT, NOT_ENTITLED, NOT_IN_PARTNER_NAMESPACE, QUOTA_EXCEEDED,
    UNKNOWN_BIZ_APP,
};
use crate::api::{
    EffectiveAdmin, EffectiveBizApp, Entitlements, Partner, Source, Tenant, TenantSpec,
};
use crate::config::{CatalogApp, Config};

const CONFIG: &str = include_str!("../../tests/fixtures/config-design.yaml");
const ACME: &str = include_str!("../../tests/fixtures/partner-acme.yaml");
const TEMPLATE: &str = include_str!("../../tests/fixtures/tenant-template.yaml");
const GLOBEX: &str = include_str!("../../tests/fixtures/tenant-globex.yaml");

fn cfg() -> Config {
    Config::from_yaml(CONFIG, "fixture").unwrap()
}

/// A catalog of four apps, two premium, for the inheritance tests.
fn cfg4() -> Config {
    Config::from_yaml(
        "catalog:\n  - {name: mail}\n  - {name: chat}\n  - {name: crm, premium: true}\n  - {name: analytics, premium: true}\n",
        "fixture",
    )
    .unwrap()
}

fn yaml<T: serde::de::DeserializeOwned>(text: &str) -> T {
    serde_saphyr::from_str(text).unwrap()
}

fn acme() -> Partner {
    yaml(ACME)
}

fn spec(text: &str) -> TenantSpec {
    yaml(text)
}

fn tenant_in(ns: &str, name: &str, spec_yaml: &str) -> Tenant {
    let mut t = Tenant::new(name, spec(spec_yaml));
    t.metadata.namespace = Some(ns.into());
    t
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn users(v: &[&str]) -> Option<Vec<Subject>> {
    Some(
        v.iter()
            .map(|n| Subject {
                api_group: Some("rbac.authorization.k8s.io".into()),
                kind: "User".into(),
                name: n.to_string(),
                namespace: None,
            })
            .collect(),
    )
}

fn app(name: &str, enabled: bool, source: Source) -> EffectiveBizApp {
    EffectiveBizApp {
        name: name.into(),
        enabled,
        source,
    }
}

// ---------------------------------------------------------------------------------------------
// names
// ---------------------------------------------------------------------------------------------

#[test]
fn names_follow_the_configured_prefixes() {
    let c = cfg();
    assert_eq!(names::partner_namespace(&c, "acme"), "partner-acme");
    assert_eq!(names::workspace(&c, "globex"), "tenant-globex");
    assert_eq!(
        names::partner_cluster_role("acme"),
        "partnerkit:partner:acme"
    );
    assert_eq!(names::profile("wifi"), "partnerkit-profile-wifi");
    let c = Config::from_yaml(
        "catalog: [{name: mail}]\nnamespacePrefixes: {partner: p-, tenant: ws-}\n",
        "x",
    )
    .unwrap();
    assert_eq!(names::partner_namespace(&c, "acme"), "p-acme");
    assert_eq!(names::workspace(&c, "globex"), "ws-globex");
}

#[test]
fn partner_of_namespace_reads_the_prefix() {
    let c = cfg();
    assert_eq!(
        partner_of_namespace(&c, "partner-acme").as_deref(),
        Some("acme")
    );
    assert_eq!(
        partner_of_namespace(&c, "partner-a-b-1").as_deref(),
        Some("a-b-1")
    );
    assert_eq!(partner_of_namespace(&c, "tenant-globex"), None);
    assert_eq!(partner_of_namespace(&c, "default"), None);
    assert_eq!(partner_of_namespace(&c, "partner-"), None);
    assert_eq!(partner_of_namespace(&c, "partner--x"), None);
    assert_eq!(
        partner_of_namespace(&c, &format!("partner-{}", "a".repeat(51))),
        None
    );
    assert_eq!(
        partner_of_namespace(&c, &format!("partner-{}", "a".repeat(50))),
        Some("a".repeat(50))
    );
}

#[test]
fn user_prefix_is_prepended() {
    assert_eq!(user(&cfg(), "a@b.example"), "a@b.example");
    let c = Config::from_yaml("catalog: [{name: mail}]\nuserPrefix: \"oidc:\"\n", "x").unwrap();
    assert_eq!(user(&c, "a@b.example"), "oidc:a@b.example");
}

// ---------------------------------------------------------------------------------------------
// Partner
// ---------------------------------------------------------------------------------------------

fn partner_desired_with(p: &Partner, c: &Config, invites: &[&str], tenants: u32) -> PartnerDesired {
    partner(&PartnerInputs {
        partner: p,
        config: c,
        accepted_invites: s(invites),
        tenant_count: tenants,
    })
}

fn partner_desired(p: &Partner, c: &Config, invites: &[&str]) -> PartnerDesired {
    partner_desired_with(p, c, invites, 2)
}

fn acme_owner() -> Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference> {
    vec![
        k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
            api_version: "partnerkit.io/v1alpha1".into(),
            kind: "Partner".into(),
            name: "acme".into(),
            uid: "0b5a4c1e-acme-4000-8000-000000000001".into(),
            controller: Some(true),
            block_owner_deletion: None, // no partners/finalizers update right needed
        },
    ]
}

fn partner_labels() -> BTreeMap<String, String> {
    map(&[
        ("app.kubernetes.io/managed-by", "partnerkit"),
        ("partnerkit.io/partner", "acme"),
    ])
}

#[test]
fn partner_namespace_shape() {
    let d = partner_desired(&acme(), &cfg(), &[]);
    assert_eq!(d.namespace.metadata.name.as_deref(), Some("partner-acme"));
    assert_eq!(d.namespace.metadata.labels, Some(partner_labels()));
    assert_eq!(
        d.namespace.metadata.owner_references, None,
        "the partner namespace holds user objects: no GC cascade"
    );
    assert_eq!(d.namespace.metadata.namespace, None);
}

#[test]
fn partner_template_shape() {
    let d = partner_desired(&acme(), &cfg(), &[]);
    let t = &d.template;
    assert_eq!(t.name_any(), "template");
    assert_eq!(t.namespace().as_deref(), Some("partner-acme"));
    assert_eq!(t.spec.display_name, "Acme Reseller (Template)");
    assert!(t.spec.biz_apps.is_empty() && t.spec.profiles.is_empty() && t.spec.admins.is_empty());
    let labels = t.labels();
    assert_eq!(
        labels.get("partnerkit.io/template").map(String::as_str),
        Some("true")
    );
    assert_eq!(
        labels.get("partnerkit.io/partner").map(String::as_str),
        Some("acme")
    );
    assert_eq!(t.metadata.owner_references, None);
    let json = serde_json::to_value(t).unwrap();
    assert_eq!(json["apiVersion"], "partnerkit.io/v1alpha1");
    assert_eq!(json["kind"], "Tenant");
}

#[test]
fn partner_admins_binding_shape() {
    let d = partner_desired(&acme(), &cfg(), &["dave@acme.example"]);
    let rb = &d.admins_binding;
    assert_eq!(
        rb.metadata.name.as_deref(),
        Some("partnerkit-partner-admins")
    );
    assert_eq!(rb.metadata.namespace.as_deref(), Some("partner-acme"));
    assert_eq!(rb.metadata.labels, Some(partner_labels()));
    assert_eq!(rb.metadata.owner_references, Some(acme_owner()));
    assert_eq!(rb.role_ref.kind, "ClusterRole");
    assert_eq!(rb.role_ref.name, "partnerkit-partner-admin");
    assert_eq!(rb.role_ref.api_group, "rbac.authorization.k8s.io");
    assert_eq!(
        rb.subjects,
        users(&[
            "alice@acme.example",
            "carol@acme.example",
            "dave@acme.example"
        ])
    );
}

#[test]
fn partner_cluster_role_and_binding_shape() {
    let d = partner_desired(&acme(), &cfg(), &[]);
    let cr = &d.cluster_role;
    assert_eq!(cr.metadata.name.as_deref(), Some("partnerkit:partner:acme"));
    assert_eq!(cr.metadata.namespace, None);
    assert_eq!(cr.metadata.owner_references, Some(acme_owner()));
    let rule = |g: &str, r: &str, verbs: &[&str], names: &[&str]| PolicyRule {
        api_groups: Some(s(&[g])),
        resources: Some(s(&[r])),
        resource_names: Some(s(names)),
        verbs: s(verbs),
        non_resource_urls: None,
    };
    assert_eq!(
        cr.rules,
        Some(vec![
            rule(
                "partnerkit.io",
                "partners",
                &["get", "list", "watch", "patch"],
                &["acme"]
            ),
            rule("partnerkit.io", "partners/status", &["get"], &["acme"]),
            rule("", "namespaces", &["get"], &["partner-acme"]),
        ])
    );
    // It does not grow with the partner's tenants (workspaces are readable through the
    // bindings in them).
    assert_eq!(
        partner_desired_with(&acme(), &cfg(), &[], 100_000).cluster_role,
        d.cluster_role
    );
    let crb = &d.cluster_role_binding;
    assert_eq!(
        crb.metadata.name.as_deref(),
        Some("partnerkit:partner:acme")
    );
    assert_eq!(crb.metadata.owner_references, Some(acme_owner()));
    assert_eq!(crb.role_ref.name, "partnerkit:partner:acme");
    assert_eq!(crb.role_ref.kind, "ClusterRole");
    assert_eq!(
        crb.subjects,
        users(&["alice@acme.example", "carol@acme.example"])
    );
}

#[test]
fn partner_without_uid_has_no_owner_references() {
    let mut p = acme();
    p.metadata.uid = None;
    let d = partner_desired(&p, &cfg(), &[]);
    assert_eq!(d.admins_binding.metadata.owner_references, None);
    assert_eq!(d.cluster_role.metadata.owner_references, None);
}

#[test]
fn partner_effective_admins_are_spec_union_invites_sorted_deduplicated() {
    let d = partner_desired(
        &acme(),
        &cfg(),
        &[
            "zed@acme.example",
            "alice@acme.example",
            "bob@acme.example",
            "zed@acme.example",
        ],
    );
    assert_eq!(
        d.effective_admins,
        s(&[
            "alice@acme.example",
            "bob@acme.example",
            "carol@acme.example",
            "zed@acme.example"
        ])
    );
    assert_eq!(d.status.admins, d.effective_admins);
    assert_eq!(
        d.cluster_role_binding.subjects,
        users(&[
            "alice@acme.example",
            "bob@acme.example",
            "carol@acme.example",
            "zed@acme.example"
        ])
    );
}

#[test]
fn partner_subjects_carry_the_user_prefix() {
    let c = Config::from_yaml("catalog: [{name: mail}]\nuserPrefix: \"oidc:\"\n", "x").unwrap();
    let d = partner_desired(&acme(), &c, &["bob@acme.example"]);
    let expected = users(&[
        "oidc:alice@acme.example",
        "oidc:bob@acme.example",
        "oidc:carol@acme.example",
    ]);
    assert_eq!(d.admins_binding.subjects, expected);
    assert_eq!(d.cluster_role_binding.subjects, expected);
    assert_eq!(
        d.effective_admins,
        s(&[
            "alice@acme.example",
            "bob@acme.example",
            "carol@acme.example"
        ]),
        "status keeps e-mails"
    );
}

#[test]
fn partner_branding_page_is_its_own_branding() {
    let d = partner_desired(&acme(), &cfg(), &[]);
    assert_eq!(
        d.branding.metadata.name.as_deref(),
        Some("partnerkit-branding")
    );
    assert_eq!(
        d.branding.metadata.namespace.as_deref(),
        Some("partner-acme")
    );
    assert_eq!(d.branding.metadata.owner_references, Some(acme_owner()));
    assert_eq!(
        d.branding.data,
        Some(map(&[
            ("partner", "acme"),
            ("partnerDisplayName", "Acme Reseller"),
            ("logoUrl", "https://acme.example/logo.png"),
            ("primaryColor", "#0055ff"),
            ("supportEmail", "help@acme.example"),
        ]))
    );
    assert!(d.branding_applied);
}

#[test]
fn partner_branding_page_falls_back_per_key_and_ignores_entitlement() {
    let mut p = acme();
    p.spec.entitlements.branding = false;
    p.spec.branding = Some(yaml("primaryColor: \"#112233\"\n"));
    let d = partner_desired(&p, &cfg(), &[]);
    assert_eq!(
        d.branding.data,
        Some(map(&[
            ("partner", "acme"),
            ("partnerDisplayName", "Acme Reseller"),
            ("logoUrl", "https://platform.example/logo.png"),
            ("primaryColor", "#112233"),
            ("supportUrl", "https://help.platform.example"),
        ]))
    );
    assert!(!d.branding_applied, "not entitled");
    assert!(!d.status.branding_applied);
}

#[test]
fn partner_branding_applied_needs_entitlement_and_branding() {
    let mut p = acme();
    p.spec.branding = None;
    let d = partner_desired(&p, &cfg(), &[]);
    assert!(!d.branding_applied, "entitled but nothing set");
    assert_eq!(
        d.branding
            .data
            .as_ref()
            .unwrap()
            .get("logoUrl")
            .map(String::as_str),
        Some("https://platform.example/logo.png")
    );
}

#[test]
fn partner_branding_without_any_default_omits_keys() {
    let mut p = acme();
    p.spec.branding = None;
    let c = Config::from_yaml("catalog: [{name: mail}]\n", "x").unwrap();
    let d = partner_desired(&p, &c, &[]);
    assert_eq!(
        d.branding.data,
        Some(map(&[
            ("partner", "acme"),
            ("partnerDisplayName", "Acme Reseller")
        ]))
    );
}

#[test]
fn partner_status_values() {
    let d = partner_desired(&acme(), &cfg(), &[]);
    assert_eq!(d.status.namespace.as_deref(), Some("partner-acme"));
    assert_eq!(d.status.tenants, 2);
    assert!(d.status.conditions.is_empty() && d.status.observed_generation.is_none());
}

#[test]
fn partner_builder_is_deterministic() {
    let (p, c) = (acme(), cfg());
    assert_eq!(
        partner_desired(&p, &c, &["x@y.example"]),
        partner_desired(&p, &c, &["x@y.example"])
    );
}

// ---------------------------------------------------------------------------------------------
// effective_biz_apps
// ---------------------------------------------------------------------------------------------

fn biz(ent: &str, template: Option<&str>, tenant: &str) -> Result<Vec<EffectiveBizApp>, Refusal> {
    let c = cfg4();
    let ent: Entitlements = yaml(ent);
    let template = template.map(spec);
    effective_biz_apps(&c.catalog, &ent, template.as_ref(), &spec(tenant))
}

fn enabled_of(apps: &[EffectiveBizApp], name: &str) -> (bool, Source) {
    let a = apps.iter().find(|a| a.name == name).unwrap();
    (a.enabled, a.source)
}

const T0: &str = "displayName: T\n";

#[test]
fn catalog_defaults_non_premium_on_premium_off_sorted_by_name() {
    let apps = biz("{}", None, T0).unwrap();
    assert_eq!(
        apps,
        vec![
            app("analytics", false, Source::Catalog),
            app("chat", true, Source::Catalog),
            app("crm", false, Source::Catalog),
            app("mail", true, Source::Catalog),
        ]
    );
}

#[test]
fn template_false_turns_a_non_premium_app_off() {
    let apps = biz("{}", Some("displayName: tpl\nbizApps: {mail: false}\n"), T0).unwrap();
    assert_eq!(enabled_of(&apps, "mail"), (false, Source::Template));
    assert_eq!(enabled_of(&apps, "chat"), (true, Source::Catalog));
}

#[test]
fn tenant_true_wins_over_template_false() {
    let apps = biz(
        "{}",
        Some("displayName: tpl\nbizApps: {mail: false}\n"),
        "displayName: T\nbizApps: {mail: true}\n",
    )
    .unwrap();
    assert_eq!(enabled_of(&apps, "mail"), (true, Source::Tenant));
}

#[test]
fn tenant_false_wins_over_template_true() {
    let apps = biz(
        "{}",
        Some("displayName: tpl\nbizApps: {crm: true}\n"),
        "displayName: T\nbizApps: {crm: false, chat: false}\n",
    )
    .unwrap();
    assert_eq!(enabled_of(&apps, "crm"), (false, Source::Tenant));
    assert_eq!(enabled_of(&apps, "chat"), (false, Source::Tenant));
}

#[test]
fn premium_needs_template_or_tenant_true() {
    let apps = biz(
        "{}",
        Some("displayName: tpl\nbizApps: {crm: true}\n"),
        "displayName: T\nbizApps: {analytics: true}\n",
    )
    .unwrap();
    assert_eq!(enabled_of(&apps, "crm"), (true, Source::Template));
    assert_eq!(enabled_of(&apps, "analytics"), (true, Source::Tenant));
}

#[test]
fn entitlements_biz_apps_none_means_every_premium_app() {
    let apps = biz(
        "{branding: false}",
        None,
        "displayName: T\nbizApps: {crm: true, analytics: true}\n",
    )
    .unwrap();
    assert_eq!(enabled_of(&apps, "crm"), (true, Source::Tenant));
    assert_eq!(enabled_of(&apps, "analytics"), (true, Source::Tenant));
}

#[test]
fn entitlements_biz_apps_empty_means_none() {
    let e = biz(
        "{bizApps: []}",
        None,
        "displayName: T\nbizApps: {crm: true}\n",
    )
    .unwrap_err();
    assert_eq!(
        e,
        Refusal::new(
            NOT_ENTITLED,
            "premium BizApps the partner is not entitled to: crm"
        )
    );
    // Setting it false is fine, and non-premium apps need no entitlement.
    let apps = biz(
        "{bizApps: []}",
        None,
        "displayName: T\nbizApps: {crm: false, mail: true}\n",
    )
    .unwrap();
    assert_eq!(enabled_of(&apps, "crm"), (false, Source::Tenant));
    assert_eq!(enabled_of(&apps, "mail"), (true, Source::Tenant));
}

#[test]
fn entitlements_biz_apps_list_entitles_only_those() {
    let apps = biz(
        "{bizApps: [crm]}",
        None,
        "displayName: T\nbizApps: {crm: true}\n",
    )
    .unwrap();
    assert_eq!(enabled_of(&apps, "crm"), (true, Source::Tenant));
    let e = biz(
        "{bizApps: [crm]}",
        None,
        "displayName: T\nbizApps: {crm: true, analytics: true}\n",
    )
    .unwrap_err();
    assert_eq!(e.reason, NOT_ENTITLED);
    assert_eq!(
        e.message,
        "premium BizApps the partner is not entitled to: analytics"
    );
}

#[test]
fn not_entitled_names_all_of_them_sorted() {
    let e = biz(
        "{bizApps: []}",
        None,
        "displayName: T\nbizApps: {crm: true, analytics: true}\n",
    )
    .unwrap_err();
    assert_eq!(
        e.message,
        "premium BizApps the partner is not entitled to: analytics, crm"
    );
}

#[test]
fn template_premium_without_entitlement_is_off_with_source_template() {
    let apps = biz(
        "{bizApps: []}",
        Some("displayName: tpl\nbizApps: {crm: true}\n"),
        T0,
    )
    .unwrap();
    assert_eq!(enabled_of(&apps, "crm"), (false, Source::Template));
}

#[test]
fn unknown_biz_apps_are_named_sorted() {
    let e = biz(
        "{}",
        None,
        "displayName: T\nbizApps: {zzz: true, mail: true, aaa: false}\n",
    )
    .unwrap_err();
    assert_eq!(
        e,
        Refusal::new(
            UNKNOWN_BIZ_APP,
            "BizApps not in the platform catalog: aaa, zzz"
        )
    );
}

#[test]
fn unknown_wins_over_not_entitled_and_names_both() {
    let e = biz(
        "{bizApps: []}",
        None,
        "displayName: T\nbizApps: {nope: true, crm: true}\n",
    )
    .unwrap_err();
    assert_eq!(e.reason, UNKNOWN_BIZ_APP);
    assert_eq!(
        e.message,
        "BizApps not in the platform catalog: nope; premium BizApps the partner is not entitled to: crm"
    );
}

#[test]
fn unknown_keys_of_the_template_are_ignored_for_inheriting_tenants() {
    let apps = biz(
        "{}",
        Some("displayName: tpl\nbizApps: {retired: true}\n"),
        T0,
    )
    .unwrap();
    assert_eq!(apps.len(), 4);
}

// ---------------------------------------------------------------------------------------------
// effective_profiles / effective_admins
// ---------------------------------------------------------------------------------------------

#[test]
fn profiles_merge_per_key_with_sources() {
    let template: Tenant = yaml(TEMPLATE);
    let globex: Tenant = yaml(GLOBEX);
    let p = effective_profiles(Some(&template.spec), &globex.spec);
    let names: Vec<&str> = p.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, vec!["printer", "vpn", "wifi"]);
    let wifi = &p[2];
    assert_eq!(wifi.data, map(&[("security", "wpa3"), ("ssid", "globex")]));
    assert_eq!(
        wifi.sources,
        BTreeMap::from([
            ("security".into(), Source::Tenant),
            ("ssid".into(), Source::Tenant)
        ])
    );
    assert_eq!(p[0].data, map(&[("model", "laser")]));
    assert_eq!(p[0].sources.get("model"), Some(&Source::Template));
    assert_eq!(p[1].sources.get("gateway"), Some(&Source::Tenant));
}

#[test]
fn profiles_merge_keys_tenant_wins_template_fills_in() {
    let template =
        spec("displayName: tpl\nprofiles: {wifi: {ssid: acme, security: wpa2, band: '5'}}\n");
    let tenant = spec("displayName: T\nprofiles: {wifi: {ssid: globex}}\n");
    let p = effective_profiles(Some(&template), &tenant);
    assert_eq!(p.len(), 1);
    assert_eq!(
        p[0].data,
        map(&[("band", "5"), ("security", "wpa2"), ("ssid", "globex")])
    );
    assert_eq!(
        p[0].sources,
        BTreeMap::from([
            ("band".into(), Source::Template),
            ("security".into(), Source::Template),
            ("ssid".into(), Source::Tenant)
        ])
    );
    assert!(effective_profiles(None, &spec(T0)).is_empty());
    let only_tenant = effective_profiles(None, &tenant);
    assert_eq!(only_tenant[0].sources.get("ssid"), Some(&Source::Tenant));
}

#[test]
fn admins_fall_back_to_the_partner() {
    let partner_admins = s(&["carol@acme.example", "alice@acme.example"]);
    assert_eq!(
        effective_admins(&spec(T0), &partner_admins),
        vec![
            EffectiveAdmin {
                email: "alice@acme.example".into(),
                source: Source::Partner
            },
            EffectiveAdmin {
                email: "carol@acme.example".into(),
                source: Source::Partner
            },
        ]
    );
    let own = spec(
        "displayName: T\nadmins: [{email: z@g.example}, {email: b@g.example}, {email: z@g.example}]\n",
    );
    assert_eq!(
        effective_admins(&own, &partner_admins),
        vec![
            EffectiveAdmin {
                email: "b@g.example".into(),
                source: Source::Tenant
            },
            EffectiveAdmin {
                email: "z@g.example".into(),
                source: Source::Tenant
            },
        ]
    );
}

#[test]
fn profile_names_and_keys_are_checked_as_the_admission_policy_does() {
    for ok in ["wifi", "a", "vpn-2", &"p".repeat(40)] {
        assert!(is_profile_name(ok), "{ok}");
    }
    for bad in ["", "Wi-Fi", "wi fi", "-wifi", "wifi-", &"p".repeat(41)] {
        assert!(!is_profile_name(bad), "{bad}");
    }
    for ok in ["ssid", "a.b_c-1", ".hidden", "A", &"k".repeat(253)] {
        assert!(is_config_map_key(ok), "{ok}");
    }
    for bad in ["", ".", "..", "..x", "bad key", "k/v", &"k".repeat(254)] {
        assert!(!is_config_map_key(bad), "{bad}");
    }
    assert_eq!(
        check_profiles(&spec("displayName: T\nprofiles: {wifi: {ssid: x}}\n")),
        Ok(())
    );
    let e = check_profiles(&spec(
        "displayName: T\nprofiles: {Wi Fi: {a: b}, vpn: {bad key: x, ok: y}, 'X': {'..': z}}\n",
    ))
    .unwrap_err();
    assert_eq!(e.reason, INVALID_PROFILE);
    assert_eq!(
        e.message,
        "spec.profiles: Wi Fi, X must be DNS labels of at most 40 characters; spec.profiles: keys X..., vpn.bad key must be ConfigMap keys (alphanumerics, '-', '_', '.')"
    );
}

#[test]
fn profile_data_over_the_size_bound_is_refused_and_never_echoed_or_inherited() {
    let max = crate::api::MAX_PROFILE_BYTES;
    let sized = |n: usize| {
        let mut spec = spec("displayName: T\n");
        // "blob" + "data" + the value: n bytes in all.
        spec.profiles.insert(
            "blob".into(),
            BTreeMap::from([("data".to_string(), "x".repeat(n - 8))]),
        );
        spec
    };
    assert_eq!(profile_bytes(&sized(max)), max);
    assert_eq!(check_profiles(&sized(max)), Ok(()));
    let e = check_profiles(&sized(max + 1)).unwrap_err();
    assert_eq!(e.reason, INVALID_PROFILE);
    assert_eq!(
        e.message,
        format!(
            "spec.profiles: {} bytes of profile names, keys and values, at most {max}",
            max + 1
        )
    );

    let w = world();
    let mut big = tenant_in("partner-acme", "globex", "displayName: G\n");
    big.spec = sized(max + 1);
    let plan = tenant(&w.inputs(&big));
    assert_eq!(plan.ready.unwrap_err().reason, INVALID_PROFILE);
    assert!(
        plan.status.effective_profiles.is_empty(),
        "not echoed into status"
    );
    assert!(plan.desired.is_none());

    // An oversized template passes none of its profiles on.
    let template = sized(max + 1);
    let own = spec("displayName: T\nprofiles: {vpn: {gw: g}}\n");
    let names: Vec<String> = effective_profiles(Some(&template), &own)
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, vec!["vpn".to_string()]);
}

#[test]
fn a_templates_invalid_profiles_are_left_out_of_inheriting_tenants_and_refuse_the_template() {
    let template =
        spec("displayName: tpl\nprofiles: {Bad Name: {a: b}, wifi: {ssid: acme, 'bad key': x}}\n");
    let own = spec("displayName: T\nprofiles: {vpn: {gw: g}}\n");
    let p = effective_profiles(Some(&template), &own);
    let names: Vec<&str> = p.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, vec!["vpn", "wifi"]);
    assert_eq!(p[1].data, map(&[("ssid", "acme")]));

    let w = world();
    let mut tpl = tenant_in(
        "partner-acme",
        "template",
        "displayName: tpl\nprofiles: {Bad Name: {a: b}}\n",
    );
    tpl.metadata.labels = Some(BTreeMap::from([(
        "partnerkit.io/template".into(),
        "true".into(),
    )]));
    let plan = tenant(&w.inputs(&tpl));
    assert_eq!(plan.ready.unwrap_err().reason, INVALID_PROFILE);

    let bad = tenant_in(
        "partner-acme",
        "globex",
        "displayName: G\nprofiles: {wifi: {'bad key': x}}\n",
    );
    let plan = tenant(&w.inputs(&bad));
    let e = plan.ready.unwrap_err();
    assert_eq!(e.reason, INVALID_PROFILE);
    assert!(e.message.contains("wifi.bad key"), "{}", e.message);
    assert!(plan.desired.is_none(), "nothing is materialized");
}

// ---------------------------------------------------------------------------------------------
// tenant()
// ---------------------------------------------------------------------------------------------

struct World {
    config: Config,
    partner: Partner,
    partner_admins: Vec<String>,
    template: Tenant,
}

fn world() -> World {
    World {
        config: cfg(),
        partner: acme(),
        partner_admins: s(&["alice@acme.example", "carol@acme.example"]),
        template: yaml(TEMPLATE),
    }
}

impl World {
    fn inputs<'a>(&'a self, t: &'a Tenant) -> TenantInputs<'a> {
        TenantInputs {
            tenant: t,
            config: &self.config,
            partner: Some(&self.partner),
            partner_admins: &self.partner_admins,
            template: Some(&self.template),
            workspace: WorkspaceState::Missing,
            name_taken_by: None,
            retained_by: None,
            older_tenants: 0,
        }
    }
}

fn cm<'a>(d: &'a TenantDesired, name: &str) -> &'a ConfigMap {
    d.config_maps
        .iter()
        .find(|c| c.metadata.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no ConfigMap {name}"))
}

fn rb<'a>(d: &'a TenantDesired, name: &str) -> &'a RoleBinding {
    d.role_bindings
        .iter()
        .find(|c| c.metadata.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no RoleBinding {name}"))
}

fn workspace_labels(extra: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut l = map(&[
        ("app.kubernetes.io/managed-by", "partnerkit"),
        ("partnerkit.io/partner", "acme"),
        ("partnerkit.io/tenant", "globex"),
    ]);
    l.extend(map(extra));
    l
}

#[test]
fn tenant_globex_materializes_its_workspace() {
    let w = world();
    let globex: Tenant = yaml(GLOBEX);
    let plan = tenant(&w.inputs(&globex));
    assert_eq!(plan.ready, Ok(()));
    let d = plan.desired.as_ref().unwrap();
    // Catalog mail (not premium) + crm (premium, entitled by [crm]); template: mail off, crm on;
    // globex: mail on.
    assert_eq!(
        plan.status.effective_biz_apps,
        vec![
            app("crm", true, Source::Template),
            app("mail", true, Source::Tenant)
        ]
    );
    assert_eq!(plan.status.workspace.as_deref(), Some("tenant-globex"));
    assert!(plan.status.conditions.is_empty() && plan.status.observed_generation.is_none());

    assert_eq!(d.namespace.metadata.name.as_deref(), Some("tenant-globex"));
    assert_eq!(
        d.namespace.metadata.labels,
        Some(workspace_labels(&[
            ("bizapps.partnerkit.io/crm", "enabled"),
            ("bizapps.partnerkit.io/mail", "enabled")
        ]))
    );

    let names: Vec<&str> = d
        .config_maps
        .iter()
        .map(|c| c.metadata.name.as_deref().unwrap())
        .collect();
    assert_eq!(
        names,
        vec![
            "partnerkit-bizapps",
            "partnerkit-branding",
            "partnerkit-profile-printer",
            "partnerkit-profile-vpn",
            "partnerkit-profile-wifi"
        ]
    );
    assert_eq!(
        cm(d, "partnerkit-bizapps").data,
        Some(map(&[("crm", "true"), ("mail", "true")]))
    );
    assert_eq!(
        cm(d, "partnerkit-profile-wifi").data,
        Some(map(&[("security", "wpa3"), ("ssid", "globex")]))
    );
    assert_eq!(
        cm(d, "partnerkit-profile-printer").data,
        Some(map(&[("model", "laser")]))
    );

    let tenant_admins = rb(d, "partnerkit-tenant-admins");
    assert_eq!(tenant_admins.role_ref.name, "partnerkit-tenant-admin");
    assert_eq!(tenant_admins.subjects, users(&["bob@globex.example"]));
    let partner_admins = rb(d, "partnerkit-partner-admins");
    assert_eq!(partner_admins.role_ref.name, "partnerkit-tenant-admin");
    assert_eq!(
        partner_admins.subjects,
        users(&["alice@acme.example", "carol@acme.example"])
    );

    for meta in d
        .config_maps
        .iter()
        .map(|c| &c.metadata)
        .chain(d.role_bindings.iter().map(|r| &r.metadata))
    {
        assert_eq!(meta.namespace.as_deref(), Some("tenant-globex"));
        assert_eq!(meta.labels, Some(workspace_labels(&[])), "{:?}", meta.name);
        assert_eq!(
            meta.owner_references, None,
            "no owner references across namespaces"
        );
    }
    assert_eq!(d.namespace.metadata.owner_references, None);
}

#[test]
fn tenant_bizapps_configmap_has_every_catalog_app() {
    let w = World {
        config: cfg4(),
        ..world()
    };
    let t = tenant_in(
        "partner-acme",
        "globex",
        "displayName: G\ninheritFromTemplate: false\nbizApps: {chat: false}\n",
    );
    let plan = tenant(&w.inputs(&t));
    let d = plan.desired.unwrap();
    assert_eq!(
        cm(&d, "partnerkit-bizapps").data,
        Some(map(&[
            ("analytics", "false"),
            ("chat", "false"),
            ("crm", "false"),
            ("mail", "true")
        ]))
    );
    assert_eq!(
        d.namespace.metadata.labels,
        Some(workspace_labels(&[(
            "bizapps.partnerkit.io/mail",
            "enabled"
        )]))
    );
}

#[test]
fn tenant_branding_when_entitled_is_the_partners() {
    let w = world();
    let globex: Tenant = yaml(GLOBEX);
    let d = tenant(&w.inputs(&globex)).desired.unwrap();
    assert_eq!(
        cm(&d, "partnerkit-branding").data,
        Some(map(&[
            ("partner", "acme"),
            ("partnerDisplayName", "Acme Reseller"),
            ("logoUrl", "https://acme.example/logo.png"),
            ("primaryColor", "#0055ff"),
            ("supportEmail", "help@acme.example"),
        ]))
    );
}

#[test]
fn tenant_branding_when_not_entitled_is_the_platform_default() {
    let mut w = world();
    w.partner.spec.entitlements.branding = false;
    let globex: Tenant = yaml(GLOBEX);
    let d = tenant(&w.inputs(&globex)).desired.unwrap();
    assert_eq!(
        cm(&d, "partnerkit-branding").data,
        Some(map(&[
            ("partner", "acme"),
            ("partnerDisplayName", "Acme Reseller"),
            ("logoUrl", "https://platform.example/logo.png"),
            ("primaryColor", "#333333"),
            ("supportUrl", "https://help.platform.example"),
        ]))
    );
}

#[test]
fn tenant_branding_partial_falls_back_per_key() {
    let mut w = world();
    w.partner.spec.branding = Some(yaml(
        "logoUrl: https://acme.example/l.svg\nsupport: {url: https://acme.example/help}\n",
    ));
    let globex: Tenant = yaml(GLOBEX);
    let d = tenant(&w.inputs(&globex)).desired.unwrap();
    assert_eq!(
        cm(&d, "partnerkit-branding").data,
        Some(map(&[
            ("partner", "acme"),
            ("partnerDisplayName", "Acme Reseller"),
            ("logoUrl", "https://acme.example/l.svg"),
            ("primaryColor", "#333333"),
            ("supportUrl", "https://acme.example/help"),
        ]))
    );
    // Entitled, but no branding at all: the platform default.
    w.partner.spec.branding = None;
    let d = tenant(&w.inputs(&globex)).desired.unwrap();
    assert_eq!(
        cm(&d, "partnerkit-branding").data.as_ref().unwrap()["logoUrl"],
        "https://platform.example/logo.png"
    );
}

#[test]
fn tenant_branding_support_email_default() {
    let mut w = world();
    w.partner.spec.entitlements.branding = false;
    w.config.default_branding.support = Some(yaml("email: help@platform.example\n"));
    let globex: Tenant = yaml(GLOBEX);
    let data = tenant(&w.inputs(&globex))
        .desired
        .unwrap()
        .config_maps
        .into_iter()
        .find(|c| c.metadata.name.as_deref() == Some("partnerkit-branding"))
        .unwrap()
        .data
        .unwrap();
    assert_eq!(
        data.get("supportEmail").map(String::as_str),
        Some("help@platform.example")
    );
    assert!(!data.contains_key("supportUrl"));
}

#[test]
fn tenant_admins_fall_back_to_partner_admins_in_both_bindings() {
    let w = world();
    let t = tenant_in("partner-acme", "initech", "displayName: Initech\n");
    let plan = tenant(&w.inputs(&t));
    assert!(
        plan.status
            .effective_admins
            .iter()
            .all(|a| a.source == Source::Partner)
    );
    let d = plan.desired.unwrap();
    assert_eq!(
        rb(&d, "partnerkit-tenant-admins").subjects,
        users(&["alice@acme.example", "carol@acme.example"])
    );
}

#[test]
fn tenant_subjects_carry_the_user_prefix() {
    let mut w = world();
    w.config.user_prefix = "oidc:".into();
    let globex: Tenant = yaml(GLOBEX);
    let d = tenant(&w.inputs(&globex)).desired.unwrap();
    assert_eq!(
        rb(&d, "partnerkit-tenant-admins").subjects,
        users(&["oidc:bob@globex.example"])
    );
    assert_eq!(
        rb(&d, "partnerkit-partner-admins").subjects,
        users(&["oidc:alice@acme.example", "oidc:carol@acme.example"])
    );
}

#[test]
fn inherit_from_template_false_ignores_the_template() {
    let w = world();
    let t = tenant_in(
        "partner-acme",
        "globex",
        "displayName: G\ninheritFromTemplate: false\n",
    );
    let plan = tenant(&w.inputs(&t));
    assert_eq!(
        plan.status.effective_biz_apps,
        vec![
            app("crm", false, Source::Catalog),
            app("mail", true, Source::Catalog)
        ]
    );
    assert!(plan.status.effective_profiles.is_empty());
}

#[test]
fn missing_template_means_catalog_defaults() {
    let w = world();
    let globex: Tenant = yaml(GLOBEX);
    let mut inputs = w.inputs(&globex);
    inputs.template = None;
    let plan = tenant(&inputs);
    assert_eq!(
        plan.status.effective_biz_apps,
        vec![
            app("crm", false, Source::Catalog),
            app("mail", true, Source::Tenant)
        ]
    );
}

#[test]
fn not_in_partner_namespace() {
    let w = world();
    let t = tenant_in("default", "globex", "displayName: G\n");
    let mut inputs = w.inputs(&t);
    inputs.partner = None;
    let plan = tenant(&inputs);
    let e = plan.ready.unwrap_err();
    assert_eq!(e.reason, NOT_IN_PARTNER_NAMESPACE);
    assert!(e.message.contains("\"default\""), "{}", e.message);
    assert!(plan.desired.is_none());
    assert_eq!(plan.status.workspace, None);
}

#[test]
fn name_conflict_with_an_older_tenant() {
    let w = world();
    let globex: Tenant = yaml(GLOBEX);
    let mut inputs = w.inputs(&globex);
    inputs.name_taken_by = Some("partner-other/globex".into());
    inputs.workspace = WorkspaceState::Ours; // the other one's workspace
    let plan = tenant(&inputs);
    assert_eq!(
        plan.ready,
        Err(Refusal::new(
            NAME_CONFLICT,
            "tenant name \"globex\" is already taken by Tenant partner-other/globex"
        ))
    );
    assert!(plan.desired.is_none());
    assert_eq!(plan.status.workspace, None);
}

#[test]
fn name_conflict_with_a_foreign_namespace() {
    let w = world();
    let globex: Tenant = yaml(GLOBEX);
    let mut inputs = w.inputs(&globex);
    inputs.workspace = WorkspaceState::Foreign;
    let plan = tenant(&inputs);
    let e = plan.ready.unwrap_err();
    assert_eq!(e.reason, NAME_CONFLICT);
    assert!(
        e.message.contains("tenant-globex") && e.message.contains("not managed by partnerkit"),
        "{}",
        e.message
    );
    assert!(plan.desired.is_none());
    assert_eq!(plan.status.workspace, None);
}

#[test]
fn quota_exceeded_by_rank() {
    let mut w = world();
    w.partner.spec.entitlements.max_tenants = Some(2);
    let globex: Tenant = yaml(GLOBEX);
    for (rank, ok) in [(0, true), (1, true), (2, false), (7, false)] {
        let mut inputs = w.inputs(&globex);
        inputs.older_tenants = rank;
        let plan = tenant(&inputs);
        assert_eq!(plan.ready.is_ok(), ok, "rank {rank}");
        assert_eq!(plan.desired.is_some(), ok);
        if !ok {
            let e = plan.ready.unwrap_err();
            assert_eq!(e.reason, QUOTA_EXCEEDED);
            assert!(e.message.contains("at most 2 tenants"), "{}", e.message);
        }
    }
    w.partner.spec.entitlements.max_tenants = Some(0);
    assert_eq!(
        tenant(&w.inputs(&globex)).ready.unwrap_err().reason,
        QUOTA_EXCEEDED
    );
    w.partner.spec.entitlements.max_tenants = None;
    let mut inputs = w.inputs(&globex);
    inputs.older_tenants = 100_000;
    assert!(tenant(&inputs).ready.is_ok());
}

#[test]
fn refused_tenant_keeps_showing_its_existing_workspace() {
    let mut w = world();
    w.partner.spec.entitlements.biz_apps = Some(vec![]);
    let t = tenant_in(
        "partner-acme",
        "globex",
        "displayName: G\nbizApps: {crm: true}\n",
    );
    let mut inputs = w.inputs(&t);
    inputs.workspace = WorkspaceState::Ours;
    let plan = tenant(&inputs);
    assert_eq!(plan.ready.unwrap_err().reason, NOT_ENTITLED);
    assert!(plan.desired.is_none());
    assert_eq!(plan.status.workspace.as_deref(), Some("tenant-globex"));
    assert!(plan.status.effective_biz_apps.is_empty());
    assert_eq!(
        plan.status.effective_admins.len(),
        2,
        "admins are still computed"
    );
}

#[test]
fn unknown_biz_app_refuses_a_tenant() {
    let w = world();
    let t = tenant_in(
        "partner-acme",
        "globex",
        "displayName: G\nbizApps: {video: true, chess: false}\n",
    );
    let plan = tenant(&w.inputs(&t));
    assert_eq!(
        plan.ready,
        Err(Refusal::new(
            UNKNOWN_BIZ_APP,
            "BizApps not in the platform catalog: chess, video"
        ))
    );
    assert!(plan.desired.is_none());
    assert_eq!(plan.status.workspace, None);
}

#[test]
fn template_has_no_workspace_and_shows_its_own_values() {
    let w = world();
    let template: Tenant = yaml(TEMPLATE);
    let mut inputs = w.inputs(&template);
    inputs.workspace = WorkspaceState::Foreign; // ignored: the template has no workspace
    inputs.name_taken_by = Some("partner-other/template".into()); // every partner has one
    inputs.older_tenants = 1000;
    let plan = tenant(&inputs);
    assert_eq!(plan.ready, Ok(()));
    assert!(plan.desired.is_none());
    assert_eq!(plan.status.workspace, None);
    assert_eq!(
        plan.status.effective_biz_apps,
        vec![
            app("crm", true, Source::Tenant),
            app("mail", false, Source::Tenant)
        ]
    );
    let profile_sources: BTreeSet<Source> = plan
        .status
        .effective_profiles
        .iter()
        .flat_map(|p| p.sources.values().copied())
        .collect();
    assert_eq!(
        profile_sources,
        BTreeSet::from([Source::Tenant]),
        "with template=None its own values are tenant values"
    );
    assert!(
        plan.status
            .effective_admins
            .iter()
            .all(|a| a.source == Source::Partner)
    );
}

#[test]
fn template_is_refused_for_its_own_bad_keys() {
    let mut w = world();
    w.partner.spec.entitlements.biz_apps = Some(vec![]);
    let template: Tenant = yaml(TEMPLATE);
    let plan = tenant(&w.inputs(&template));
    assert_eq!(plan.ready.unwrap_err().reason, NOT_ENTITLED);
    // ... while inheriting tenants are not: the app is just off for them.
    let globex: Tenant = yaml(GLOBEX);
    let plan = tenant(&w.inputs(&globex));
    assert_eq!(plan.ready, Ok(()));
    assert_eq!(
        plan.status.effective_biz_apps[0],
        app("crm", false, Source::Template)
    );
}

#[test]
fn orphaned_workspace_is_adopted_without_the_orphaned_label() {
    let w = world();
    let globex: Tenant = yaml(GLOBEX);
    let mut inputs = w.inputs(&globex);
    inputs.workspace = WorkspaceState::Orphaned;
    let plan = tenant(&inputs);
    assert_eq!(plan.ready, Ok(()));
    assert_eq!(plan.status.workspace.as_deref(), Some("tenant-globex"));
    let labels = plan.desired.unwrap().namespace.metadata.labels.unwrap();
    assert!(!labels.contains_key(labels::ORPHANED));
    assert_eq!(
        labels.get(labels::PARTNER).map(String::as_str),
        Some("acme"),
        "adopted by the new partner"
    );
}

#[test]
fn a_workspace_retained_by_another_partner_is_refused_and_untouched() {
    let w = world();
    let globex: Tenant = yaml(GLOBEX);
    let mut inputs = w.inputs(&globex);
    inputs.workspace = WorkspaceState::RetainedByAnotherPartner;
    inputs.retained_by = Some("beta");
    let plan = tenant(&inputs);
    let e = plan.ready.unwrap_err();
    assert_eq!(e.reason, crate::api::conditions::ASSIGNMENT_REQUIRED);
    assert_eq!(
        e.message,
        "workspace \"tenant-globex\" holds the data partner \"beta\" retained for company \"globex\"; only a platform admin can move it to partner \"acme\", with a PartnerAssignment {tenant: globex, from: beta, to: acme}"
    );
    assert!(plan.desired.is_none(), "nothing is materialized");
    assert_eq!(plan.status.workspace, None, "and no workspace is claimed");
}

#[test]
fn terminating_workspace_waits() {
    let w = world();
    let globex: Tenant = yaml(GLOBEX);
    let mut inputs = w.inputs(&globex);
    inputs.workspace = WorkspaceState::Terminating;
    let plan = tenant(&inputs);
    assert_eq!(plan.ready.unwrap_err().reason, WORKSPACE_TERMINATING);
    assert!(plan.desired.is_none());
}

#[test]
fn ours_workspace_is_updated() {
    let w = world();
    let globex: Tenant = yaml(GLOBEX);
    let mut inputs = w.inputs(&globex);
    inputs.workspace = WorkspaceState::Ours;
    assert_eq!(
        tenant(&inputs),
        tenant(&w.inputs(&globex)),
        "Missing and Ours build the same objects"
    );
}

#[test]
fn checks_run_in_documented_order() {
    // Everything wrong at once: name taken, over quota, unknown app, workspace terminating.
    let mut w = world();
    w.partner.spec.entitlements.max_tenants = Some(0);
    let t = tenant_in(
        "partner-acme",
        "globex",
        "displayName: G\nbizApps: {nope: true}\n",
    );
    let reason = |w: &World, taken: bool| {
        let mut inputs = w.inputs(&t);
        inputs.workspace = WorkspaceState::Terminating;
        inputs.name_taken_by = taken.then(|| "partner-other/globex".to_string());
        tenant(&inputs).ready.unwrap_err().reason
    };
    assert_eq!(reason(&w, true), NAME_CONFLICT);
    assert_eq!(reason(&w, false), QUOTA_EXCEEDED);
    w.partner.spec.entitlements.max_tenants = None;
    assert_eq!(reason(&w, false), UNKNOWN_BIZ_APP);
}

// ---------------------------------------------------------------------------------------------
// property tests
// ---------------------------------------------------------------------------------------------

const POOL: [&str; 8] = [
    "analytics",
    "billing",
    "chat",
    "crm",
    "docs",
    "erp",
    "mail",
    "video",
];

fn catalog_strategy() -> impl Strategy<Value = Vec<CatalogApp>> {
    (
        proptest::sample::subsequence(POOL.to_vec(), 1..=POOL.len()),
        proptest::collection::vec(any::<bool>(), POOL.len()),
    )
        .prop_flat_map(|(names, premium)| {
            let apps: Vec<CatalogApp> = names
                .iter()
                .enumerate()
                .map(|(i, n)| CatalogApp {
                    name: n.to_string(),
                    display_name: String::new(),
                    premium: premium[i],
                })
                .collect();
            Just(apps).prop_shuffle()
        })
}

fn entitlements_strategy() -> impl Strategy<Value = Entitlements> {
    proptest::option::of(proptest::sample::subsequence(POOL.to_vec(), 0..=POOL.len())).prop_map(
        |l| Entitlements {
            branding: false,
            biz_apps: l.map(|l| l.into_iter().map(String::from).collect()),
            max_tenants: None,
        },
    )
}

/// A BizApps map over the pool (and sometimes an app outside any catalog).
fn biz_map_strategy(with_unknown: bool) -> impl Strategy<Value = BTreeMap<String, bool>> {
    let keys: Vec<&str> = if with_unknown {
        POOL.iter().copied().chain(["zzz-unknown"]).collect()
    } else {
        POOL.to_vec()
    };
    proptest::collection::btree_map(
        proptest::sample::select(keys).prop_map(String::from),
        any::<bool>(),
        0..6,
    )
}

fn profiles_strategy() -> impl Strategy<Value = BTreeMap<String, BTreeMap<String, String>>> {
    proptest::collection::btree_map(
        proptest::sample::select(vec!["wifi", "vpn", "printer"]).prop_map(String::from),
        proptest::collection::btree_map(
            proptest::sample::select(vec!["a", "b", "c", "d"]).prop_map(String::from),
            "[a-z]{0,3}",
            0..4,
        ),
        0..3,
    )
}

fn spec_strategy(with_unknown: bool) -> impl Strategy<Value = TenantSpec> {
    (biz_map_strategy(with_unknown), profiles_strategy()).prop_map(|(biz_apps, profiles)| {
        TenantSpec {
            display_name: "T".into(),
            inherit_from_template: true,
            biz_apps,
            profiles,
            admins: vec![],
            deletion_policy: Default::default(),
        }
    })
}

fn is_entitled(e: &Entitlements, app: &str) -> bool {
    e.biz_apps
        .as_ref()
        .is_none_or(|l| l.iter().any(|x| x == app))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// (a) every catalog app appears exactly once, sorted by name.
    #[test]
    fn prop_every_catalog_app_once_sorted(catalog in catalog_strategy(), ent in entitlements_strategy(),
                                          template in proptest::option::of(spec_strategy(true)), tenant in spec_strategy(false)) {
        if let Ok(apps) = effective_biz_apps(&catalog, &ent, template.as_ref(), &tenant) {
            let got: Vec<&str> = apps.iter().map(|a| a.name.as_str()).collect();
            let mut want: Vec<&str> = catalog.iter().map(|a| a.name.as_str()).collect();
            want.sort();
            prop_assert_eq!(got, want);
        }
    }

    /// (b) a tenant's explicit value always wins when permitted; when it is not permitted, the
    /// refusal names exactly the offending keys.
    #[test]
    fn prop_tenant_value_wins_when_permitted(catalog in catalog_strategy(), ent in entitlements_strategy(),
                                             template in proptest::option::of(spec_strategy(true)), tenant in spec_strategy(true)) {
        let premium: BTreeMap<&str, bool> = catalog.iter().map(|a| (a.name.as_str(), a.premium)).collect();
        let unknown: Vec<&str> = tenant.biz_apps.keys().map(String::as_str).filter(|k| !premium.contains_key(k)).collect();
        let forbidden: Vec<&str> = tenant.biz_apps.iter()
            .filter(|(k, on)| **on && premium.get(k.as_str()) == Some(&true) && !is_entitled(&ent, k))
            .map(|(k, _)| k.as_str()).collect();
        match effective_biz_apps(&catalog, &ent, template.as_ref(), &tenant) {
            Ok(apps) => {
                prop_assert!(unknown.is_empty() && forbidden.is_empty());
                for (k, v) in &tenant.biz_apps {
                    let a = apps.iter().find(|a| &a.name == k).unwrap();
                    prop_assert_eq!((a.enabled, a.source), (*v, Source::Tenant));
                }
            }
            Err(r) if !unknown.is_empty() => {
                prop_assert_eq!(r.reason, UNKNOWN_BIZ_APP);
                prop_assert!(r.message.starts_with(&format!("BizApps not in the platform catalog: {}", unknown.join(", "))), "{}", r.message);
            }
            Err(r) => {
                prop_assert_eq!(r.reason, NOT_ENTITLED);
                prop_assert_eq!(r.message, format!("premium BizApps the partner is not entitled to: {}", forbidden.join(", ")));
            }
        }
    }

    /// (c) a premium app is never enabled without entitlement, nor without a template or tenant
    /// asking for it; a non-premium app is off only when the template or tenant says so.
    #[test]
    fn prop_premium_needs_entitlement(catalog in catalog_strategy(), ent in entitlements_strategy(),
                                      template in proptest::option::of(spec_strategy(true)), tenant in spec_strategy(false)) {
        if let Ok(apps) = effective_biz_apps(&catalog, &ent, template.as_ref(), &tenant) {
            for a in &apps {
                let c = catalog.iter().find(|c| c.name == a.name).unwrap();
                if c.premium && a.enabled {
                    prop_assert!(is_entitled(&ent, &a.name));
                    prop_assert!(a.source != Source::Catalog);
                }
                if !c.premium && !a.enabled {
                    prop_assert!(a.source != Source::Catalog);
                }
                if a.source == Source::Template {
                    prop_assert!(!tenant.biz_apps.contains_key(&a.name));
                    prop_assert!(template.as_ref().is_some_and(|t| t.biz_apps.contains_key(&a.name)));
                }
            }
        }
    }

    /// (d) effective_profiles: keys = union of template and tenant keys, tenant values win.
    #[test]
    fn prop_profiles_union_tenant_wins(template in proptest::option::of(spec_strategy(false)), tenant in spec_strategy(false)) {
        let got = effective_profiles(template.as_ref(), &tenant);
        let empty = BTreeMap::new();
        let tpl = template.as_ref().map_or(&empty, |t| &t.profiles);
        let names: BTreeSet<&String> = tpl.keys().chain(tenant.profiles.keys()).collect();
        prop_assert_eq!(got.iter().map(|p| &p.name).collect::<BTreeSet<_>>(), names.clone());
        prop_assert!(got.windows(2).all(|w| w[0].name < w[1].name));
        for p in &got {
            let t_data = tenant.profiles.get(&p.name);
            let tp_data = tpl.get(&p.name);
            let keys: BTreeSet<&String> = t_data.into_iter().flat_map(|d| d.keys()).chain(tp_data.into_iter().flat_map(|d| d.keys())).collect();
            prop_assert_eq!(p.data.keys().collect::<BTreeSet<_>>(), keys.clone());
            prop_assert_eq!(p.sources.keys().collect::<BTreeSet<_>>(), keys);
            for (k, v) in &p.data {
                match t_data.and_then(|d| d.get(k)) {
                    Some(tv) => { prop_assert_eq!(v, tv); prop_assert_eq!(p.sources[k], Source::Tenant); }
                    None => { prop_assert_eq!(Some(v), tp_data.and_then(|d| d.get(k))); prop_assert_eq!(p.sources[k], Source::Template); }
                }
            }
        }
    }

    /// (e) deterministic: same input, same output — also regardless of catalog order.
    #[test]
    fn prop_deterministic(catalog in catalog_strategy(), ent in entitlements_strategy(),
                          template in proptest::option::of(spec_strategy(true)), spec in spec_strategy(true),
                          admins in proptest::collection::vec(proptest::sample::select(vec!["a@x.example", "b@x.example", "c@x.example"]).prop_map(String::from), 0..5)) {
        let once = effective_biz_apps(&catalog, &ent, template.as_ref(), &spec);
        prop_assert_eq!(&once, &effective_biz_apps(&catalog, &ent, template.as_ref(), &spec));
        let mut reversed = catalog.clone();
        reversed.reverse();
        prop_assert_eq!(&once, &effective_biz_apps(&reversed, &ent, template.as_ref(), &spec));
        prop_assert_eq!(effective_profiles(template.as_ref(), &spec), effective_profiles(template.as_ref(), &spec));
        let mut shuffled = admins.clone();
        shuffled.reverse();
        prop_assert_eq!(effective_admins(&spec, &admins), effective_admins(&spec, &shuffled));

        // The whole plan, too.
        let mut config = cfg();
        config.catalog = catalog.clone();
        let mut p = acme();
        p.spec.entitlements = ent.clone();
        let t = Tenant::new("globex", spec.clone());
        let tpl = template.clone().map(|s| Tenant::new("template", s));
        let inputs = TenantInputs { tenant: &t, config: &config, partner: Some(&p), partner_admins: &admins,
            template: tpl.as_ref(), workspace: WorkspaceState::Missing, name_taken_by: None, retained_by: None, older_tenants: 0 };
        let plan = tenant(&inputs);
        prop_assert_eq!(&plan, &tenant(&inputs));
        prop_assert_eq!(plan.desired.is_some(), once.is_ok());
        if let Some(d) = &plan.desired {
            // The namespace's bizapps labels are exactly the enabled apps.
            let labelled: BTreeSet<String> = d.namespace.metadata.labels.as_ref().unwrap().keys()
                .filter_map(|k| k.strip_prefix(labels::BIZAPP_PREFIX).map(String::from)).collect();
            let enabled: BTreeSet<String> = plan.status.effective_biz_apps.iter().filter(|a| a.enabled).map(|a| a.name.clone()).collect();
            prop_assert_eq!(labelled, enabled);
        }
    }
}

#[test]
fn the_operator_binds_itself_to_invite_links_only_when_it_knows_its_service_account() {
    let p = acme();
    let mut c = cfg();
    assert!(partner_desired(&p, &c, &[]).operator_binding.is_none());
    c.operator_account = Some(("partnerkit-system".into(), "partnerkit".into()));
    let rb = partner_desired(&p, &c, &[])
        .operator_binding
        .expect("a binding");
    assert_eq!(rb.metadata.name.as_deref(), Some("partnerkit-operator"));
    assert_eq!(rb.metadata.namespace.as_deref(), Some("partner-acme"));
    assert_eq!(rb.role_ref.name, "partnerkit-invite-links");
    let s = &rb.subjects.as_ref().unwrap()[0];
    assert_eq!(
        (s.kind.as_str(), s.name.as_str(), s.namespace.as_deref()),
        ("ServiceAccount", "partnerkit", Some("partnerkit-system"))
    );
    assert_eq!(rb.metadata.owner_references, Some(acme_owner()));
}
