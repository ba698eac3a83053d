//! The CRDs: `crds/` is exactly what `partnerkit crdgen` writes (CI fails on drift), and the
//! schemas refuse bad input with the field named — checked with kube-sim's implementation of
//! the API server's structural schema validation and CEL rules.

use kube_sim::schema::CrdSchema;
use partnerkit::crdgen;
use serde_json::{Value, json};

#[test]
fn crds_directory_matches_the_generated_crds() {
    for (file, crd) in crdgen::crds() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("crds")
            .join(file);
        let on_disk =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(
            on_disk,
            crdgen::to_yaml(&crd).unwrap(),
            "crds/{file} is stale: run `make crds`"
        );
    }
}

fn schema(kind: &str) -> CrdSchema {
    let crd = crdgen::crds()
        .into_iter()
        .find(|(_, c)| c.spec.names.kind == kind)
        .expect("kind")
        .1;
    let v = serde_json::to_value(&crd.spec.versions[0].schema).unwrap();
    CrdSchema::new(&v["openAPIV3Schema"])
        .unwrap_or_else(|e| panic!("{kind} schema does not compile: {e:?}"))
}

/// Default, prune and validate like the API server; the error texts (`field: message`).
fn errors(kind: &str, obj: Value, old: Option<Value>) -> Vec<String> {
    let s = schema(kind);
    let mut obj = obj;
    s.prune(&mut obj);
    s.apply_defaults(&mut obj);
    s.validate(&obj, old.as_ref())
        .iter()
        .map(|e| e.message())
        .collect()
}

fn partner(spec: Value) -> Value {
    json!({"apiVersion": "partnerkit.io/v1alpha1", "kind": "Partner", "metadata": {"name": "acme"}, "spec": spec})
}

fn tenant(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "partnerkit.io/v1alpha1", "kind": "Tenant", "metadata": {"name": name, "namespace": "partner-acme"}, "spec": spec})
}

fn one(errs: &[String], field: &str, contains: &str) {
    assert!(
        errs.iter()
            .any(|e| e.starts_with(field) && e.contains(contains)),
        "want an error on {field} containing {contains:?}, got {errs:#?}"
    );
}

#[test]
fn a_valid_partner_passes_and_gets_defaults() {
    let s = schema("Partner");
    let mut p = partner(
        json!({"displayName": "Acme", "admins": [{"email": "alice@acme.example"}],
        "branding": {"logoUrl": "https://acme.example/logo.png", "primaryColor": "#0055ff", "support": {"email": "help@acme.example"}}}),
    );
    s.apply_defaults(&mut p);
    assert!(
        s.validate(&p, None).is_empty(),
        "{:?}",
        s.validate(&p, None)
    );
    assert_eq!(p["spec"]["entitlements"]["branding"], false);
}

#[test]
fn partner_admins_are_required_unique_and_emails() {
    one(
        &errors(
            "Partner",
            partner(json!({"displayName": "Acme", "admins": []})),
            None,
        ),
        "spec.admins",
        "should have at least 1 items",
    );
    one(
        &errors("Partner", partner(json!({"displayName": "Acme"})), None),
        "spec.admins",
        "Required value",
    );
    one(
        &errors(
            "Partner",
            partner(json!({"displayName": "Acme", "admins": [{"email": "not-an-email"}]})),
            None,
        ),
        "spec.admins[0].email",
        "should match",
    );
    one(
        &errors(
            "Partner",
            partner(
                json!({"displayName": "Acme", "admins": [{"email": "a@acme.example"}, {"email": "a@acme.example"}]}),
            ),
            None,
        ),
        "spec.admins[1]",
        "Duplicate value",
    );
}

#[test]
fn partner_branding_colour_urls_and_one_support_channel() {
    let base = |branding: Value| {
        partner(
            json!({"displayName": "Acme", "admins": [{"email": "a@acme.example"}], "branding": branding}),
        )
    };
    one(
        &errors("Partner", base(json!({"primaryColor": "blue"})), None),
        "spec.branding.primaryColor",
        "should match",
    );
    one(
        &errors(
            "Partner",
            base(json!({"logoUrl": "http://acme.example/logo.png"})),
            None,
        ),
        "spec.branding.logoUrl",
        "should match",
    );
    one(
        &errors(
            "Partner",
            base(
                json!({"support": {"email": "h@acme.example", "url": "https://help.acme.example"}}),
            ),
            None,
        ),
        "spec.branding.support",
        "exactly one of email or url must be set",
    );
    one(
        &errors("Partner", base(json!({"support": {}})), None),
        "spec.branding.support",
        "exactly one of email or url must be set",
    );
    assert!(
        errors(
            "Partner",
            base(json!({"support": {"url": "https://help.acme.example"}})),
            None
        )
        .is_empty()
    );
}

