//! DESIGN.md: event-driven and GitOps-clean. Changes reach exactly the affected tenants
//! without a resync; other partners see no write; drift is repaired; the controller never
//! writes `spec` and keeps `observedGeneration`. (The write counters of a converged operator
//! are in rules_sim_only.rs: they need kube-sim's metrics.)

mod support;

use std::collections::BTreeMap;

use serde_json::{Value, json};
use support::{Env, labels_of, partner_json, subjects, tenant_json};

/// A few seconds: changes are event-driven, there is no periodic resync to wait for.
const PROMPTLY: u64 = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn template_partner_and_invite_changes_reach_tenants_without_resync() {
    let env = Env::start().await;
    let acme = env.n("acme");
    let (alice, bob, carol) = (
        env.email("alice", &acme),
        env.email("bob", &acme),
        env.email("carol", &acme),
    );
    let pns = env
        .partner_ready(&acme, &[&alice], json!({"entitlements": {"bizApps": []}}))
        .await;
    env.apply_json(&tenant_json(
        &pns,
        "template",
        json!({"displayName": "T", "bizApps": {"crm": true}}),
    ))
    .await;
    let (a, b) = (env.n("a"), env.n("b"));
    env.tenant_ready(&pns, &a, json!({"displayName": "A"}))
        .await;
    env.tenant_ready(&pns, &b, json!({"displayName": "B"}))
        .await;
    let wss = [env.ws(&a), env.ws(&b)];

    // The template.
    env.apply_json(&tenant_json(
        &pns,
        "template",
        json!({"displayName": "T", "bizApps": {"crm": true},
        "profiles": {"wifi": {"ssid": "acme"}}}),
    ))
    .await;
    env.eventually(
        PROMPTLY,
        "the template's new profile in every workspace",
        || async {
            for ws in &wss {
                env.config_map(ws, "partnerkit-profile-wifi").await?;
            }
            Some(())
        },
    )
    .await;

    // The Partner's entitlements: the template's crm turns on.
    env.apply_json(&partner_json(
        &acme,
        &format!("{acme} Inc"),
        &[&alice],
        json!({"entitlements": {"bizApps": ["crm"]}}),
    ))
    .await;
    env.eventually(PROMPTLY, "crm enabled in every workspace", || async {
        for ws in &wss {
            (labels_of(&env.namespace(ws).await?)
                .get("bizapps.partnerkit.io/crm")
                .map(String::as_str)
                == Some("enabled"))
            .then_some(())?;
        }
        Some(())
    })
    .await;

    // The Partner's admins, then an accepted invite, then its deletion.
    let bindings_are = |want: Vec<String>| {
        let (env, wss, acme) = (&env, wss.clone(), acme.clone());
        async move {
            env.eventually(PROMPTLY, &format!("admins {want:?} everywhere"), || async {
                for ws in &wss {
                    for rb in ["partnerkit-partner-admins", "partnerkit-tenant-admins"] {
                        (subjects(&env.role_binding(ws, rb).await?) == want).then_some(())?;
                    }
                }
                let crb = env
                    .cluster_role_binding(&format!("partnerkit:partner:{acme}"))
                    .await?;
                (subjects(&crb) == want).then_some(())?;
                let p = env.partner(&acme).await?;
                (p["status"]["admins"] == json!(want)).then_some(())
            })
            .await
        }
    };
    env.apply_json(&partner_json(
        &acme,
        &format!("{acme} Inc"),
        &[&alice, &bob],
        json!({"entitlements": {"bizApps": ["crm"]}}),
    ))
    .await;
    bindings_are(vec![alice.clone(), bob.clone()]).await;

    let invite = json!({"apiVersion": "partnerkit.io/v1alpha1", "kind": "PartnerAdminInvite",
        "metadata": {"name": "invite-carol", "namespace": pns}, "spec": {"email": carol}});
    let o = env.apply_as(&alice, &invite.to_string()).await;
    assert!(o.ok(), "{}", o.stderr);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        !subjects(
            &env.role_binding(&wss[0], "partnerkit-partner-admins")
                .await
                .unwrap()
        )
        .contains(&carol),
        "not before acceptance"
    );
    // Accepted (what the invite controller will do; here the platform admin, on the status subresource).
    env.kubectl_ok(&[
        "patch",
        "partneradmininvite",
        "invite-carol",
        "-n",
        &pns,
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"phase":"Accepted"}}"#,
    ])
    .await;
    bindings_are(vec![alice.clone(), bob.clone(), carol.clone()]).await;
    env.delete("partneradmininvite", Some(&pns), "invite-carol")
        .await;
    bindings_are(vec![alice.clone(), bob.clone()]).await;
    env.finish().await;
}

