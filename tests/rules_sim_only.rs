//! Rules that need kube-sim itself: its write counters (a converged operator writes nothing;
//! a restart mid-rollout writes nothing twice), its fault injection (to stop the operator in
//! the middle of a rollout) and its static tokens (the operator as the chart's ServiceAccount).
//! Left out of the real-cluster run.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use partnerkit::telemetry::ReconcileResult;
use serde_json::{Value, json};
use support::{Env, apply_value, partnerkit_writes, ready, tenant_json};

/// A platform with a bit of everything: two partners, a template with profiles, tenants with
/// own admins, a refused tenant of each kind, an accepted invite, an orphaned workspace.
async fn busy_platform(env: &Env) -> (String, String) {
    let (acme, initech) = (env.n("acme"), env.n("initech"));
    let acme_ns = env
        .partner_ready(
            &acme,
            &[&env.email("alice", &acme), &env.email("bob", &acme)],
            json!({
            "entitlements": {"branding": true, "bizApps": ["crm"], "maxTenants": 4},
            "branding": {"primaryColor": "#0055ff"}}),
        )
        .await;
    let initech_ns = env
        .partner_ready(&initech, &[&env.email("ivan", &initech)], json!({}))
        .await;
    env.apply_json(&tenant_json(
        &acme_ns,
        "template",
        json!({"displayName": "T", "bizApps": {"crm": true},
        "profiles": {"wifi": {"ssid": "acme"}, "printer": {"model": "laser"}}}),
    ))
    .await;
    env.tenant_ready(
        &acme_ns,
        &env.n("globex"),
        json!({"displayName": "G", "profiles": {"wifi": {"ssid": "g"}}}),
    )
    .await;
    env.tenant_ready(
        &acme_ns,
        &env.n("hooli"),
        json!({"displayName": "H", "admins": [{"email": "dan@hooli.example"}]}),
    )
    .await;
    env.tenant_ready(&initech_ns, &env.n("umbrella"), json!({"displayName": "U"}))
        .await;
    env.apply_json(&tenant_json(
        &initech_ns,
        &env.n("globex"),
        json!({"displayName": "dup"}),
    ))
    .await;
    env.apply_json(&tenant_json(
        &acme_ns,
        &env.n("greedy"),
        json!({"displayName": "X", "bizApps": {"analytics": true}}),
    ))
    .await;
    env.apply_json(&json!({"apiVersion": "partnerkit.io/v1alpha1", "kind": "PartnerAdminInvite",
        "metadata": {"name": "carol", "namespace": acme_ns}, "spec": {"email": "carol@acme.example"}})).await;
    env.kubectl_ok(&[
        "patch",
        "partneradmininvite",
        "carol",
        "-n",
        &acme_ns,
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"phase":"Accepted"}}"#,
    ])
    .await;
    env.tenant_ready(&initech_ns, &env.n("gone"), json!({"displayName": "Gone"}))
        .await;
    env.delete("tenant", Some(&initech_ns), &env.n("gone"))
        .await;
    env.wait_reason(
        "Tenant",
        Some(&initech_ns),
        &env.n("globex"),
        "NameConflict",
    )
    .await;
    env.wait_reason("Tenant", Some(&acme_ns), &env.n("greedy"), "NotEntitled")
        .await;
    env.wait_gone(
        "partnerkit.io/v1alpha1",
        "Tenant",
        Some(&initech_ns),
        &env.n("gone"),
    )
    .await;
    env.eventually(5, "carol in the bindings", || async {
        let rb = env
            .role_binding(&env.ws(&env.n("globex")), "partnerkit-partner-admins")
            .await?;
        support::subjects(&rb)
            .contains(&"carol@acme.example".to_string())
            .then_some(())
    })
    .await;
    (acme_ns, initech_ns)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_converged_operator_writes_nothing_not_even_after_a_restart() {
    let mut env = Env::sim_only(Default::default(), true).await;
    busy_platform(&env).await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    env.reset_requests();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let r = env.requests();
    assert_eq!(
        r["writes"], 0,
        "writes of a converged operator in 5 s: {r:#}"
    );

    // A new operator process finds everything in place: it lists, watches, and writes nothing.
    env.reset_requests();
    env.restart_operator().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let r = env.requests();
    assert_eq!(
        r["writes"],
        0,
        "writes after a restart: {:#?}",
        partnerkit_writes(&r)
    );
    assert!(
        r["byVerb"]["watch"].as_u64().unwrap_or(0) >= 8,
        "it did watch: {r:#}"
    );
    env.finish().await;
}