#[test]
fn partner_names_and_entitlements() {
    let mut p = partner(json!({"displayName": "Acme", "admins": [{"email": "a@acme.example"}]}));
    p["metadata"]["name"] = json!("Acme_Corp");
    one(
        &errors("Partner", p, None),
        "metadata.name",
        "must be a DNS label of at most 50 characters",
    );
    let mut p = partner(json!({"displayName": "Acme", "admins": [{"email": "a@acme.example"}]}));
    p["metadata"]["name"] = json!("a".repeat(51));
    one(
        &errors("Partner", p, None),
        "metadata.name",
        "at most 50 characters",
    );
    let p = partner(
        json!({"displayName": "Acme", "admins": [{"email": "a@acme.example"}], "entitlements": {"bizApps": ["CRM"], "maxTenants": -1}}),
    );
    let errs = errors("Partner", p, None);
    one(&errs, "spec.entitlements.bizApps[0]", "should match");
    one(
        &errs,
        "spec.entitlements.maxTenants",
        "greater than or equal to 0",
    );
}

#[test]
fn tenant_fields_are_checked() {
    assert!(errors("Tenant", tenant("globex", json!({"displayName": "Globex", "bizApps": {"crm": true}, "profiles": {"wifi": {"ssid": "globex"}}})), None).is_empty());
    one(
        &errors(
            "Tenant",
            tenant(
                "globex",
                json!({"displayName": "Globex", "deletionPolicy": "Purge"}),
            ),
            None,
        ),
        "spec.deletionPolicy",
        "Unsupported value: \"Purge\"",
    );
    // Map keys (BizApp and profile names, profile keys) are the admission policy's
    // (tests/rules_schema.rs): a CEL rule over map keys exceeds the CRD cost budget.
    assert!(errors("Tenant", tenant("globex", json!({"displayName": "Globex", "bizApps": {"CRM!": true}, "profiles": {"Wi Fi": {"bad key": "b"}}})), None).is_empty());
    one(
        &errors(
            "Tenant",
            tenant(
                "globex",
                json!({"displayName": "Globex", "admins": [{"email": "b@x.example"}, {"email": "b@x.example"}]}),
            ),
            None,
        ),
        "spec.admins[1]",
        "Duplicate value",
    );
    one(
        &errors(
            "Tenant",
            tenant("Globex", json!({"displayName": "Globex"})),
            None,
        ),
        "metadata.name",
        "DNS label",
    );
    one(
        &errors("Tenant", tenant("globex", json!({})), None),
        "spec.displayName",
        "Required value",
    );
}

#[test]
fn tenant_defaults_inherit_and_retain() {
    let s = schema("Tenant");
    let mut t = tenant("globex", json!({"displayName": "Globex"}));
    s.apply_defaults(&mut t);
    assert_eq!(t["spec"]["inheritFromTemplate"], true);
    assert_eq!(t["spec"]["deletionPolicy"], "Retain");
}

#[test]
fn invite_email_ttl_and_immutability() {
    let invite = |spec: Value| json!({"apiVersion": "partnerkit.io/v1alpha1", "kind": "PartnerAdminInvite", "metadata": {"name": "i", "namespace": "partner-acme"}, "spec": spec});
    let s = schema("PartnerAdminInvite");
    let mut ok = invite(json!({"email": "bob@acme.example"}));
    s.apply_defaults(&mut ok);
    assert_eq!(ok["spec"]["ttl"], "72h");
    assert!(s.validate(&ok, None).is_empty());
    one(
        &errors("PartnerAdminInvite", invite(json!({"email": "bob"})), None),
        "spec.email",
        "should match",
    );
    one(
        &errors(
            "PartnerAdminInvite",
            invite(json!({"email": "bob@acme.example", "ttl": "3 days"})),
            None,
        ),
        "spec.ttl",
        "should match",
    );
    one(
        &errors(
            "PartnerAdminInvite",
            invite(json!({"email": "bob@acme.example", "ttl": "8785h"})),
            None,
        ),
        "spec.ttl",
        "must be at most 8784h",
    );
    for fine in ["8784h", "1h30m", "500ms", "30s"] {
        let v = invite(json!({"email": "bob@acme.example", "ttl": fine}));
        assert!(s.validate(&v, None).is_empty(), "{fine}");
    }
    let long = "x".repeat(201);
    let mut too_long = invite(json!({"email": "bob@acme.example"}));
    too_long["metadata"]["name"] = json!(long);
    one(
        &errors("PartnerAdminInvite", too_long, None),
        "metadata.name",
        "at most 200 characters",
    );
    let changed = invite(json!({"email": "eve@acme.example", "ttl": "72h"}));
    one(
        &errors("PartnerAdminInvite", changed, Some(ok)),
        "spec",
        "spec is immutable",
    );
}
