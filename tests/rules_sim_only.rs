//! Rules that need kube-sim itself: its write counters (a converged operator writes nothing;
//! a restart mid-rollout writes nothing twice) and its fault injection (to stop the operator in
//! the middle of a rollout). Left out of the real-cluster run. (The operator with exactly the
//! chart's rights is tests/rules_chart.rs, on both backends.)

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use partnerkit::telemetry::ReconcileResult;
use serde_json::{Value, json};
use support::{Env, partnerkit_writes, ready, tenant_json};

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

    // Only the leader-election Lease is renewed (every leaseDuration - renewBefore = 10 s).
    env.reset_requests();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let r = env.requests();
    let (lease, other) = support::lease_and_other_writes(&r);
    assert_eq!(other, 0, "writes of a converged operator in 5 s: {r:#}");
    assert!(lease <= 1, "at most one Lease renewal in 5 s: {r:#}");

    // A new operator process finds everything in place: it lists, watches, and writes nothing
    // but its Lease (released by the old process, taken by the new one).
    env.reset_requests();
    env.restart_operator().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let r = env.requests();
    let (lease, other) = support::lease_and_other_writes(&r);
    assert_eq!(
        other,
        0,
        "writes after a restart: {:#?}",
        partnerkit_writes(&r)
    );
    assert!(
        (1..=3).contains(&lease),
        "the Lease released and taken again: {r:#}"
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

/// More than twice the operator's tenant reconciles at once (64), so that a kill after the
/// first few are done always leaves some untouched and some under way.
const TENANTS: usize = 160;

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

/// An invitation goes out once, with the token whose hash is recorded, even when the API
/// server refuses writes at random (the `Sent` status write among them): a failed status write
/// after the mail went out is retried with the same token, never by a second mail with a new
/// one. (On a real server the same race comes from a watch cache behind the operator's own
/// writes; kube-sim's write faults make it happen on every run.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invitation_is_mailed_once_with_its_recorded_token_when_writes_fail() {
    use support::mail::{SmtpServer, free_port};
    assert!(!support::real(), "kube-sim's write faults");
    let smtp = SmtpServer::start_fresh(None).await;
    let (web_port, smtp_port) = (free_port(), smtp.port);
    let config = format!(
        "{}invites:\n  acceptUrl: http://127.0.0.1:{web_port}/invites\n  smtp: {{host: 127.0.0.1, port: {smtp_port}, tls: none, from: portal@platform.example, attempts: 20, retryBackoff: 100ms, timeout: 5s}}\n",
        support::CONFIG.replace(
            "web: \"127.0.0.1:0\"",
            &format!("web: \"127.0.0.1:{web_port}\"")
        )
    );
    let env = Env::start_with(Default::default(), &config, true).await;
    let acme = env.n("acme");
    let pns = env
        .partner_ready(&acme, &[&env.email("alice", &acme)], json!({}))
        .await;
    const INVITES: usize = 6;
    env.sim().sim.set_faults(kube_sim::Faults {
        write_error_rate: 0.4,
        write_error_code: 500,
        ..Default::default()
    });
    for i in 0..INVITES {
        let invite = json!({"apiVersion": "partnerkit.io/v1alpha1", "kind": "PartnerAdminInvite",
            "metadata": {"name": format!("invite-{i}"), "namespace": pns},
            "spec": {"email": format!("person{i}@acme.example")}})
        .to_string();
        env.eventually(10, "the invite to be created", || async {
            env.create_as(None, &invite).await.ok().then_some(())
        })
        .await;
    }
    let sent = env
        .eventually(90, "every invite Sent", || async {
            let mut hashes = Vec::new();
            for i in 0..INVITES {
                let o = env
                    .get(
                        "partnerkit.io/v1alpha1",
                        "PartnerAdminInvite",
                        Some(&pns),
                        &format!("invite-{i}"),
                    )
                    .await?;
                (o["status"]["phase"] == "Sent").then_some(())?;
                hashes.push(o["status"]["tokenHash"].as_str()?.to_string());
            }
            Some(hashes)
        })
        .await;
    env.sim().sim.set_faults(Default::default());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mails = smtp.messages();
    let prefix = format!("http://127.0.0.1:{web_port}/invites");
    for (i, hash) in sent.iter().enumerate() {
        let to = format!("person{i}@acme.example");
        let theirs: Vec<_> = mails.iter().filter(|m| m.is_to(&to)).collect();
        assert_eq!(theirs.len(), 1, "exactly one mail to {to}");
        let link = theirs[0].link(&prefix).expect("a link");
        let token = link.split("token=").nth(1).expect("a token");
        let digest = std::process::Command::new("sh")
            .args(["-c", &format!("printf %s '{token}' | sha256sum")])
            .output()
            .expect("sha256sum");
        let digest = String::from_utf8_lossy(&digest.stdout);
        assert_eq!(
            hash,
            &format!("sha256:{}", digest.split_whitespace().next().unwrap()),
            "the mailed link's token is the recorded one ({to})"
        );
    }
    env.finish().await;
}