/// What partnerkit materialized for the partner `p`, and the status of its Partner and
/// Tenants, without what differs between two runs (uids, versions, timestamps, managedFields).
async fn materialized(env: &Env, p: &str) -> BTreeMap<String, Value> {
    let sel = format!("partnerkit.io/partner={p}");
    let mut out = BTreeMap::new();
    for (av, kind) in [
        ("v1", "Namespace"),
        ("v1", "ConfigMap"),
        ("rbac.authorization.k8s.io/v1", "RoleBinding"),
        ("rbac.authorization.k8s.io/v1", "ClusterRole"),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
    ] {
        for o in env.list(av, kind, None, Some(&sel)).await {
            let key = format!(
                "{kind} {}/{}",
                o["metadata"]["namespace"].as_str().unwrap_or(""),
                o["metadata"]["name"].as_str().unwrap()
            );
            let mut v = json!({"labels": o["metadata"]["labels"]});
            for f in ["data", "rules", "roleRef", "subjects"] {
                if let Some(x) = o.get(f) {
                    v[f] = x.clone();
                }
            }
            out.insert(key, v);
        }
    }
    let strip = |s: &Value| {
        let mut s = s.clone();
        for c in s["conditions"].as_array_mut().into_iter().flatten() {
            c.as_object_mut().unwrap().remove("lastTransitionTime");
        }
        s
    };
    for t in env
        .list("partnerkit.io/v1alpha1", "Tenant", Some(&env.pns(p)), None)
        .await
    {
        out.insert(
            format!("Tenant {}", t["metadata"]["name"].as_str().unwrap()),
            json!({"status": strip(&t["status"]), "finalizers": t["metadata"]["finalizers"]}),
        );
    }
    out.insert(
        format!("Partner {p}"),
        json!({"status": strip(&env.partner(p).await.unwrap()["status"])}),
    );
    out
}

const TENANTS: usize = 16;

