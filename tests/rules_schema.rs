//! DESIGN.md: bad input is rejected at `kubectl apply` time by the CRD schema (types,
//! patterns, CEL rules), with the field named — through the API server, not the controller.
//! What a CRD schema cannot check within the API server's CEL cost budget (the keys of a
//! Tenant's maps) is refused by the admission policy `partnerkit-tenant-fields`.

mod support;

use serde_json::{Value, json};
use support::{Env, partner_json, tenant_json};

async fn refused(env: &Env, manifest: &Value, field: &str, text: &str) {
    let o = env.create_as(None, &manifest.to_string()).await;
    assert!(!o.ok(), "accepted: {manifest}");
    assert!(o.stderr.contains("is invalid"), "{}", o.stderr);
    assert!(
        o.stderr.contains(field) && o.stderr.contains(text),
        "expected {field} / {text} in:\n{}",
        o.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_partners_and_tenants_are_refused_by_the_schema() {
    let env = Env::start_with(Default::default(), support::CONFIG, false).await;
    let p = env.n("acme");
    let ok = "alice@acme.example";
    refused(
        &env,
        &partner_json(&p, "A", &["not-an-email"], json!({})),
        "spec.admins[0].email",
        "should match",
    )
    .await;
    refused(
        &env,
        &partner_json(&p, "A", &[ok, ok], json!({})),
        "spec.admins",
        "",
    )
    .await;
    refused(
        &env,
        &partner_json(
            &p,
            "A",
            &[ok],
            json!({"branding": {"primaryColor": "blue"}}),
        ),
        "spec.branding.primaryColor",
        "should match",
    )
    .await;
    refused(
        &env,
        &partner_json(
            &p,
            "A",
            &[ok],
            json!({"branding": {"logoUrl": "http://x.example/l.png"}}),
        ),
        "spec.branding.logoUrl",
        "",
    )
    .await;
    refused(
        &env,
        &partner_json(
            &p,
            "A",
            &[ok],
            json!({"branding": {"support": {"email": "h@a.example", "url": "https://a.example"}}}),
        ),
        "spec.branding.support",
        "",
    )
    .await;
    refused(
        &env,
        &partner_json(&p, "A", &[], json!({})),
        "spec.admins",
        "",
    )
    .await;
    refused(
        &env,
        &tenant_json(
            "default",
            &env.n("t"),
            json!({"displayName": "T", "deletionPolicy": "Shred"}),
        ),
        "spec.deletionPolicy",
        "Unsupported value",
    )
    .await;
    refused(
        &env,
        &tenant_json(
            "default",
            &env.n("t"),
            json!({"displayName": "T", "admins": [{"email": "bob"}]}),
        ),
        "spec.admins[0].email",
        "should match",
    )
    .await;
    refused(
        &env,
        &tenant_json(
            "default",
            &env.n("t"),
            json!({"displayName": "T", "bizApps": {"crm": "yes"}}),
        ),
        "spec.bizApps.crm",
        "boolean",
    )
    .await;
    // Map keys: refused by the admission policy, naming the field and the bad keys.
    for (spec, field, text) in [
        (
            json!({"displayName": "T", "bizApps": {"CRM!": true, "mail": true}}),
            "spec.bizApps",
            "BizApp names must be DNS labels: CRM!",
        ),
        (
            json!({"displayName": "T", "profiles": {"Wi Fi": {"a": "b"}, "ok": {"a": "b"}}}),
            "spec.profiles",
            "profile names must be DNS labels of at most 40 characters: Wi Fi",
        ),
        (
            json!({"displayName": "T", "profiles": {(&"p".repeat(41)): {"a": "b"}}}),
            "spec.profiles",
            "at most 40 characters",
        ),
        (
            json!({"displayName": "T", "profiles": {"wifi": {"bad key": "b"}, "ok": {"a.b_c-1": "x"}}}),
            "spec.profiles",
            "keys must be ConfigMap keys (alphanumerics, '-', '_', '.'), in profile wifi",
        ),
        (
            json!({"displayName": "T", "profiles": {"wifi": {"..x": "b"}}}),
            "spec.profiles",
            "in profile wifi",
        ),
    ] {
        let o = env
            .create_as(
                None,
                &tenant_json("default", &env.n("t"), spec.clone()).to_string(),
            )
            .await;
        assert!(!o.ok(), "accepted: {spec}");
        assert!(
            o.stderr.contains("partnerkit-tenant-fields")
                && o.stderr.contains(field)
                && o.stderr.contains(text),
            "expected {field} / {text} from partnerkit-tenant-fields in:\n{}",
            o.stderr
        );
    }
    let good = tenant_json(
        "default",
        &env.n("t"),
        json!({"displayName": "T", "bizApps": {"mail": true}, "profiles": {"wifi": {"ssid": "x", "a.b_c-1": "y"}}}),
    );
    let o = env.create_as(None, &good.to_string()).await;
    assert!(o.ok(), "{}", o.stderr);
    env.kubectl_ok(&["delete", "tenant", &env.n("t"), "-n", "default"])
        .await;
    // And a well-formed one passes.
    let o = env.create_as(None, &partner_json(&p, "A", &[ok], json!({"branding": {"primaryColor": "#0055ff", "support": {"url": "https://help.acme.example"}}})).to_string()).await;
    assert!(o.ok(), "{}", o.stderr);
    env.kubectl_ok(&["delete", "partner", &p]).await;
    env.finish().await;
}
