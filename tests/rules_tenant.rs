//! DESIGN.md rules about Tenants, against the real operator driven with kubectl: the workspace
//! and its exact objects, effective values and their sources, live inheritance, branding by
//! entitlement, BizApp rules, name uniqueness, reserved names, deletion and adoption.

mod support;

use serde_json::{Value, json};
use support::{
    Env, config_map_json, labels_of, our_labels, partner_json, ready, smap, subjects, tenant_json,
};

const MB: &str = "app.kubernetes.io/managed-by";
const PL: &str = "partnerkit.io/partner";
const TL: &str = "partnerkit.io/tenant";

fn reason_message(t: &Value) -> (String, String, String) {
    let c = ready(t).expect("Ready");
    (
        c["status"].as_str().unwrap().to_string(),
        c["reason"].as_str().unwrap().to_string(),
        c["message"].as_str().unwrap().to_string(),
    )
}

/// Names of partnerkit's objects of a kind for a tenant, in its workspace.
async fn tenant_objects(env: &Env, kind: &str, ws: &str, tenant: &str) -> Vec<String> {
    let api_version = if kind == "ConfigMap" {
        "v1"
    } else {
        "rbac.authorization.k8s.io/v1"
    };
    let mut v: Vec<String> = env
        .list(api_version, kind, Some(ws), Some(&format!("{TL}={tenant}")))
        .await
        .iter()
        .map(|o| o["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workspace_holds_exactly_the_designed_objects_and_status_names_sources() {
    let env = Env::start().await;
    let acme = env.n("acme");
    let (alice, bob) = (env.email("alice", &acme), env.email("bob", &acme));
    env.apply_json(&partner_json(&acme, "Acme Reseller", &[&alice, &bob], json!({
        "entitlements": {"branding": true, "bizApps": ["crm"]},
        "branding": {"logoUrl": "https://acme.example/logo.png", "primaryColor": "#0055ff", "support": {"email": "help@acme.example"}}
    })))
    .await;
    env.wait_ready("Partner", None, &acme).await;
    let pns = env.pns(&acme);
    env.apply_json(&tenant_json(&pns, "template", json!({
        "displayName": "Acme (Template)",
        "bizApps": {"crm": true, "chat": false},
        "profiles": {"wifi": {"ssid": "acme", "security": "wpa2"}, "printer": {"model": "laser"}}
    })))
    .await;
    let globex = env.n("globex");
    let ws = env.ws(&globex);
    let t = env
        .tenant_ready(&pns, &globex, json!({"displayName": "Globex", "bizApps": {"chat": true}, "profiles": {"wifi": {"ssid": "globex"}}}))
        .await;

    let ns = env.namespace(&ws).await.expect("workspace");
    assert_eq!(
        our_labels(&ns),
        smap([
            (MB, "partnerkit"),
            (PL, &acme),
            (TL, &globex),
            ("bizapps.partnerkit.io/mail", "enabled"),
            ("bizapps.partnerkit.io/chat", "enabled"),
            ("bizapps.partnerkit.io/crm", "enabled")
        ])
    );
    let object_labels = smap([(MB, "partnerkit"), (PL, &acme), (TL, &globex)]);
    assert_eq!(
        tenant_objects(&env, "ConfigMap", &ws, &globex).await,
        [
            "partnerkit-bizapps",
            "partnerkit-branding",
            "partnerkit-profile-printer",
            "partnerkit-profile-wifi"
        ]
    );
    let cm = |name: &'static str| {
        let env = &env;
        let ws = ws.clone();
        async move {
            env.config_map(&ws, name)
                .await
                .unwrap_or_else(|| panic!("{name}"))
        }
    };
    let bizapps = cm("partnerkit-bizapps").await;
    assert_eq!(
        bizapps["data"],
        json!({"analytics": "false", "chat": "true", "crm": "true", "mail": "true"})
    );
    assert_eq!(labels_of(&bizapps), object_labels);
    assert_eq!(
        cm("partnerkit-branding").await["data"],
        json!({"partner": acme, "partnerDisplayName": "Acme Reseller", "logoUrl": "https://acme.example/logo.png",
               "primaryColor": "#0055ff", "supportEmail": "help@acme.example"})
    );
    assert_eq!(
        cm("partnerkit-profile-wifi").await["data"],
        json!({"ssid": "globex", "security": "wpa2"})
    );
    assert_eq!(
        cm("partnerkit-profile-printer").await["data"],
        json!({"model": "laser"})
    );

    assert_eq!(
        tenant_objects(&env, "RoleBinding", &ws, &globex).await,
        ["partnerkit-partner-admins", "partnerkit-tenant-admins"]
    );
    let role_ref = json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "partnerkit-tenant-admin"});
    for name in ["partnerkit-partner-admins", "partnerkit-tenant-admins"] {
        let rb = env.role_binding(&ws, name).await.unwrap();
        assert_eq!(rb["roleRef"], role_ref);
        assert_eq!(
            subjects(&rb),
            [alice.clone(), bob.clone()],
            "{name}: empty admins = the partner's"
        );
        assert_eq!(labels_of(&rb), object_labels);
    }

    let s = &t["status"];
    assert_eq!(s["workspace"], ws.as_str());
    assert_eq!(s["observedGeneration"], t["metadata"]["generation"]);
    assert_eq!(
        s["effectiveBizApps"],
        json!([{"name": "analytics", "enabled": false, "source": "catalog"}, {"name": "chat", "enabled": true, "source": "tenant"},
               {"name": "crm", "enabled": true, "source": "template"}, {"name": "mail", "enabled": true, "source": "catalog"}])
    );
    assert_eq!(
        s["effectiveProfiles"],
        json!([{"name": "printer", "data": {"model": "laser"}, "sources": {"model": "template"}},
               {"name": "wifi", "data": {"security": "wpa2", "ssid": "globex"}, "sources": {"security": "template", "ssid": "tenant"}}])
    );
    assert_eq!(
        s["effectiveAdmins"],
        json!([{"email": alice, "source": "partner"}, {"email": bob, "source": "partner"}])
    );

    // Own admins: the tenant-admins binding is theirs; the partner's admins keep theirs.
    let dan = env.email("dan", &globex);
    env.apply_json(&tenant_json(
        &pns,
        &globex,
        json!({"displayName": "Globex", "bizApps": {"chat": true},
        "profiles": {"wifi": {"ssid": "globex"}}, "admins": [{"email": dan}]}),
    ))
    .await;
    let t = env.wait_ready("Tenant", Some(&pns), &globex).await;
    assert_eq!(
        t["status"]["effectiveAdmins"],
        json!([{"email": dan, "source": "tenant"}])
    );
    assert_eq!(
        subjects(
            &env.role_binding(&ws, "partnerkit-tenant-admins")
                .await
                .unwrap()
        ),
        vec![dan.clone()]
    );
    assert_eq!(
        subjects(
            &env.role_binding(&ws, "partnerkit-partner-admins")
                .await
                .unwrap()
        ),
        [alice.clone(), bob.clone()]
    );

    // A profile that goes away (from the template) is removed from the workspace.
    env.apply_json(&tenant_json(&pns, "template", json!({"displayName": "Acme (Template)",
        "bizApps": {"crm": true, "chat": false}, "profiles": {"wifi": {"ssid": "acme", "security": "wpa2"}}}))).await;
    env.eventually(5, "the printer profile to be removed", || async {
        (tenant_objects(&env, "ConfigMap", &ws, &globex).await
            == [
                "partnerkit-bizapps",
                "partnerkit-branding",
                "partnerkit-profile-wifi",
            ])
        .then_some(())
    })
    .await;
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn branding_reaches_tenants_only_when_the_partner_is_entitled() {
    let env = Env::start().await;
    let acme = env.n("acme");
    let alice = env.email("alice", &acme);
    let partner = |entitled: bool| {
        partner_json(
            &acme,
            "Acme Reseller",
            &[&alice],
            json!({
                "entitlements": {"branding": entitled},
                "branding": {"primaryColor": "#0055ff", "support": {"email": "help@acme.example"}}
            }),
        )
    };
    env.apply_json(&partner(false)).await;
    let p = env.wait_ready("Partner", None, &acme).await;
    assert_eq!(p["status"]["brandingApplied"], false);
    let pns = env.pns(&acme);
    let globex = env.n("globex");
    env.tenant_ready(&pns, &globex, json!({"displayName": "Globex"}))
        .await;
    let ws = env.ws(&globex);
    let platform = json!({"partner": acme, "partnerDisplayName": "Acme Reseller", "logoUrl": "https://platform.example/logo.png",
                          "primaryColor": "#333333", "supportUrl": "https://help.platform.example"});
    // Each unset key of the partner's branding falls back to the platform default (logoUrl).
    let own = json!({"partner": acme, "partnerDisplayName": "Acme Reseller", "logoUrl": "https://platform.example/logo.png",
                     "primaryColor": "#0055ff", "supportEmail": "help@acme.example"});
    let branding_is = |want: Value| {
        let (env, ws) = (&env, ws.clone());
        async move {
            env.eventually(5, &format!("tenant branding {want}"), || async {
                let cm = env.config_map(&ws, "partnerkit-branding").await?;
                (cm["data"] == want).then_some(())
            })
            .await
        }
    };
    branding_is(platform.clone()).await;
    // The partner's own page shows its branding whatever the entitlement.
    assert_eq!(
        env.config_map(&pns, "partnerkit-branding").await.unwrap()["data"],
        own
    );

    env.apply_json(&partner(true)).await;
    branding_is(own.clone()).await;
    assert_eq!(
        env.wait_ready("Partner", None, &acme).await["status"]["brandingApplied"],
        true
    );
    env.apply_json(&partner(false)).await;
    branding_is(platform).await;
    env.finish().await;
}

