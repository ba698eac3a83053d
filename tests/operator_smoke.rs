//! Smoke tests of the operator: the real controllers, in-process, against kube-sim.

mod support;

use std::time::Duration;

use support::{CONFIG, Operator};

const ACME: &str = r##"
apiVersion: partnerkit.io/v1alpha1
kind: Partner
metadata: {name: acme}
spec:
  displayName: Acme Reseller
  admins: [{email: alice@acme.example}]
  entitlements: {branding: true, bizApps: [crm]}
  branding: {primaryColor: "#0055ff", support: {email: help@acme.example}}
"##;

const TEMPLATE_AND_GLOBEX: &str = r##"
apiVersion: partnerkit.io/v1alpha1
kind: Tenant
metadata: {name: template, namespace: partner-acme}
spec:
  displayName: Acme Reseller (Template)
  bizApps: {crm: true, chat: false}
  profiles: {wifi: {ssid: acme, security: wpa2}, printer: {model: laser}}
---
apiVersion: partnerkit.io/v1alpha1
kind: Tenant
metadata: {name: globex, namespace: partner-acme}
spec:
  displayName: Globex
  bizApps: {chat: true}
  profiles: {wifi: {ssid: globex}}
"##;

fn labels(o: &serde_json::Value) -> &serde_json::Map<String, serde_json::Value> {
    o["metadata"]["labels"].as_object().expect("labels")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn materializes_inherits_live_and_then_writes_nothing() {
    let op = Operator::start(CONFIG).await;
    op.apply(ACME).await;
    op.wait_reason("Partner", None, "acme", "Reconciled").await;
    // The template tenant exists (created by partnerkit); the user's apply then edits it.
    op.eventually(10, "the template tenant", || async {
        op.get(
            "partnerkit.io/v1alpha1",
            "Tenant",
            Some("partner-acme"),
            "template",
        )
        .await
    })
    .await;
    op.apply(TEMPLATE_AND_GLOBEX).await;
    op.wait_reason("Tenant", Some("partner-acme"), "globex", "Reconciled")
        .await;

    let ns = op
        .get("v1", "Namespace", None, "tenant-globex")
        .await
        .expect("workspace");
    let l = labels(&ns);
    assert_eq!(l["partnerkit.io/partner"], "acme");
    assert_eq!(l["partnerkit.io/tenant"], "globex");
    assert_eq!(
        l["bizapps.partnerkit.io/crm"], "enabled",
        "premium app from the template, entitled"
    );
    assert_eq!(
        l["bizapps.partnerkit.io/chat"], "enabled",
        "the tenant's own value wins"
    );
    assert!(!l.contains_key("bizapps.partnerkit.io/analytics"));
    let wifi = op
        .get(
            "v1",
            "ConfigMap",
            Some("tenant-globex"),
            "partnerkit-profile-wifi",
        )
        .await
        .expect("wifi profile");
    assert_eq!(
        wifi["data"],
        serde_json::json!({"ssid": "globex", "security": "wpa2"})
    );
    let branding = op
        .get(
            "v1",
            "ConfigMap",
            Some("tenant-globex"),
            "partnerkit-branding",
        )
        .await
        .expect("branding");
    assert_eq!(branding["data"]["primaryColor"], "#0055ff");
    assert_eq!(branding["data"]["supportEmail"], "help@acme.example");
    assert!(
        op.get(
            "rbac.authorization.k8s.io/v1",
            "RoleBinding",
            Some("tenant-globex"),
            "partnerkit-tenant-admins"
        )
        .await
        .is_some()
    );

    // Live inheritance: a template edit reaches the tenant; a dropped profile is removed.
    op.apply(
        r##"
apiVersion: partnerkit.io/v1alpha1
kind: Tenant
metadata: {name: template, namespace: partner-acme}
spec:
  displayName: Acme Reseller (Template)
  bizApps: {crm: true, chat: false}
  profiles: {wifi: {ssid: acme, security: wpa3}}
"##,
    )
    .await;
    op.eventually(10, "the template change in the workspace", || async {
        let wifi = op
            .get(
                "v1",
                "ConfigMap",
                Some("tenant-globex"),
                "partnerkit-profile-wifi",
            )
            .await?;
        let printer = op
            .get(
                "v1",
                "ConfigMap",
                Some("tenant-globex"),
                "partnerkit-profile-printer",
            )
            .await;
        (wifi["data"]["security"] == "wpa3" && printer.is_none()).then_some(())
    })
    .await;

    // Drift is repaired.
    op.apply("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: partnerkit-bizapps, namespace: tenant-globex}\ndata: {crm: \"false\", evil: \"true\"}\n").await;
    op.eventually(10, "the bizapps ConfigMap repaired", || async {
        let cm = op
            .get(
                "v1",
                "ConfigMap",
                Some("tenant-globex"),
                "partnerkit-bizapps",
            )
            .await?;
        (cm["data"]["crm"] == "true" && cm["data"].get("evil").is_none()).then_some(())
    })
    .await;

    // Converged: nothing more is written.
    tokio::time::sleep(Duration::from_millis(500)).await;
    op.reset_requests();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let requests = op.requests();
    let (_lease, other) = support::lease_and_other_writes(&requests);
    assert_eq!(other, 0, "writes after convergence: {requests:#}");
    assert!(
        op.telemetry.metrics.reconcile_total(
            partnerkit::controller::tenant::CONTROLLER,
            partnerkit::telemetry::ReconcileResult::Success
        ) > 0
    );
    op.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_orphans_the_workspace_and_another_partner_adopts_it_once_assigned() {
    let op = Operator::start(CONFIG).await;
    op.apply(ACME).await;
    op.wait_reason("Partner", None, "acme", "Reconciled").await;
    op.apply("apiVersion: partnerkit.io/v1alpha1\nkind: Partner\nmetadata: {name: other}\nspec: {displayName: Other, admins: [{email: olga@other.example}]}\n").await;
    op.wait_reason("Partner", None, "other", "Reconciled").await;
    op.apply("apiVersion: partnerkit.io/v1alpha1\nkind: Tenant\nmetadata: {name: globex, namespace: partner-acme}\nspec: {displayName: Globex}\n").await;
    op.wait_reason("Tenant", Some("partner-acme"), "globex", "Reconciled")
        .await;

    // A same-named tenant elsewhere is refused while the first exists.
    op.apply("apiVersion: partnerkit.io/v1alpha1\nkind: Tenant\nmetadata: {name: globex, namespace: partner-other}\nspec: {displayName: Globex moved}\n").await;
    op.wait_reason("Tenant", Some("partner-other"), "globex", "NameConflict")
        .await;

    // A partner with tenants is held.
    let partners: kube::Api<partnerkit::api::Partner> = kube::Api::all(op.client.clone());
    partners
        .delete("acme", &Default::default())
        .await
        .expect("delete partner");
    op.wait_reason("Partner", None, "acme", "HasTenants").await;

    // Deleting the tenant (Retain) orphans its workspace: acme's retained data, which the
    // waiting tenant of another partner may not take on its own ...
    let tenants: kube::Api<partnerkit::api::Tenant> =
        kube::Api::namespaced(op.client.clone(), "partner-acme");
    tenants
        .delete("globex", &Default::default())
        .await
        .expect("delete tenant");
    op.wait_reason(
        "Tenant",
        Some("partner-other"),
        "globex",
        "AssignmentRequired",
    )
    .await;
    // ... until a platform admin assigns the company to it.
    op.apply("apiVersion: partnerkit.io/v1alpha1\nkind: PartnerAssignment\nmetadata: {name: globex-to-other}\nspec: {tenant: globex, from: acme, to: other}\n").await;
    op.wait_reason("Tenant", Some("partner-other"), "globex", "Reconciled")
        .await;
    let ns = op
        .get("v1", "Namespace", None, "tenant-globex")
        .await
        .expect("workspace kept");
    assert_eq!(labels(&ns)["partnerkit.io/partner"], "other");
    assert!(!labels(&ns).contains_key("partnerkit.io/orphaned"));
    let rb = op
        .get(
            "rbac.authorization.k8s.io/v1",
            "RoleBinding",
            Some("tenant-globex"),
            "partnerkit-partner-admins",
        )
        .await
        .expect("binding");
    assert_eq!(rb["subjects"][0]["name"], "olga@other.example");

    // With its tenant gone, the partner goes, and its namespace and ClusterRole with it.
    op.eventually(10, "partner acme gone", || async {
        op.get("partnerkit.io/v1alpha1", "Partner", None, "acme")
            .await
            .is_none()
            .then_some(())
    })
    .await;
    op.eventually(10, "partner namespace gone", || async {
        op.get("v1", "Namespace", None, "partner-acme")
            .await
            .is_none()
            .then_some(())
    })
    .await;
    assert!(
        op.get(
            "rbac.authorization.k8s.io/v1",
            "ClusterRole",
            None,
            "partnerkit:partner:acme"
        )
        .await
        .is_none()
    );
    op.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_takes_over_a_foreign_namespace() {
    let op = Operator::start(CONFIG).await;
    op.apply(ACME).await;
    op.wait_reason("Partner", None, "acme", "Reconciled").await;
    op.apply("apiVersion: v1\nkind: Namespace\nmetadata: {name: tenant-initech}\n")
        .await;
    op.apply("apiVersion: partnerkit.io/v1alpha1\nkind: Tenant\nmetadata: {name: initech, namespace: partner-acme}\nspec: {displayName: Initech, deletionPolicy: Delete}\n").await;
    op.wait_reason("Tenant", Some("partner-acme"), "initech", "NameConflict")
        .await;
    let ns = op
        .get("v1", "Namespace", None, "tenant-initech")
        .await
        .expect("namespace");
    assert!(
        ns["metadata"]["labels"]
            .get("partnerkit.io/tenant")
            .is_none(),
        "not labelled by partnerkit"
    );
    let tenants: kube::Api<partnerkit::api::Tenant> =
        kube::Api::namespaced(op.client.clone(), "partner-acme");
    tenants
        .delete("initech", &Default::default())
        .await
        .expect("delete tenant");
    op.eventually(10, "tenant gone", || async {
        op.get(
            "partnerkit.io/v1alpha1",
            "Tenant",
            Some("partner-acme"),
            "initech",
        )
        .await
        .is_none()
        .then_some(())
    })
    .await;
    assert!(
        op.get("v1", "Namespace", None, "tenant-initech")
            .await
            .is_some(),
        "deletionPolicy Delete never deletes a foreign namespace"
    );
    op.stop().await;
}
