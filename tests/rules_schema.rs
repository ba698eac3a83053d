//! DESIGN.md: bad input is rejected at `kubectl apply` time by the CRD schema (types,
//! patterns, CEL rules), with the field named — through the API server, not the controller.

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
    // And a well-formed one passes.
    let o = env.create_as(None, &partner_json(&p, "A", &[ok], json!({"branding": {"primaryColor": "#0055ff", "support": {"url": "https://help.acme.example"}}})).to_string()).await;
    assert!(o.ok(), "{}", o.stderr);
    env.kubectl_ok(&["delete", "partner", &p]).await;
    env.finish().await;
}