/// resourceVersions of a workspace's namespace, bizapps and branding ConfigMaps.
async fn resource_versions(env: &Env, ws: &str) -> Vec<Value> {
    let mut rvs = vec![];
    for name in ["partnerkit-bizapps", "partnerkit-branding"] {
        rvs.push(env.config_map(ws, name).await.unwrap()["metadata"]["resourceVersion"].clone());
    }
    rvs.push(env.namespace(ws).await.unwrap()["metadata"]["resourceVersion"].clone());
    rvs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inheritance_is_live_and_the_tenants_own_values_win() {
    let env = Env::start().await;
    let acme = env.n("acme");
    let pns = env
        .partner_ready(
            &acme,
            &[&env.email("alice", &acme)],
            json!({"entitlements": {"bizApps": ["crm"]}}),
        )
        .await;
    env.apply_json(&tenant_json(
        &pns,
        "template",
        json!({"displayName": "T", "profiles": {"wifi": {"ssid": "acme"}}}),
    ))
    .await;
    let (a, b, c) = (env.n("a"), env.n("b"), env.n("c"));
    env.tenant_ready(&pns, &a, json!({"displayName": "A"}))
        .await;
    env.tenant_ready(&pns, &b, json!({"displayName": "B", "bizApps": {"chat": true}, "profiles": {"wifi": {"ssid": "own"}}})).await;
    env.tenant_ready(
        &pns,
        &c,
        json!({"displayName": "C", "inheritFromTemplate": false}),
    )
    .await;
    let c_before = resource_versions(&env, &env.ws(&c)).await;
    assert!(
        env.config_map(&env.ws(&c), "partnerkit-profile-wifi")
            .await
            .is_none()
    );

    env.apply_json(&tenant_json(&pns, "template", json!({"displayName": "T", "bizApps": {"chat": false, "crm": true},
        "profiles": {"wifi": {"ssid": "acme2", "security": "wpa3"}, "vpn": {"server": "vpn.acme.example"}}}))).await;
    let ws_a = env.ws(&a);
    let ws_b = env.ws(&b);
    env.eventually(
        5,
        "the template change in every inheriting tenant",
        || async {
            let ok_a = env.config_map(&ws_a, "partnerkit-bizapps").await?["data"]
                == json!({"analytics": "false", "chat": "false", "crm": "true", "mail": "true"})
                && env.config_map(&ws_a, "partnerkit-profile-wifi").await?["data"]
                    == json!({"ssid": "acme2", "security": "wpa3"})
                && env.config_map(&ws_a, "partnerkit-profile-vpn").await?["data"]
                    == json!({"server": "vpn.acme.example"});
            let ok_b = env.config_map(&ws_b, "partnerkit-bizapps").await?["data"]
                == json!({"analytics": "false", "chat": "true", "crm": "true", "mail": "true"})
                && env.config_map(&ws_b, "partnerkit-profile-wifi").await?["data"]
                    == json!({"ssid": "own", "security": "wpa3"})
                && env
                    .config_map(&ws_b, "partnerkit-profile-vpn")
                    .await
                    .is_some();
            (ok_a && ok_b).then_some(())
        },
    )
    .await;
    let ns_a = env.namespace(&ws_a).await.unwrap();
    assert!(!labels_of(&ns_a).contains_key("bizapps.partnerkit.io/chat"));
    assert_eq!(labels_of(&ns_a)["bizapps.partnerkit.io/crm"], "enabled");
    let tb = env.wait_ready("Tenant", Some(&pns), &b).await;
    assert_eq!(
        tb["status"]["effectiveBizApps"][1],
        json!({"name": "chat", "enabled": true, "source": "tenant"})
    );
    assert_eq!(
        tb["status"]["effectiveBizApps"][2],
        json!({"name": "crm", "enabled": true, "source": "template"})
    );

    // inheritFromTemplate=false: untouched (not even rewritten).
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(resource_versions(&env, &env.ws(&c)).await, c_before);
    assert!(
        env.config_map(&env.ws(&c), "partnerkit-profile-wifi")
            .await
            .is_none()
    );
    let tc = env.tenant(&pns, &c).await.unwrap();
    assert_eq!(
        tc["status"]["effectiveBizApps"][1],
        json!({"name": "chat", "enabled": true, "source": "catalog"})
    );
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bizapps_outside_catalog_or_entitlements_are_refused_naming_them() {
    let env = Env::start().await;
    let acme = env.n("acme");
    let alice = env.email("alice", &acme);
    let partner = |apps: Value| {
        partner_json(
            &acme,
            "Acme",
            &[&alice],
            json!({"entitlements": {"bizApps": apps}}),
        )
    };
    env.apply_json(&partner(json!(["crm"]))).await;
    env.wait_ready("Partner", None, &acme).await;
    let pns = env.pns(&acme);
    // The template enables a premium app the partner is not entitled to: off, source template.
    env.apply_json(&tenant_json(
        &pns,
        "template",
        json!({"displayName": "T", "bizApps": {"analytics": true}}),
    ))
    .await;
    let inherits = env.n("inherits");
    let t = env
        .tenant_ready(&pns, &inherits, json!({"displayName": "Inherits"}))
        .await;
    assert_eq!(
        t["status"]["effectiveBizApps"][0],
        json!({"name": "analytics", "enabled": false, "source": "template"})
    );

    let (greedy, odd) = (env.n("greedy"), env.n("odd"));
    env.apply_json(&tenant_json(
        &pns,
        &greedy,
        json!({"displayName": "Greedy", "bizApps": {"analytics": true, "crm": true}}),
    ))
    .await;
    env.apply_json(&tenant_json(
        &pns,
        &odd,
        json!({"displayName": "Odd", "bizApps": {"foo": true, "bar": false, "mail": true}}),
    ))
    .await;
    let t = env
        .wait_reason("Tenant", Some(&pns), &greedy, "NotEntitled")
        .await;
    assert_eq!(
        reason_message(&t),
        (
            "False".into(),
            "NotEntitled".into(),
            "premium BizApps the partner is not entitled to: analytics".into()
        )
    );
    let t = env
        .wait_reason("Tenant", Some(&pns), &odd, "UnknownBizApp")
        .await;
    assert_eq!(
        reason_message(&t),
        (
            "False".into(),
            "UnknownBizApp".into(),
            "BizApps not in the platform catalog: bar, foo".into()
        )
    );
    for name in [&greedy, &odd] {
        assert!(
            env.namespace(&env.ws(name)).await.is_none(),
            "nothing materialized for {name}"
        );
    }
    // Warning Events, reason and note naming the apps.
    let w = env
        .eventually(5, "the Warning Events", || async {
            let g = env.warnings_about(&pns, "Tenant", &greedy).await;
            let o = env.warnings_about(&pns, "Tenant", &odd).await;
            (!g.is_empty() && !o.is_empty()).then_some((g, o))
        })
        .await;
    assert!(
        w.0.contains(&(
            "NotEntitled".into(),
            "premium BizApps the partner is not entitled to: analytics".into()
        )),
        "{w:?}"
    );
    assert!(
        w.1.contains(&(
            "UnknownBizApp".into(),
            "BizApps not in the platform catalog: bar, foo".into()
        )),
        "{w:?}"
    );

    // Entitled: the refused tenant materializes, and the template's premium app turns on.
    env.apply_json(&partner(json!(["crm", "analytics"]))).await;
    env.wait_ready("Tenant", Some(&pns), &greedy).await;
    let ns = env.namespace(&env.ws(&greedy)).await.unwrap();
    assert_eq!(labels_of(&ns)["bizapps.partnerkit.io/analytics"], "enabled");
    env.eventually(5, "the inheriting tenant to get analytics", || async {
        let cm = env
            .config_map(&env.ws(&inherits), "partnerkit-bizapps")
            .await?;
        (cm["data"]["analytics"] == "true").then_some(())
    })
    .await;
    // Withdrawn again: refused, but nothing is deleted.
    env.apply_json(&partner(json!(["crm"]))).await;
    let t = env
        .wait_reason("Tenant", Some(&pns), &greedy, "NotEntitled")
        .await;
    assert_eq!(t["status"]["workspace"], env.ws(&greedy).as_str());
    assert!(
        env.config_map(&env.ws(&greedy), "partnerkit-bizapps")
            .await
            .is_some(),
        "no data lost"
    );
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_tenant_name_gets_name_conflict_and_nothing_materialized() {
    let env = Env::start().await;
    let (acme, initech) = (env.n("acme"), env.n("initech"));
    let alice = env.email("alice", &acme);
    let acme_ns = env.partner_ready(&acme, &[&alice], json!({})).await;
    let initech_ns = env
        .partner_ready(&initech, &[&env.email("ivan", &initech)], json!({}))
        .await;
    let globex = env.n("globex");
    let ws = env.ws(&globex);
    env.tenant_ready(&acme_ns, &globex, json!({"displayName": "Globex"}))
        .await;
    let snapshot = || async {
        let mut v = vec![env.namespace(&ws).await.unwrap()];
        for n in ["partnerkit-bizapps", "partnerkit-branding"] {
            v.push(env.config_map(&ws, n).await.unwrap());
        }
        for n in ["partnerkit-partner-admins", "partnerkit-tenant-admins"] {
            v.push(env.role_binding(&ws, n).await.unwrap());
        }
        v.iter()
            .map(|o| {
                (
                    o["metadata"]["name"].clone(),
                    o["metadata"]["resourceVersion"].clone(),
                )
            })
            .collect::<Vec<_>>()
    };
    let before = snapshot().await;

    env.apply_json(&tenant_json(
        &initech_ns,
        &globex,
        json!({"displayName": "Globex too", "bizApps": {"chat": false}}),
    ))
    .await;
    let t = env
        .wait_reason("Tenant", Some(&initech_ns), &globex, "NameConflict")
        .await;
    assert_eq!(
        reason_message(&t),
        (
            "False".into(),
            "NameConflict".into(),
            format!("tenant name \"{globex}\" is already taken by Tenant {acme_ns}/{globex}")
        )
    );
    assert!(t["status"].get("workspace").is_none());
    assert!(
        t["metadata"].get("finalizers").is_none(),
        "no finalizer: nothing to clean up"
    );
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        snapshot().await,
        before,
        "the first tenant's workspace is untouched"
    );
    assert_eq!(labels_of(&env.namespace(&ws).await.unwrap())[PL], acme);
    let role = env
        .cluster_role(&format!("partnerkit:partner:{initech}"))
        .await
        .unwrap();
    assert_eq!(
        role["rules"][2]["resourceNames"],
        json!([initech_ns]),
        "initech does not see the workspace"
    );
    assert!(
        env.warnings_about(&initech_ns, "Tenant", &globex)
            .await
            .iter()
            .any(|(r, _)| r == "NameConflict")
    );

    // Deleting the refused one deletes nothing of the first.
    env.delete("tenant", Some(&initech_ns), &globex).await;
    env.wait_gone(
        "partnerkit.io/v1alpha1",
        "Tenant",
        Some(&initech_ns),
        &globex,
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(snapshot().await, before);
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_namespace_is_never_adopted_nor_deleted() {
    let env = Env::start().await;
    let acme = env.n("acme");
    let pns = env
        .partner_ready(&acme, &[&env.email("alice", &acme)], json!({}))
        .await;
    let initech = env.n("initech");
    let ws = env.ws(&initech);
    env.apply_json(&json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ws, "labels": {"team": "other"}}})).await;
    env.apply_json(&config_map_json(&ws, "theirs", json!({"k": "v"})))
        .await;
    let before = env.namespace(&ws).await.unwrap();

    env.apply_json(&tenant_json(
        &pns,
        &initech,
        json!({"displayName": "Initech", "deletionPolicy": "Delete"}),
    ))
    .await;
    let t = env
        .wait_reason("Tenant", Some(&pns), &initech, "NameConflict")
        .await;
    assert_eq!(
        reason_message(&t).2,
        format!("workspace namespace \"{ws}\" already exists and is not managed by partnerkit")
    );
    let ns = env.namespace(&ws).await.unwrap();
    assert_eq!(our_labels(&ns), smap([("team", "other")]));
    assert_eq!(
        ns["metadata"]["resourceVersion"],
        before["metadata"]["resourceVersion"]
    );
    assert!(
        env.list("v1", "ConfigMap", Some(&ws), Some(MB))
            .await
            .is_empty(),
        "no partnerkit object in it"
    );

    env.delete("tenant", Some(&pns), &initech).await;
    env.wait_gone("partnerkit.io/v1alpha1", "Tenant", Some(&pns), &initech)
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let ns = env
        .namespace(&ws)
        .await
        .expect("deletionPolicy Delete never deletes a foreign namespace");
    assert!(ns["metadata"].get("deletionTimestamp").is_none());
    assert_eq!(
        env.config_map(&ws, "theirs").await.unwrap()["data"],
        json!({"k": "v"})
    );
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn template_name_is_reserved_and_tenants_outside_partner_namespaces_are_refused() {
    let env = Env::start().await;
    let (acme, initech) = (env.n("acme"), env.n("initech"));
    let acme_ns = env
        .partner_ready(&acme, &[&env.email("alice", &acme)], json!({}))
        .await;
    let initech_ns = env
        .partner_ready(&initech, &[&env.email("ivan", &initech)], json!({}))
        .await;
    // Every partner has a Tenant "template": no conflict between them, and no workspace.
    for ns in [&acme_ns, &initech_ns] {
        let t = env.wait_ready("Tenant", Some(ns), "template").await;
        assert!(t["status"].get("workspace").is_none());
    }
    assert!(env.namespace(&env.ws("template")).await.is_none());

    let stray = env.n("stray");
    env.apply_json(&tenant_json(
        "default",
        &stray,
        json!({"displayName": "Stray"}),
    ))
    .await;
    let t = env
        .wait_reason("Tenant", Some("default"), &stray, "NotInPartnerNamespace")
        .await;
    assert_eq!(
        reason_message(&t),
        ("False".into(), "NotInPartnerNamespace".into(),
         "namespace \"default\" is not a partner namespace (partner-<partner>): create Tenants in their partner's namespace".into())
    );
    assert!(env.namespace(&env.ws(&stray)).await.is_none());
    // A partner-like namespace without its Partner is not a partner namespace either.
    let ghost_ns = env.pns(&env.n("ghost"));
    env.apply_json(
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ghost_ns}}),
    )
    .await;
    let orphan = env.n("orphan");
    env.apply_json(&tenant_json(
        &ghost_ns,
        &orphan,
        json!({"displayName": "Orphan"}),
    ))
    .await;
    env.wait_reason("Tenant", Some(&ghost_ns), &orphan, "NotInPartnerNamespace")
        .await;
    assert!(env.namespace(&env.ws(&orphan)).await.is_none());
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_tenant_retains_or_deletes_its_workspace_by_policy() {
    let env = Env::start().await;
    let acme = env.n("acme");
    let pns = env
        .partner_ready(&acme, &[&env.email("alice", &acme)], json!({}))
        .await;
    let (kept, gone) = (env.n("kept"), env.n("gone"));
    env.tenant_ready(&pns, &kept, json!({"displayName": "Kept"}))
        .await;
    env.tenant_ready(
        &pns,
        &gone,
        json!({"displayName": "Gone", "deletionPolicy": "Delete"}),
    )
    .await;
    for t in [&kept, &gone] {
        env.apply_json(&config_map_json(
            &env.ws(t),
            "customer-data",
            json!({"invoice": "42"}),
        ))
        .await;
    }

    env.delete("tenant", Some(&pns), &kept).await;
    env.delete("tenant", Some(&pns), &gone).await;
    env.wait_gone("partnerkit.io/v1alpha1", "Tenant", Some(&pns), &kept)
        .await;
    env.wait_gone("v1", "Namespace", None, &env.ws(&gone)).await;

    let ns = env
        .namespace(&env.ws(&kept))
        .await
        .expect("Retain keeps the workspace");
    assert!(ns["metadata"].get("deletionTimestamp").is_none());
    assert_eq!(
        our_labels(&ns),
        smap([
            (MB, "partnerkit"),
            (PL, &acme),
            (TL, &kept),
            ("partnerkit.io/orphaned", "true"),
            ("bizapps.partnerkit.io/mail", "enabled"),
            ("bizapps.partnerkit.io/chat", "enabled")
        ])
    );
    assert_eq!(
        env.config_map(&env.ws(&kept), "customer-data")
            .await
            .unwrap()["data"],
        json!({"invoice": "42"})
    );
    assert!(
        env.config_map(&env.ws(&kept), "partnerkit-bizapps")
            .await
            .is_some(),
        "its ConfigMaps are kept"
    );
    assert!(
        tenant_objects(&env, "RoleBinding", &env.ws(&kept), &kept)
            .await
            .is_empty(),
        "the admins' access ends with the tenant"
    );

    // The same tenants again, in the same partner: everything is materialized anew (the
    // kept workspace adopted, the deleted one re-created) — nothing remembered is skipped.
    env.tenant_ready(&pns, &kept, json!({"displayName": "Kept"}))
        .await;
    env.tenant_ready(
        &pns,
        &gone,
        json!({"displayName": "Gone", "deletionPolicy": "Delete"}),
    )
    .await;
    for t in [&kept, &gone] {
        let ws = env.ws(t);
        assert_eq!(
            tenant_objects(&env, "ConfigMap", &ws, t).await,
            ["partnerkit-bizapps", "partnerkit-branding"]
        );
        assert_eq!(
            tenant_objects(&env, "RoleBinding", &ws, t).await,
            ["partnerkit-partner-admins", "partnerkit-tenant-admins"]
        );
        assert!(
            !labels_of(&env.namespace(&ws).await.unwrap()).contains_key("partnerkit.io/orphaned")
        );
    }
    assert!(
        env.config_map(&env.ws(&gone), "customer-data")
            .await
            .is_none(),
        "deleted with its namespace"
    );
    assert!(
        env.config_map(&env.ws(&kept), "customer-data")
            .await
            .is_some()
    );
    env.finish().await;
}