fn rollout(env: &Env, pns: &str) -> String {
    (0..TENANTS)
        .map(|i| {
            let admins = if i % 3 == 0 {
                json!([{"email": format!("owner{i}@t.example")}])
            } else {
                json!([])
            };
            tenant_json(
                pns,
                &env.n(&format!("t{i:02}")),
                json!({"displayName": format!("T{i}"), "admins": admins,
                "profiles": {"wifi": {"ssid": format!("net{i}")}}}),
            )
            .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n---\n")
}

async fn ready_tenants(env: &Env, pns: &str) -> usize {
    env.list("partnerkit.io/v1alpha1", "Tenant", Some(pns), None)
        .await
        .iter()
        .filter(|t| {
            t["metadata"]["name"] != "template" && ready(t).is_some_and(|c| c["status"] == "True")
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restart_in_the_middle_of_a_rollout_converges_to_the_same_state_without_double_writes() {
    // The reference: an uninterrupted run.
    let reference = Env::sim_only(Default::default(), true).await;
    let mut env = Env::sim_only(Default::default(), true).await;
    let mut reference = reference;
    reference.sfx = env.sfx.clone();
    let acme = env.n("acme");
    let admins = [env.email("alice", &acme)];
    let admins: Vec<&str> = admins.iter().map(String::as_str).collect();
    let template = |pns: &str| {
        tenant_json(
            pns,
            "template",
            json!({"displayName": "T", "bizApps": {"chat": false}, "profiles": {"wifi": {"security": "wpa3"}}}),
        )
    };
    for e in [&reference, &env] {
        let pns = e.partner_ready(&acme, &admins, json!({})).await;
        e.apply_json(&template(&pns)).await;
        e.wait_ready("Tenant", Some(&pns), "template").await;
    }
    let pns = env.pns(&acme);
    reference.apply(&rollout(&reference, &pns)).await;
    reference
        .eventually(20, "the reference rollout", || async {
            (ready_tenants(&reference, &pns).await == TENANTS).then_some(())
        })
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let want = materialized(&reference, &acme).await;

    // The interrupted run: slowed down, killed once a few tenants are done.
    env.stop_operator().await;
    env.apply(&rollout(&env, &pns)).await;
    env.sim().sim.set_faults(kube_sim::Faults {
        latency_ms: 30,
        ..Default::default()
    });
    env.reset_requests();
    env.start_operator().await;
    env.eventually(20, "a few tenants to be done", || async {
        let done = partnerkit_writes(&env.requests())
            .get(&(
                "patch".to_string(),
                "tenants".to_string(),
                "status".to_string(),
            ))
            .copied()
            .unwrap_or(0);
        (done >= 3).then_some(())
    })
    .await;
    env.kill_operator().await;
    env.sim().sim.set_faults(Default::default());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let at_kill = materialized(&env, &acme).await;
    let done = ready_tenants(&env, &pns).await;
    assert!(
        (1..TENANTS).contains(&done),
        "stopped mid-way: {done} of {TENANTS} tenants done"
    );
    let missing_ns = (0..TENANTS)
        .filter(|i| {
            !at_kill.contains_key(&format!(
                "Namespace /{}",
                env.ws(&env.n(&format!("t{i:02}")))
            ))
        })
        .count();
    let stale = |kind: &str| {
        want.iter()
            .filter(|(k, v)| k.starts_with(kind) && at_kill.get(*k) != Some(v))
            .count() as u64
    };
    let (stale_cms, stale_rbs) = (stale("ConfigMap "), stale("RoleBinding "));

    env.reset_requests();
    env.start_operator().await;
    env.eventually(20, "the rollout to finish", || async {
        (ready_tenants(&env, &pns).await == TENANTS).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        materialized(&env, &acme).await,
        want,
        "the same state as an uninterrupted run"
    );

    let w = partnerkit_writes(&env.requests());
    let n = |verb: &str, resource: &str| {
        w.get(&(verb.to_string(), resource.to_string(), String::new()))
            .copied()
            .unwrap_or(0)
    };
    assert_eq!(
        n("create", "namespaces") as usize,
        missing_ns,
        "each missing workspace created once: {w:#?}"
    );
    assert!(
        n("patch", "configmaps") <= stale_cms,
        "ConfigMaps written at most once each ({stale_cms} to do): {w:#?}"
    );
    assert!(
        n("patch", "rolebindings") <= stale_rbs,
        "RoleBindings written at most once each ({stale_rbs} to do): {w:#?}"
    );
    assert_eq!(
        env.telemetry().metrics.reconcile_total(
            partnerkit::controller::tenant::CONTROLLER,
            ReconcileResult::Error
        ),
        0,
        "no conflicting writes"
    );
    env.finish().await;
    reference.finish().await;
}

/// The chart's operator RBAC (charts/partnerkit/templates/operator-rbac.yaml), rendered with
/// helm-python-sdk for release `partnerkit` in namespace `partnerkit`.
fn chart_operator_rbac() -> Vec<Value> {
    let chart = concat!(env!("CARGO_MANIFEST_DIR"), "/charts/partnerkit");
    let script = format!(
        "import json, yaml, helm_python as helm\n\
         with helm.Chart.load({chart:?}) as c:\n\
         \x20   out = c.render({{}}, name='partnerkit', namespace='partnerkit', is_install=True)\n\
         docs = [d for p, t in out.items() if p.endswith('operator-rbac.yaml') for d in yaml.safe_load_all(t) if d]\n\
         print(json.dumps(docs))\n"
    );
    let o = std::process::Command::new("python3")
        .args(["-c", &script])
        .output()
        .expect("python3 (with helm-python-sdk: pip install -r tests/chart/requirements.txt)");
    assert!(
        o.status.success(),
        "rendering the chart failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).expect("rendered RBAC as JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_works_with_exactly_the_charts_rbac() {
    let sa_user = "system:serviceaccount:partnerkit:partnerkit";
    let sim = kube_sim::SimConfig {
        tokens: vec![kube_sim::TokenEntry {
            token: "operator-token".into(),
            user: sa_user.into(),
            uid: "sa-uid".into(),
            groups: vec![
                "system:serviceaccounts".into(),
                "system:serviceaccounts:partnerkit".into(),
            ],
        }],
        ..Default::default()
    };
    let mut env = Env::sim_only(sim, false).await;
    let rbac = chart_operator_rbac();
    let kinds: Vec<&str> = rbac.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"]
    );
    env.apply_json(
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "partnerkit"}}),
    )
    .await;
    env.apply_json(&json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "partnerkit", "namespace": "partnerkit"}})).await;
    for d in &rbac {
        apply_value(&env.client, d, "helm").await;
    }
    let o = env
        .kubectl(&[
            "auth",
            "can-i",
            "create",
            "configmaps",
            "-n",
            "kube-system",
            "--as",
            sa_user,
        ])
        .await;
    assert_eq!(
        o.stdout.trim(),
        "yes",
        "the binding is in effect: {}",
        o.stderr
    );

    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: sim\n  cluster: {{server: {}}}\ncontexts:\n- name: sa\n  context: {{cluster: sim, user: sa}}\ncurrent-context: sa\nusers:\n- name: sa\n  user: {{token: operator-token}}\n",
        env.sim().url()
    );
    let kc = kube::config::Kubeconfig::from_yaml(&kubeconfig).unwrap();
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    let sa_client = kube::Client::try_from(cfg).unwrap();
    let who = kube::Api::<k8s_openapi::api::authentication::v1::SelfSubjectReview>::all(
        sa_client.clone(),
    )
    .create(&Default::default(), &Default::default())
    .await
    .expect("SelfSubjectReview as the operator");
    let username = who
        .status
        .and_then(|s| s.user_info)
        .and_then(|u| u.username);
    assert_eq!(
        username.as_deref(),
        Some(sa_user),
        "the operator's client is the ServiceAccount"
    );
    // As the chart runs it: it knows its ServiceAccount (POD_NAMESPACE, PARTNERKIT_SERVICE_ACCOUNT)
    // and has an acceptance URL but no SMTP server, so invitation links go into Secrets.
    env.config.operator_account = Some(("partnerkit".into(), "partnerkit".into()));
    env.config.invites.accept_url = Some("https://portal.example/invites".into());
    env.start_operator_as(sa_client).await;

    // A partner and its tenants converge; a refused tenant gets its Warning Event; deletion works.
    let acme = env.n("acme");
    let pns = env
        .partner_ready(
            &acme,
            &[&env.email("alice", &acme)],
            json!({"entitlements": {"bizApps": []}}),
        )
        .await;
    let globex = env.n("globex");
    env.tenant_ready(
        &pns,
        &globex,
        json!({"displayName": "Globex", "profiles": {"wifi": {"ssid": "g"}}}),
    )
    .await;
    let ws = env.ws(&globex);
    for cm in [
        "partnerkit-bizapps",
        "partnerkit-branding",
        "partnerkit-profile-wifi",
    ] {
        assert!(env.config_map(&ws, cm).await.is_some(), "{cm}");
    }
    for rb in ["partnerkit-partner-admins", "partnerkit-tenant-admins"] {
        assert!(env.role_binding(&ws, rb).await.is_some(), "{rb}");
    }
    assert!(
        env.cluster_role_binding(&format!("partnerkit:partner:{acme}"))
            .await
            .is_some()
    );
    // Its only right to Secrets is the binding it gives itself in the partner namespace: enough
    // for an invitation's link Secret, nothing in tenant workspaces.
    let rb = env
        .role_binding(&pns, "partnerkit-operator")
        .await
        .expect("the operator's RoleBinding in the partner namespace");
    assert_eq!(rb["roleRef"]["name"], "partnerkit-invite-links");
    assert_eq!(rb["subjects"][0]["name"], "partnerkit");
    env.apply_json(&json!({"apiVersion": "partnerkit.io/v1alpha1", "kind": "PartnerAdminInvite",
        "metadata": {"name": "invite-bob", "namespace": pns}, "spec": {"email": "bob@acme.example"}}))
        .await;
    env.eventually(10, "the invite Sent with its link Secret", || async {
        let i = env
            .get(
                "partnerkit.io/v1alpha1",
                "PartnerAdminInvite",
                Some(&pns),
                "invite-bob",
            )
            .await?;
        (i["status"]["phase"] == "Sent").then_some(())
    })
    .await;
    assert!(
        env.get("v1", "Secret", Some(&pns), "invite-bob-link")
            .await
            .is_some()
    );
    let o = env
        .kubectl(&[
            "auth",
            "can-i",
            "get",
            "secrets",
            "-n",
            &env.ws(&globex),
            "--as",
            sa_user,
        ])
        .await;
    assert_eq!(o.stdout.trim(), "no", "no Secrets in tenant workspaces");
    let greedy = env.n("greedy");
    env.apply_json(&tenant_json(
        &pns,
        &greedy,
        json!({"displayName": "G", "bizApps": {"crm": true}}),
    ))
    .await;
    env.wait_reason("Tenant", Some(&pns), &greedy, "NotEntitled")
        .await;
    env.eventually(5, "the Warning Event", || async {
        (!env.warnings_about(&pns, "Tenant", &greedy).await.is_empty()).then_some(())
    })
    .await;
    let doomed = env.n("doomed");
    env.tenant_ready(
        &pns,
        &doomed,
        json!({"displayName": "D", "deletionPolicy": "Delete"}),
    )
    .await;
    env.delete("tenant", Some(&pns), &doomed).await;
    env.wait_gone("v1", "Namespace", None, &env.ws(&doomed))
        .await;
    env.delete("tenant", Some(&pns), &globex).await;
    env.delete("tenant", Some(&pns), &greedy).await;
    env.delete("partner", None, &acme).await;
    env.wait_gone("partnerkit.io/v1alpha1", "Partner", None, &acme)
        .await;
    env.wait_gone("v1", "Namespace", None, &pns).await;
    assert_eq!(labels_orphaned(&env, &ws).await, "true");

    let t = env.telemetry();
    for c in [
        partnerkit::controller::partner::CONTROLLER,
        partnerkit::controller::tenant::CONTROLLER,
    ] {
        assert_eq!(
            t.metrics.reconcile_total(c, ReconcileResult::Error),
            0,
            "{c}: no reconcile failed (e.g. forbidden)"
        );
    }
    env.finish().await;
}

async fn labels_orphaned(env: &Env, ws: &str) -> String {
    support::labels_of(&env.namespace(ws).await.expect("workspace kept"))
        .get("partnerkit.io/orphaned")
        .cloned()
        .unwrap_or_default()
}
