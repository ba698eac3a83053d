//! DESIGN.md rules about Partners, against the real operator driven with kubectl:
//! what a Partner materializes, its template (created once, never overwritten), its status,
//! the tenant quota and the deletion finalizer.

mod support;

use serde_json::json;
use support::{
    Env, config_map_json, labels_of, our_labels, partner_json, ready, smap, subjects, tenant_json,
};

const MB: &str = "app.kubernetes.io/managed-by";
const PL: &str = "partnerkit.io/partner";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partner_materializes_namespace_rbac_branding_and_status() {
    let env = Env::start().await;
    let acme = env.n("acme");
    let (alice, bob) = (env.email("alice", &acme), env.email("bob", &acme));
    env.apply_json(&partner_json(
        &acme,
        "Acme Reseller",
        &[&bob, &alice],
        json!({
            "entitlements": {"branding": true, "bizApps": ["crm"]},
            "branding": {"logoUrl": "https://acme.example/logo.png", "primaryColor": "#0055ff", "support": {"email": "help@acme.example"}}
        }),
    ))
    .await;
    let p = env.wait_ready("Partner", None, &acme).await;
    let pns = env.pns(&acme);

    let ns = env.namespace(&pns).await.expect("partner namespace");
    assert_eq!(our_labels(&ns), smap([(MB, "partnerkit"), (PL, &acme)]));

    let rb = env
        .role_binding(&pns, "partnerkit-partner-admins")
        .await
        .expect("partner admins RoleBinding");
    assert_eq!(
        rb["roleRef"],
        json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "partnerkit-partner-admin"})
    );
    assert_eq!(
        subjects(&rb),
        vec![alice.clone(), bob.clone()],
        "effective admins, sorted"
    );
    assert_eq!(labels_of(&rb), smap([(MB, "partnerkit"), (PL, &acme)]));

    let role = format!("partnerkit:partner:{acme}");
    let expected_rules = |namespaces: Vec<&str>| {
        json!([
            {"apiGroups": ["partnerkit.io"], "resources": ["partners"], "resourceNames": [acme], "verbs": ["get", "list", "watch", "patch"]},
            {"apiGroups": ["partnerkit.io"], "resources": ["partners/status"], "resourceNames": [acme], "verbs": ["get"]},
            {"apiGroups": [""], "resources": ["namespaces"], "resourceNames": namespaces, "verbs": ["get"]}
        ])
    };
    let cr = env
        .cluster_role(&role)
        .await
        .expect("per-partner ClusterRole");
    assert_eq!(cr["rules"], expected_rules(vec![&pns]));
    let crb = env
        .cluster_role_binding(&role)
        .await
        .expect("per-partner ClusterRoleBinding");
    assert_eq!(
        crb["roleRef"],
        json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role})
    );
    assert_eq!(subjects(&crb), vec![alice.clone(), bob.clone()]);

    let branding = env
        .config_map(&pns, "partnerkit-branding")
        .await
        .expect("branding");
    assert_eq!(
        branding["data"],
        json!({"partner": acme, "partnerDisplayName": "Acme Reseller", "logoUrl": "https://acme.example/logo.png",
               "primaryColor": "#0055ff", "supportEmail": "help@acme.example"})
    );

    let s = &p["status"];
    assert_eq!(s["namespace"], pns.as_str());
    assert_eq!(s["admins"], json!([alice, bob]));
    assert_eq!(s["tenants"], 0);
    assert_eq!(s["brandingApplied"], true);
    assert_eq!(s["observedGeneration"], p["metadata"]["generation"]);
    let c = ready(&p).expect("Ready");
    assert_eq!(
        (c["status"].as_str(), c["reason"].as_str()),
        (Some("True"), Some("Reconciled"))
    );

    // A tenant: counted in status; the per-partner role does not grow (the workspace is
    // readable through the partner admins' RoleBinding in it).
    let globex = env.n("globex");
    env.tenant_ready(&pns, &globex, json!({"displayName": "Globex"}))
        .await;
    let ws = env.ws(&globex);
    env.eventually(
        5,
        "the partner to count its tenant and see its workspace",
        || async {
            let p = env.partner(&acme).await?;
            let cr = env.cluster_role(&role).await?;
            (p["status"]["tenants"] == 1 && cr["rules"] == expected_rules(vec![&pns])).then_some(())
        },
    )
    .await;
    let out = env
        .kubectl_as(&alice, &["get", "namespace", &ws, "-o", "name"])
        .await;
    assert_eq!(
        out.stdout.trim(),
        format!("namespace/{ws}"),
        "{}",
        out.stderr
    );
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn template_is_created_once_and_never_overwritten() {
    let mut env = Env::start().await;
    let acme = env.n("acme");
    let (alice, bob) = (env.email("alice", &acme), env.email("bob", &acme));
    let pns = env.partner_ready(&acme, &[&alice, &bob], json!({})).await;

    let t = env.wait_ready("Tenant", Some(&pns), "template").await;
    assert_eq!(t["spec"]["displayName"], format!("{acme} Inc (Template)"));
    assert_eq!(labels_of(&t)["partnerkit.io/template"], "true");
    let first_uid = t["metadata"]["uid"].clone();

    // The SECOND admin edits the template (the seed system only let the first one).
    let edited = tenant_json(
        &pns,
        "template",
        json!({"displayName": "Acme defaults", "bizApps": {"chat": false}}),
    );
    let o = env.apply_as(&bob, &edited.to_string()).await;
    assert!(o.ok(), "the second admin edits the template: {}", o.stderr);
    let globex = env.n("globex");
    env.tenant_ready(&pns, &globex, json!({"displayName": "Globex"}))
        .await;

    // A restart, then a change of the Partner: the template keeps the edit.
    env.restart_operator().await;
    env.apply_json(&partner_json(
        &acme,
        "Acme Renamed",
        &[&alice, &bob],
        json!({}),
    ))
    .await;
    env.wait_ready("Partner", None, &acme).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let t = env.tenant(&pns, "template").await.expect("template");
    assert_eq!(t["metadata"]["uid"], first_uid);
    assert_eq!(
        t["spec"]["displayName"], "Acme defaults",
        "the admin's edit is kept"
    );
    assert_eq!(t["spec"]["bizApps"], json!({"chat": false}));
    let cm = env
        .config_map(&env.ws(&globex), "partnerkit-bizapps")
        .await
        .expect("bizapps");
    assert_eq!(
        cm["data"]["chat"], "false",
        "the edited template is what tenants inherit"
    );

    // Deleted (by a partner admin): recreated from the current Partner.
    let o = env
        .kubectl_as(&alice, &["delete", "tenant", "template", "-n", &pns])
        .await;
    assert!(o.ok(), "{}", o.stderr);
    let t = env
        .eventually(10, "the template to be recreated", || async {
            let t = env.tenant(&pns, "template").await?;
            (t["metadata"]["uid"] != first_uid).then_some(t)
        })
        .await;
    assert_eq!(t["spec"]["displayName"], "Acme Renamed (Template)");
    assert!(t["spec"].get("bizApps").is_none(), "{:#}", t["spec"]);
    env.eventually(
        10,
        "the tenant to lose the template's chat=false",
        || async {
            let cm = env
                .config_map(&env.ws(&globex), "partnerkit-bizapps")
                .await?;
            (cm["data"]["chat"] == "true").then_some(())
        },
    )
    .await;
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_tenants_refuses_the_excess_tenant_until_another_goes() {
    let env = Env::start().await;
    let acme = env.n("acme");
    let pns = env
        .partner_ready(
            &acme,
            &[&env.email("alice", &acme)],
            json!({"entitlements": {"maxTenants": 2}}),
        )
        .await;
    let (t1, t2, t3) = (env.n("t1"), env.n("t2"), env.n("t3"));
    env.tenant_ready(&pns, &t1, json!({"displayName": "One"}))
        .await;
    env.tenant_ready(&pns, &t2, json!({"displayName": "Two"}))
        .await;
    env.apply_json(&tenant_json(&pns, &t3, json!({"displayName": "Three"})))
        .await;
    let t = env
        .wait_reason("Tenant", Some(&pns), &t3, "QuotaExceeded")
        .await;
    let c = ready(&t).expect("Ready");
    assert_eq!(c["status"], "False");
    assert!(
        c["message"]
            .as_str()
            .unwrap()
            .contains("at most 2 tenants (entitlements.maxTenants)"),
        "{c:#}"
    );
    assert!(t["status"].get("workspace").is_none());
    assert!(
        env.namespace(&env.ws(&t3)).await.is_none(),
        "nothing materialized for the excess tenant"
    );
    // The partner's status follows its tenants within PARTNER_WINDOW (partner reconciles are
    // coalesced).
    env.eventually(5, "the partner to count 3 tenants", || async {
        (env.partner(&acme).await?["status"]["tenants"] == 3).then_some(())
    })
    .await;

    env.delete("tenant", Some(&pns), &t1).await;
    env.wait_ready("Tenant", Some(&pns), &t3).await;
    let ns = env
        .namespace(&env.ws(&t3))
        .await
        .expect("workspace of the third tenant");
    assert_eq!(labels_of(&ns)["partnerkit.io/tenant"], t3);
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partner_with_tenants_is_held_until_they_are_gone_and_no_data_is_lost() {
    let env = Env::start().await;
    let acme = env.n("acme");
    let pns = env
        .partner_ready(&acme, &[&env.email("alice", &acme)], json!({}))
        .await;
    let globex = env.n("globex");
    env.tenant_ready(&pns, &globex, json!({"displayName": "Globex"}))
        .await;
    let ws = env.ws(&globex);
    env.apply_json(&config_map_json(
        &ws,
        "customer-data",
        json!({"invoice": "42"}),
    ))
    .await;

    env.delete("partner", None, &acme).await;
    let p = env.wait_reason("Partner", None, &acme, "HasTenants").await;
    let c = ready(&p).expect("Ready");
    assert_eq!(c["status"], "False");
    assert!(
        c["message"].as_str().unwrap().contains(&globex),
        "names the tenant: {c:#}"
    );
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(env.partner(&acme).await.is_some(), "held by its finalizer");
    assert!(
        env.namespace(&pns).await.is_some(),
        "the partner namespace stays"
    );
    assert!(env.tenant(&pns, &globex).await.is_some());

    env.delete("tenant", Some(&pns), &globex).await;
    env.wait_gone("partnerkit.io/v1alpha1", "Partner", None, &acme)
        .await;
    env.wait_gone("v1", "Namespace", None, &pns).await;
    let role = format!("partnerkit:partner:{acme}");
    env.wait_gone("rbac.authorization.k8s.io/v1", "ClusterRole", None, &role)
        .await;
    env.wait_gone(
        "rbac.authorization.k8s.io/v1",
        "ClusterRoleBinding",
        None,
        &role,
    )
    .await;

    let ns = env.namespace(&ws).await.expect("the workspace is kept");
    assert_eq!(labels_of(&ns)["partnerkit.io/orphaned"], "true");
    let cm = env
        .config_map(&ws, "customer-data")
        .await
        .expect("user data kept");
    assert_eq!(cm["data"], json!({"invoice": "42"}));
    env.finish().await;
}