/// DESIGN: a retained workspace is adopted by a Tenant of the partner that last held it, and by
/// another partner only after a platform admin's PartnerAssignment — never on a partner's own
/// act. acme deletes globex (Retain); initech's admin creates a Tenant globex:
/// AssignmentRequired, the data stays acme's and out of initech's reach, and initech's
/// admin cannot assign it to itself. A platform admin's assignment moves it, data and all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moving_a_tenant_to_another_partner_needs_a_platform_admins_assignment() {
    let env = Env::start().await;
    let (acme, initech) = (env.n("acme"), env.n("initech"));
    let ivan = env.email("ivan", &initech);
    let acme_ns = env
        .partner_ready(
            &acme,
            &[&env.email("alice", &acme)],
            json!({"entitlements": {"branding": true, "bizApps": ["crm"]},
            "branding": {"primaryColor": "#0055ff"}}),
        )
        .await;
    let initech_ns = env
        .partner_ready(&initech, &[&ivan], json!({"entitlements": {"bizApps": []}}))
        .await;
    env.apply_json(&tenant_json(
        &acme_ns,
        "template",
        json!({"displayName": "T", "bizApps": {"crm": true}}),
    ))
    .await;
    let globex = env.n("globex");
    let ws = env.ws(&globex);
    env.tenant_ready(&acme_ns, &globex, json!({"displayName": "Globex"}))
        .await;
    env.apply_json(&config_map_json(
        &ws,
        "customer-data",
        json!({"invoice": "42"}),
    ))
    .await;
    let uid = env.namespace(&ws).await.unwrap()["metadata"]["uid"].clone();

    env.delete("tenant", Some(&acme_ns), &globex).await;
    env.eventually(10, "the workspace to be orphaned", || async {
        (labels_of(&env.namespace(&ws).await?)
            .get("partnerkit.io/orphaned")
            .map(String::as_str)
            == Some("true"))
        .then_some(())
    })
    .await;
    // initech's admin tries to take the company: refused, nothing touched, no access.
    let tenant = tenant_json(&initech_ns, &globex, json!({"displayName": "Globex"}));
    let o = env.apply_as(&ivan, &tenant.to_string()).await;
    assert!(
        o.ok(),
        "initech's admin may create Tenants in initech: {}",
        o.stderr
    );
    let t = env
        .wait_reason("Tenant", Some(&initech_ns), &globex, "AssignmentRequired")
        .await;
    let msg = support::ready(&t).unwrap()["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        msg.contains(&format!("partner \"{acme}\" retained")) && msg.contains("PartnerAssignment"),
        "{msg}"
    );
    env.eventually(5, "a Warning Event", || async {
        (!env
            .warnings_about(&initech_ns, "Tenant", &globex)
            .await
            .is_empty())
        .then_some(())
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let still = env.namespace(&ws).await.unwrap();
    assert_eq!(
        labels_of(&still)[PL],
        acme,
        "still acme's retained workspace"
    );
    assert_eq!(labels_of(&still)["partnerkit.io/orphaned"], "true");
    assert!(
        env.role_binding(&ws, "partnerkit-partner-admins")
            .await
            .is_none()
    );
    let o = env
        .kubectl_as(&ivan, &["get", "configmap", "customer-data", "-n", &ws])
        .await;
    assert!(
        !o.ok() && o.stderr.contains("forbidden"),
        "initech's admin reads acme's retained data: {}{}",
        o.stdout,
        o.stderr
    );
    // A partner admin cannot perform the platform admin's act.
    let assignment = |name: &str, from: &str| {
        json!({"apiVersion": "partnerkit.io/v1alpha1", "kind": "PartnerAssignment",
            "metadata": {"name": name}, "spec": {"tenant": globex, "from": from, "to": initech}})
        .to_string()
    };
    let (right, wrong) = (env.n("globex-to-initech"), env.n("wrong-from"));
    let o = env.create_as(Some(&ivan), &assignment(&right, &acme)).await;
    assert!(
        !o.ok() && o.stderr.contains(&format!(
            "partnerassignments.partnerkit.io is forbidden: User \"{ivan}\" cannot create resource \"partnerassignments\""
        )),
        "a partner admin created a PartnerAssignment: {}{}",
        o.stdout,
        o.stderr
    );
    // A platform admin (partnerkit-platform-admin) can; one naming another source partner
    // does not count.
    let platform = env.n("support") + "@platform.example";
    env.kubectl_ok(&[
        "create",
        "clusterrolebinding",
        &env.n("platform-admins"),
        "--clusterrole=partnerkit-platform-admin",
        &format!("--user={platform}"),
    ])
    .await;
    let o = env
        .create_as(Some(&platform), &assignment(&wrong, &env.n("someone-else")))
        .await;
    assert!(o.ok(), "{}", o.stderr);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    env.wait_reason("Tenant", Some(&initech_ns), &globex, "AssignmentRequired")
        .await;
    let o = env
        .create_as(Some(&platform), &assignment(&right, &acme))
        .await;
    assert!(o.ok(), "{}", o.stderr);
    env.wait_ready("Tenant", Some(&initech_ns), &globex).await;

    let ns = env.namespace(&ws).await.unwrap();
    assert_eq!(ns["metadata"]["uid"], uid, "the same namespace");
    assert_eq!(
        our_labels(&ns),
        smap([
            (MB, "partnerkit"),
            (PL, &initech),
            (TL, &globex),
            ("bizapps.partnerkit.io/mail", "enabled"),
            ("bizapps.partnerkit.io/chat", "enabled")
        ])
    );
    assert_eq!(
        env.config_map(&ws, "customer-data").await.unwrap()["data"],
        json!({"invoice": "42"})
    );
    assert_eq!(
        subjects(
            &env.role_binding(&ws, "partnerkit-partner-admins")
                .await
                .unwrap()
        ),
        vec![ivan.clone()]
    );
    assert_eq!(
        subjects(
            &env.role_binding(&ws, "partnerkit-tenant-admins")
                .await
                .unwrap()
        ),
        vec![ivan.clone()]
    );
    assert_eq!(
        env.config_map(&ws, "partnerkit-bizapps").await.unwrap()["data"]["crm"],
        "false"
    );
    assert_eq!(
        env.config_map(&ws, "partnerkit-branding").await.unwrap()["data"]["primaryColor"],
        "#333333"
    );
    // The workspace is readable by the new partner's admin (through the binding in it), no
    // longer by the old one's.
    let got = env
        .kubectl_as(&ivan, &["get", "namespace", &ws, "-o", "name"])
        .await;
    assert_eq!(
        got.stdout.trim(),
        format!("namespace/{ws}"),
        "{}",
        got.stderr
    );
    let alice = env.email("alice", &acme);
    let refused = env
        .kubectl_as(&alice, &["get", "namespace", &ws, "-o", "name"])
        .await;
    assert!(
        !refused.ok() && refused.stderr.contains("forbidden"),
        "{}{}",
        refused.stdout,
        refused.stderr
    );
    env.kubectl_ok(&["delete", "partnerassignment", &right, &wrong])
        .await;
    env.kubectl_ok(&["delete", "clusterrolebinding", &env.n("platform-admins")])
        .await;
    env.finish().await;
}

/// A freed name passes to the same-named Tenant in another partner, every time and in either
/// order: the holder is deleted (its workspace with it, by policy), and the other one becomes
/// Ready and materializes the workspace for its partner. Rounds alternate the order: the
/// other Tenant waits as NameConflict before the holder goes, or it is created while the holder
/// is still being deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_freed_tenant_name_passes_to_the_same_named_tenant_every_time() {
    let env = Env::start().await;
    let (acme, initech) = (env.n("acme"), env.n("initech"));
    let acme_ns = env
        .partner_ready(&acme, &[&env.email("alice", &acme)], json!({}))
        .await;
    let initech_ns = env
        .partner_ready(&initech, &[&env.email("ivan", &initech)], json!({}))
        .await;
    let globex = env.n("globex");
    let ws = env.ws(&globex);
    let spec = json!({"displayName": "Globex", "deletionPolicy": "Delete"});
    env.tenant_ready(&acme_ns, &globex, spec.clone()).await;
    let (mut holder, mut next) = ((acme_ns, acme), (initech_ns, initech));
    for round in 0..4 {
        let waits_first = round % 2 == 0;
        if waits_first {
            env.apply_json(&tenant_json(&next.0, &globex, spec.clone()))
                .await;
            env.wait_reason("Tenant", Some(&next.0), &globex, "NameConflict")
                .await;
            env.delete("tenant", Some(&holder.0), &globex).await;
        } else {
            env.delete("tenant", Some(&holder.0), &globex).await;
            env.apply_json(&tenant_json(&next.0, &globex, spec.clone()))
                .await;
        }
        let t = env
            .wait_ready_within(30, "Tenant", Some(&next.0), &globex)
            .await;
        assert_eq!(t["status"]["workspace"], json!(ws), "round {round}");
        let namespace = env.namespace(&ws).await.expect("the workspace");
        assert_eq!(labels_of(&namespace)[PL], next.1, "round {round}");
        env.wait_gone("partnerkit.io/v1alpha1", "Tenant", Some(&holder.0), &globex)
            .await;
        std::mem::swap(&mut holder, &mut next);
    }
    env.finish().await;
}