/// name -> resourceVersion of everything partnerkit keeps for partner `p`, plus its Partner and Tenants.
async fn partner_footprint(env: &Env, p: &str) -> BTreeMap<String, Value> {
    let sel = format!("partnerkit.io/partner={p}");
    let mut out = BTreeMap::new();
    for (av, kind, ns) in [
        ("v1", "Namespace", None),
        ("v1", "ConfigMap", None),
        ("rbac.authorization.k8s.io/v1", "RoleBinding", None),
        ("rbac.authorization.k8s.io/v1", "ClusterRole", None),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", None),
        ("partnerkit.io/v1alpha1", "Tenant", Some(env.pns(p))),
    ] {
        let selector = (kind != "Tenant").then_some(sel.as_str());
        for o in env.list(av, kind, ns.as_deref(), selector).await {
            let key = format!(
                "{kind} {}/{}",
                o["metadata"]["namespace"].as_str().unwrap_or(""),
                o["metadata"]["name"].as_str().unwrap()
            );
            out.insert(key, o["metadata"]["resourceVersion"].clone());
        }
    }
    let partner = env.partner(p).await.unwrap();
    out.insert(
        format!("Partner {p}"),
        partner["metadata"]["resourceVersion"].clone(),
    );
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_to_one_partner_writes_nothing_of_another() {
    let env = Env::start().await;
    let (pa, pb) = (env.n("pa"), env.n("pb"));
    let a_ns = env
        .partner_ready(&pa, &[&env.email("alice", &pa)], json!({}))
        .await;
    let b_ns = env
        .partner_ready(
            &pb,
            &[&env.email("bert", &pb)],
            json!({"entitlements": {"branding": true}}),
        )
        .await;
    for (ns, t) in [(&a_ns, "a1"), (&a_ns, "a2"), (&b_ns, "b1"), (&b_ns, "b2")] {
        env.tenant_ready(
            ns,
            &env.n(t),
            json!({"displayName": t, "profiles": {"p": {"k": "v"}}}),
        )
        .await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let before = partner_footprint(&env, &pb).await;
    assert!(before.len() >= 14, "B's objects: {before:#?}");

    // Template, entitlements, branding and admins of A change; A's tenants follow.
    env.apply_json(&tenant_json(
        &a_ns,
        "template",
        json!({"displayName": "T", "bizApps": {"chat": false}, "profiles": {"p": {"k": "w"}}}),
    ))
    .await;
    env.apply_json(&partner_json(&pa, "A renamed", &[&env.email("alice", &pa), &env.email("al", &pa)],
        json!({"entitlements": {"branding": true, "bizApps": ["crm"]}, "branding": {"primaryColor": "#123456"}}))).await;
    env.eventually(PROMPTLY, "A's tenants to converge", || async {
        for t in ["a1", "a2"] {
            let ws = env.ws(&env.n(t));
            (env.config_map(&ws, "partnerkit-branding").await?["data"]["primaryColor"]
                == "#123456"
                && env.config_map(&ws, "partnerkit-bizapps").await?["data"]["chat"] == "false"
                && subjects(&env.role_binding(&ws, "partnerkit-tenant-admins").await?).len() == 2)
                .then_some(())?;
        }
        Some(())
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        partner_footprint(&env, &pb).await,
        before,
        "partner B's objects were written"
    );
    env.finish().await;
}

/// A restarted operator reconciles everything again, compares what it would apply with the
/// digests it keeps of the API server's ConfigMaps, RoleBindings and Namespaces, and writes
/// nothing: every object keeps its resourceVersion. On the real control plane this proves the
/// digests take the server's own additions (subjects' apiGroup, labels of others, owner
/// references, empty maps) for no difference. (Its client notes every write it sends.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_operator_changes_no_object() {
    use partnerkit::telemetry::ReconcileResult;
    let mut env = Env::start().await;
    let acme = env.n("acme");
    let (alice, dan) = (env.email("alice", &acme), env.email("dan", &acme));
    let pns = env
        .partner_ready(
            &acme,
            &[&alice],
            json!({"entitlements": {"branding": true, "bizApps": ["crm"]},
                   "branding": {"primaryColor": "#123456"}}),
        )
        .await;
    env.apply_json(&tenant_json(
        &pns,
        "template",
        json!({"displayName": "T", "bizApps": {"crm": true}, "profiles": {"wifi": {"ssid": "t"}}}),
    ))
    .await;
    let tenants = [
        (env.n("a"), json!({"displayName": "A"})),
        (
            env.n("b"),
            json!({"displayName": "B", "bizApps": {"crm": false}, "admins": [{"email": dan}],
                   "profiles": {"wifi": {"ssid": "b"}, "vpn": {"gateway": "vpn.b.example"}}}),
        ),
    ];
    for (t, spec) in &tenants {
        env.tenant_ready(&pns, t, spec.clone()).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let before = partner_footprint(&env, &acme).await;
    assert!(before.len() >= 14, "the partner's objects: {before:#?}");

    env.restart_operator().await;
    env.eventually(
        PROMPTLY,
        "the restarted operator to reconcile every tenant",
        || async {
            let m = &env.telemetry().metrics;
            (m.reconcile_total("tenant", ReconcileResult::Success) > tenants.len() as u64
                && m.reconcile_total("partner", ReconcileResult::Success) >= 1)
                .then_some(())
        },
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        env.operator_writes(),
        Vec::<String>::new(),
        "the restarted operator's writes"
    );
    assert_eq!(
        partner_footprint(&env, &acme).await,
        before,
        "objects changed after the restart (resourceVersions before and after)"
    );
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_of_materialized_objects_is_repaired() {
    let env = Env::start().await;
    let acme = env.n("acme");
    let alice = env.email("alice", &acme);
    let pns = env.partner_ready(&acme, &[&alice], json!({})).await;
    let globex = env.n("globex");
    let ws = env.ws(&globex);
    env.tenant_ready(&pns, &globex, json!({"displayName": "Globex"}))
        .await;
    let role = format!("partnerkit:partner:{acme}");
    let want_ns = env.namespace(&ws).await.unwrap()["metadata"]["labels"].clone();
    let want_bizapps = env.config_map(&ws, "partnerkit-bizapps").await.unwrap()["data"].clone();
    let want_branding = env.config_map(&ws, "partnerkit-branding").await.unwrap()["data"].clone();
    let want_rules = env.cluster_role(&role).await.unwrap()["rules"].clone();
    let want_pns = env.namespace(&pns).await.unwrap()["metadata"]["labels"].clone();

    env.kubectl_ok(&["delete", "configmap", "partnerkit-bizapps", "-n", &ws])
        .await;
    env.kubectl_ok(&[
        "patch",
        "configmap",
        "partnerkit-branding",
        "-n",
        &ws,
        "--type=merge",
        "-p",
        r##"{"data":{"primaryColor":"#ff0000","evil":"yes"}}"##,
    ])
    .await;
    env.kubectl_ok(&[
        "delete",
        "rolebinding",
        "partnerkit-tenant-admins",
        "-n",
        &ws,
    ])
    .await;
    env.kubectl_ok(&["patch", "rolebinding", "partnerkit-partner-admins", "-n", &ws, "--type=json",
        "-p", r#"[{"op":"replace","path":"/subjects","value":[{"kind":"User","apiGroup":"rbac.authorization.k8s.io","name":"mallory@evil.example"}]}]"#]).await;
    env.kubectl_ok(&[
        "label",
        "namespace",
        &ws,
        "bizapps.partnerkit.io/mail-",
        "bizapps.partnerkit.io/analytics=enabled",
    ])
    .await;
    env.kubectl_ok(&["patch", "clusterrole", &role, "--type=json",
        "-p", r#"[{"op":"add","path":"/rules/-","value":{"apiGroups":[""],"resources":["secrets"],"verbs":["*"]}}]"#]).await;
    env.kubectl_ok(&["label", "namespace", &pns, "partnerkit.io/template=oops"])
        .await;

    env.eventually(PROMPTLY, "every drift repaired", || async {
        let ok = env.namespace(&ws).await?["metadata"]["labels"] == want_ns
            && env.config_map(&ws, "partnerkit-bizapps").await?["data"] == want_bizapps
            && env.config_map(&ws, "partnerkit-branding").await?["data"] == want_branding
            && subjects(&env.role_binding(&ws, "partnerkit-tenant-admins").await?)
                == [alice.clone()]
            && subjects(&env.role_binding(&ws, "partnerkit-partner-admins").await?)
                == [alice.clone()]
            && env.cluster_role(&role).await?["rules"] == want_rules
            && env.namespace(&pns).await?["metadata"]["labels"] == want_pns;
        ok.then_some(())
    })
    .await;
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_never_writes_spec_and_keeps_observed_generation() {
    let env = Env::start().await;
    let acme = env.n("acme");
    let alice = env.email("alice", &acme);
    let pns = env.partner_ready(&acme, &[&alice], json!({})).await;
    let globex = env.n("globex");
    env.tenant_ready(&pns, &globex, json!({"displayName": "Globex"}))
        .await;
    // Edits by users (generation moves), a refused tenant, and the template edited.
    env.apply_json(&partner_json(
        &acme,
        "Renamed",
        &[&alice],
        json!({"entitlements": {"bizApps": []}}),
    ))
    .await;
    env.apply_json(&tenant_json(
        &pns,
        &globex,
        json!({"displayName": "Globex 2", "bizApps": {"chat": false}}),
    ))
    .await;
    env.apply_json(&tenant_json(
        &pns,
        "template",
        json!({"displayName": "T", "profiles": {"x": {"a": "b"}}}),
    ))
    .await;
    let bad = env.n("bad");
    env.apply_json(&tenant_json(
        &pns,
        &bad,
        json!({"displayName": "Bad", "bizApps": {"crm": true}}),
    ))
    .await;

    let p = env.wait_ready("Partner", None, &acme).await;
    assert_eq!(p["metadata"]["generation"], 2);
    let t = env.wait_ready("Tenant", Some(&pns), &globex).await;
    assert_eq!(t["metadata"]["generation"], 2);
    env.wait_reason("Tenant", Some(&pns), &bad, "NotEntitled")
        .await;
    let tpl = env.wait_ready("Tenant", Some(&pns), "template").await;
    for o in [&p, &t, &tpl, &env.tenant(&pns, &bad).await.unwrap()] {
        let name = o["metadata"]["name"].as_str().unwrap();
        assert_eq!(
            o["status"]["observedGeneration"], o["metadata"]["generation"],
            "{name}"
        );
        assert_eq!(
            super_ready(o)["observedGeneration"],
            o["metadata"]["generation"],
            "{name}: Ready's observedGeneration"
        );
        let ours: Vec<&Value> = o["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["manager"] == "partnerkit")
            .collect();
        assert!(!ours.is_empty(), "{name}: partnerkit wrote its status");
        for m in ours {
            let fields = &m["fieldsV1"];
            if m["subresource"] == "status" {
                assert_eq!(
                    fields.as_object().unwrap().keys().collect::<Vec<_>>(),
                    ["f:status"],
                    "{name}: {m:#}"
                );
                continue;
            }
            if name == "template" && m["operation"] == "Update" && fields.get("f:spec").is_some() {
                // Its creation by partnerkit: the one spec partnerkit ever writes.
                continue;
            }
            assert!(
                fields.get("f:spec").is_none(),
                "{name}: partnerkit wrote spec: {m:#}"
            );
            assert_eq!(
                fields["f:metadata"]
                    .as_object()
                    .map(|o| o.keys().cloned().collect::<Vec<_>>()),
                Some(vec!["f:finalizers".to_string()]),
                "{name}: partnerkit writes only finalizers on the main resource: {m:#}"
            );
        }
    }
    // The user's edit of the template is the user's: partnerkit does not own those fields.
    assert_eq!(tpl["spec"]["profiles"], json!({"x": {"a": "b"}}));
    env.finish().await;
}

fn super_ready(o: &Value) -> &Value {
    support::ready(o).expect("Ready")
}