// ---------------------------------------------------------------------------------------------
// Chaos: crashes at random moments, failing writes, dropped watches. The end state must be
// exactly that of an undisturbed run (the reference), with nothing lost, duplicated or stale.
// ---------------------------------------------------------------------------------------------

/// A small deterministic PRNG (xorshift64*): the seed is printed, so a failing run can be
/// replayed with CHAOS_SEED=<seed>.
struct Rng(u64);
impl Rng {
    fn from_env_or_clock() -> Rng {
        let seed = std::env::var("CHAOS_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(7)
                    | 1
            });
        println!("CHAOS_SEED={seed}");
        Rng(seed)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// A platform of `partners` partners with `per_partner` tenants each (some with own admins and
/// profiles, one of them refused): what both runs are given.
fn platform(env: &Env, partners: usize, per_partner: usize) -> Vec<(String, Vec<Value>)> {
    (0..partners)
        .map(|p| {
            let name = env.n(&format!("p{p}"));
            let pns = env.pns(&name);
            let mut docs = vec![tenant_json(
                &pns,
                "template",
                json!({"displayName": "T", "bizApps": {"chat": false},
                       "profiles": {"wifi": {"security": "wpa2"}, "printer": {"model": "laser"}}}),
            )];
            for i in 0..per_partner {
                let admins = if i % 7 == 0 {
                    json!([{"email": format!("owner{i}@t.example")}])
                } else {
                    json!([])
                };
                let mut spec = json!({"displayName": format!("Company {p}-{i}"), "admins": admins,
                                      "profiles": {"wifi": {"ssid": format!("net{i}")}}});
                if i == 3 {
                    spec["bizApps"] = json!({"no-such-app": true}); // refused: UnknownBizApp
                }
                docs.push(tenant_json(&pns, &env.n(&format!("c{p}-{i:04}")), spec));
            }
            (name, docs)
        })
        .collect()
}

/// Apply through the API, retrying what an injected fault refused.
async fn apply_retrying(env: &Env, v: &Value) {
    for attempt in 0.. {
        let (group, version) = v["apiVersion"]
            .as_str()
            .unwrap()
            .split_once('/')
            .unwrap_or(("", "v1"));
        let gvk = kube::core::GroupVersionKind::gvk(group, version, v["kind"].as_str().unwrap());
        let ar = kube::core::ApiResource::from_gvk(&gvk);
        let ar = kube::core::ApiResource {
            plural: format!("{}s", v["kind"].as_str().unwrap().to_lowercase()),
            ..ar
        };
        let api: kube::Api<kube::api::DynamicObject> = match v["metadata"]["namespace"].as_str() {
            Some(ns) => kube::Api::namespaced_with(env.client.clone(), ns, &ar),
            None => kube::Api::all_with(env.client.clone(), &ar),
        };
        let r = api
            .patch(
                v["metadata"]["name"].as_str().unwrap(),
                &kube::api::PatchParams::apply("test").force(),
                &kube::api::Patch::Apply(v),
            )
            .await;
        match r {
            Ok(_) => return,
            Err(e) if attempt < 50 => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("applying {}: {e}", v["metadata"]["name"]),
        }
    }
}

/// Every tenant of every partner Ready (or refused as designed) for its current generation,
/// and the template's `wifi.security` in every inheriting workspace equal to `security`.
async fn converged(env: &Env, platform: &[(String, Vec<Value>)], security: &str) -> bool {
    for (p, docs) in platform {
        let pns = env.pns(p);
        let tenants = env
            .list("partnerkit.io/v1alpha1", "Tenant", Some(&pns), None)
            .await;
        if tenants.len() != docs.len() {
            return false;
        }
        for t in &tenants {
            let current = t["status"]["observedGeneration"] == t["metadata"]["generation"];
            if !current || ready(t).is_none() {
                return false;
            }
        }
        let profiles = env
            .list(
                "v1",
                "ConfigMap",
                None,
                Some(&format!("partnerkit.io/partner={p}")),
            )
            .await
            .into_iter()
            .filter(|c| c["metadata"]["name"] == "partnerkit-profile-wifi")
            .filter(|c| c["data"]["security"] == security)
            .count();
        if profiles != docs.len() - 2 {
            return false; // every tenant but the template and the refused one
        }
    }
    true
}

/// Wait (polling once a second: a poll lists every tenant and ConfigMap) until [`converged`].
async fn wait_converged(env: &Env, platform: &[(String, Vec<Value>)], what: &str, secs: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !converged(env, platform, "wpa3").await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not converged after {secs}s"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Every object of `got` is as in the undisturbed run's `want`, and no object is missing.
fn assert_same_state(want: &BTreeMap<String, Value>, got: &BTreeMap<String, Value>) {
    let differ: Vec<&String> = want
        .keys()
        .chain(got.keys())
        .filter(|k| want.get(*k) != got.get(*k))
        .collect();
    assert!(
        differ.is_empty(),
        "{} objects differ from the undisturbed run, e.g. {:#?}",
        differ.len(),
        differ
            .iter()
            .take(3)
            .map(|k| (k, want.get(*k), got.get(*k)))
            .collect::<Vec<_>>()
    );
}

async fn snapshot(env: &Env, platform: &[(String, Vec<Value>)]) -> BTreeMap<String, Value> {
    let mut all = BTreeMap::new();
    for (p, _) in platform {
        all.extend(materialized(env, p).await);
    }
    for (k, v) in &all {
        if let Some(f) = v["finalizers"].as_array() {
            let mut seen = std::collections::BTreeSet::new();
            for x in f {
                assert!(seen.insert(x.to_string()), "{k}: finalizer {x} twice");
            }
        }
    }
    all
}

fn template_change(env: &Env, p: &str) -> Value {
    tenant_json(
        &env.pns(p),
        "template",
        json!({"displayName": "T", "bizApps": {"chat": false},
               "profiles": {"wifi": {"security": "wpa3"}, "printer": {"model": "laser"}}}),
    )
}

/// The reference: the same platform on an undisturbed operator, after the template change.
async fn reference_state(
    env_sfx: &str,
    partners: usize,
    per_partner: usize,
) -> BTreeMap<String, Value> {
    let mut reference = Env::sim_only(Default::default(), true).await;
    reference.sfx = env_sfx.to_string();
    let plat = platform(&reference, partners, per_partner);
    for (p, docs) in &plat {
        reference
            .partner_ready(p, &[&reference.email("alice", p)], json!({}))
            .await;
        for d in docs {
            support::apply_value(&reference.client, d, "test").await;
        }
    }
    for (p, _) in &plat {
        support::apply_value(&reference.client, &template_change(&reference, p), "test").await;
    }
    wait_converged(&reference, &plat, "the reference run", 180).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let want = snapshot(&reference, &plat).await;
    reference.finish().await;
    want
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_operator_killed_at_random_moments_converges_exactly_like_an_undisturbed_run() {
    const PARTNERS: usize = 2;
    const PER_PARTNER: usize = 500;
    let mut env = Env::sim_only(Default::default(), true).await;
    let want = reference_state(&env.sfx, PARTNERS, PER_PARTNER).await;
    let plat = platform(&env, PARTNERS, PER_PARTNER);
    for (p, _) in &plat {
        env.partner_ready(p, &[&env.email("alice", p)], json!({}))
            .await;
    }
    // Everything arrives while the operator is killed over and over, at random moments; the
    // templates change half-way.
    let mut rng = Rng::from_env_or_clock();
    let all: Vec<&Value> = plat.iter().flat_map(|(_, d)| d.iter()).collect();
    let chunk = all.len().div_ceil(6);
    for (round, docs) in all.chunks(chunk).enumerate() {
        for d in docs {
            support::apply_value(&env.client, d, "test").await;
        }
        if round == 3 {
            for (p, _) in &plat {
                support::apply_value(&env.client, &template_change(&env, p), "test").await;
            }
        }
        tokio::time::sleep(Duration::from_millis(50 + rng.below(900))).await;
        env.kill_operator().await;
        env.start_operator().await;
    }
    wait_converged(&env, &plat, "the disturbed run", 240).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = snapshot(&env, &plat).await;
    assert_same_state(&want, &got);
    assert_eq!(got.len(), want.len());
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failing_writes_and_dropped_watches_converge_exactly_and_then_nothing_is_written() {
    const PARTNERS: usize = 2;
    const PER_PARTNER: usize = 150;
    let env = Env::sim_only(Default::default(), true).await;
    let want = reference_state(&env.sfx, PARTNERS, PER_PARTNER).await;
    let plat = platform(&env, PARTNERS, PER_PARTNER);
    for (p, _) in &plat {
        env.partner_ready(p, &[&env.email("alice", p)], json!({}))
            .await;
    }
    // 10 % of writes fail with 500, and every watch is dropped every 2 s ...
    env.sim().sim.set_faults(kube_sim::Faults {
        write_error_rate: 0.1,
        write_error_code: 500,
        drop_watches_every_seconds: 2,
        ..Default::default()
    });
    let all: Vec<&Value> = plat.iter().flat_map(|(_, d)| d.iter()).collect();
    let half = all.len() / 2;
    for d in &all[..half] {
        apply_retrying(&env, d).await;
    }
    // ... then 10 % fail with 429 and Retry-After.
    env.sim().sim.set_faults(kube_sim::Faults {
        write_error_rate: 0.1,
        write_error_code: 429,
        retry_after_seconds: 1,
        drop_watches_every_seconds: 2,
        ..Default::default()
    });
    for d in &all[half..] {
        apply_retrying(&env, d).await;
    }
    for (p, _) in &plat {
        apply_retrying(&env, &template_change(&env, p)).await;
    }
    wait_converged(&env, &plat, "the run under faults", 240).await;
    env.sim().sim.set_faults(Default::default());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got = snapshot(&env, &plat).await;
    assert_same_state(&want, &got);
    // Once the faults stop, nothing more is written (but the Lease's renewals).
    env.reset_requests();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let r = env.requests();
    let (_lease, other) = support::lease_and_other_writes(&r);
    assert_eq!(other, 0, "writes after the faults stopped: {r:#}");
    env.finish().await;
}

/// A kube-sim whose namespace watches lag `ms` (the other kinds' do not).
fn namespace_watch_lagging(ms: u64) -> kube_sim::SimConfig {
    kube_sim::SimConfig {
        faults: kube_sim::Faults {
            watch_lag_ms: ms,
            watch_lag_resources: vec!["namespaces".into()],
            ..Default::default()
        },
        ..Default::default()
    }
}

/// A company moved to another partner while the namespace watch lags the Tenant watch (a real
/// API server's watch streams lag independently): the new Tenant sees the old one gone before
/// it sees the workspace orphaned — the old Tenant's finalizer wrote that, so its event is
/// partnerkit's own echo — and must still be told, and adopt the workspace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_completes_when_the_namespace_watch_lags_behind_the_tenant_watch() {
    let env = Env::start_with(namespace_watch_lagging(1500), support::CONFIG, true).await;
    let (acme, initech) = (env.n("acme"), env.n("initech"));
    let acme_ns = env
        .partner_ready(&acme, &[&env.email("alice", &acme)], json!({}))
        .await;
    let initech_ns = env
        .partner_ready(&initech, &[&env.email("ivan", &initech)], json!({}))
        .await;
    let globex = env.n("globex");
    let spec = json!({"displayName": "Globex"});
    env.tenant_ready(&acme_ns, &globex, spec.clone()).await;
    let ws = env.ws(&globex);
    let uid = env.namespace(&ws).await.unwrap()["metadata"]["uid"].clone();
    // The operator's namespace cache catches up with the workspace's creation (an event is
    // held back between one and two lags).
    tokio::time::sleep(Duration::from_secs(4)).await;

    env.apply_json(
        &json!({"apiVersion": "partnerkit.io/v1alpha1", "kind": "PartnerAssignment",
        "metadata": {"name": format!("{globex}-to-{initech}")},
        "spec": {"tenant": globex, "from": acme, "to": initech}}),
    )
    .await;
    env.delete("tenant", Some(&acme_ns), &globex).await;
    env.apply_json(&tenant_json(&initech_ns, &globex, spec))
        .await;
    env.wait_ready_within(20, "Tenant", Some(&initech_ns), &globex)
        .await;
    let namespace = env.namespace(&ws).await.expect("the workspace");
    assert_eq!(namespace["metadata"]["uid"], uid, "the same workspace");
    assert_eq!(
        namespace["metadata"]["labels"]["partnerkit.io/partner"],
        json!(initech)
    );
    env.finish().await;
}

/// A Tenant deleted before the operator's namespace watch has shown it the workspace it just
/// created: the workspace is still orphaned (deletionPolicy Retain), not left behind as the
/// deleted Tenant's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_deleted_before_its_workspace_reached_the_cache_still_orphans_it() {
    let env = Env::start_with(namespace_watch_lagging(3000), support::CONFIG, true).await;
    let acme = env.n("acme");
    let acme_ns = env
        .partner_ready(&acme, &[&env.email("alice", &acme)], json!({}))
        .await;
    let globex = env.n("globex");
    env.tenant_ready(&acme_ns, &globex, json!({"displayName": "Globex"}))
        .await;
    env.delete("tenant", Some(&acme_ns), &globex).await;
    env.wait_gone("partnerkit.io/v1alpha1", "Tenant", Some(&acme_ns), &globex)
        .await;
    let ws = env
        .namespace(&env.ws(&globex))
        .await
        .expect("the workspace");
    assert_eq!(
        ws["metadata"]["labels"]["partnerkit.io/orphaned"], "true",
        "{ws:#}"
    );
    env.finish().await;
}

/// A Tenant refused (its premium app withdrawn) before the operator's namespace watch has shown
/// it the workspace it just created: the refusal still names that workspace in status — the
/// data is there and kept — rather than saying the tenant has none until the watch catches up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_refused_before_its_workspace_reached_the_cache_still_names_it() {
    let env = Env::start_with(namespace_watch_lagging(3000), support::CONFIG, true).await;
    let acme = env.n("acme");
    let alice = env.email("alice", &acme);
    let partner = |apps: Value| {
        support::partner_json(
            &acme,
            "Acme",
            &[&alice],
            json!({"entitlements": {"bizApps": apps}}),
        )
    };
    env.apply_json(&partner(json!(["analytics"]))).await;
    env.wait_ready("Partner", None, &acme).await;
    let acme_ns = env.pns(&acme);
    let greedy = env.n("greedy");
    env.tenant_ready(
        &acme_ns,
        &greedy,
        json!({"displayName": "Greedy", "bizApps": {"analytics": true}}),
    )
    .await;
    env.apply_json(&partner(json!([]))).await;
    let t = env
        .wait_reason("Tenant", Some(&acme_ns), &greedy, "NotEntitled")
        .await;
    assert_eq!(t["status"]["workspace"], env.ws(&greedy).as_str(), "{t:#}");
    assert!(
        env.namespace(&env.ws(&greedy)).await.is_some(),
        "the workspace is kept"
    );
    env.finish().await;
}