/// A company moved back and forth between two partners the way the portal's Partner Assignment
/// moves it (assignment, delete, and the new Tenant created at once, while the old one is still
/// going): every time, the new Tenant adopts the same retained workspace, with its data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_company_moved_back_and_forth_adopts_its_workspace_every_time() {
    let env = Env::start().await;
    let (acme, initech) = (env.n("acme"), env.n("initech"));
    let acme_ns = env
        .partner_ready(&acme, &[&env.email("alice", &acme)], json!({}))
        .await;
    let initech_ns = env
        .partner_ready(&initech, &[&env.email("ivan", &initech)], json!({}))
        .await;
    let globex = env.n("globex");
    let ws = env.ws(&globex);
    let spec = json!({"displayName": "Globex"});
    env.tenant_ready(&acme_ns, &globex, spec.clone()).await;
    env.apply_json(&config_map_json(
        &ws,
        "customer-data",
        json!({"invoice": "42"}),
    ))
    .await;
    let uid = env.namespace(&ws).await.unwrap()["metadata"]["uid"].clone();
    let (mut from, mut to) = ((acme_ns, acme), (initech_ns, initech));
    for round in 0..4 {
        env.apply_json(
            &json!({"apiVersion": "partnerkit.io/v1alpha1", "kind": "PartnerAssignment",
            "metadata": {"name": format!("{globex}-to-{}", to.1)},
            "spec": {"tenant": globex, "from": from.1, "to": to.1}}),
        )
        .await;
        env.delete("tenant", Some(&from.0), &globex).await;
        env.apply_json(&tenant_json(&to.0, &globex, spec.clone()))
            .await;
        env.wait_ready_within(30, "Tenant", Some(&to.0), &globex)
            .await;
        let namespace = env.namespace(&ws).await.expect("the workspace");
        assert_eq!(
            namespace["metadata"]["uid"], uid,
            "round {round}: the same workspace"
        );
        assert_eq!(labels_of(&namespace)[PL], to.1, "round {round}");
        assert!(
            !labels_of(&namespace).contains_key("partnerkit.io/orphaned"),
            "round {round}: adopted"
        );
        assert_eq!(
            env.config_map(&ws, "customer-data").await.unwrap()["data"]["invoice"],
            "42",
            "round {round}: the data moved with it"
        );
        env.wait_gone("partnerkit.io/v1alpha1", "Tenant", Some(&from.0), &globex)
            .await;
        std::mem::swap(&mut from, &mut to);
    }
    env.finish().await;
}
