//! High availability: several `partnerkit` processes on one cluster elect one leader through a
//! `coordination.k8s.io/v1` Lease. Only the leader reconciles, writes and sends mail; every
//! replica serves the acceptance page. A leader that gets SIGTERM releases the Lease and a
//! standby takes over at once; a SIGKILLed one is replaced within the lease duration plus two
//! seconds. Runs the real binary, on kube-sim and (as the chart's ServiceAccount) on the real
//! control plane.

mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::json;
use support::mail::{SmtpServer, free_port};
use support::{Env, http};

/// leaseDuration of these tests (renewBefore 2s).
const LEASE_SECONDS: u64 = 4;

/// One `partnerkit run` process.
struct Replica {
    name: String,
    child: tokio::process::Child,
    metrics: String,
    web: String,
    log: PathBuf,
}

impl Replica {
    async fn start(env: &Env, name: &str, config: &str) -> Replica {
        let (metrics, web) = (
            format!("127.0.0.1:{}", free_port()),
            format!("127.0.0.1:{}", free_port()),
        );
        let config = config.replace("METRICS", &metrics).replace("WEB", &web);
        let path = env.dir.join(format!("{name}.yaml"));
        std::fs::write(&path, config).unwrap();
        let log = env.dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let (kubeconfig, namespace) = match support::operator_identity() {
            Some((kc, (ns, sa))) => (kc, Some((ns, sa))),
            None => (env.kubeconfig.clone(), None),
        };
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_partnerkit"));
        cmd.args(["run", "--config"])
            .arg(&path)
            .env("KUBECONFIG", &kubeconfig)
            .env("POD_NAME", name)
            .env("RUST_LOG", "info")
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .kill_on_drop(true);
        if let Some((ns, sa)) = namespace {
            cmd.env("POD_NAMESPACE", ns)
                .env("PARTNERKIT_SERVICE_ACCOUNT", sa);
        }
        let child = cmd.spawn().expect("the partnerkit binary");
        let r = Replica {
            name: name.into(),
            child,
            metrics,
            web,
            log,
        };
        env.eventually(30, &format!("{name} to serve its metrics"), || async {
            r.leading().await.map(|_| ())
        })
        .await;
        r
    }

    /// `leader_election_master_status` of this replica: Some(true) while it leads.
    async fn leading(&self) -> Option<bool> {
        let body = http::get(&format!("http://{}/metrics", self.metrics))
            .await
            .ok()?
            .body;
        let line = body
            .lines()
            .find(|l| l.starts_with("leader_election_master_status{"))?;
        assert!(
            line.contains(&format!("identity=\"{}\"", self.name)),
            "{line}"
        );
        Some(line.ends_with(" 1"))
    }

    /// Reconciles this replica ran (every controller, every result).
    async fn reconciles(&self) -> u64 {
        let body = http::get(&format!("http://{}/metrics", self.metrics))
            .await
            .expect("metrics")
            .body;
        body.lines()
            .filter(|l| l.starts_with("controller_runtime_reconcile_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    }

    fn signal(&self, sig: &str) {
        let _ = std::process::Command::new("kill")
            .args([sig, &self.child.id().expect("running").to_string()])
            .status();
    }

    async fn wait(&mut self) -> std::process::ExitStatus {
        tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("{} did not exit", self.name))
            .unwrap()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Wait until exactly one of `replicas` leads; returns its index and when that was seen.
async fn the_leader(env: &Env, replicas: &[&Replica], secs: u64) -> (usize, Instant) {
    env.eventually(secs, "exactly one leader", || async {
        let mut leaders = Vec::new();
        for (i, r) in replicas.iter().enumerate() {
            if r.leading().await? {
                leaders.push(i);
            }
        }
        assert!(leaders.len() <= 1, "two leaders at once: {leaders:?}");
        leaders.first().map(|i| (*i, Instant::now()))
    })
    .await
}

fn holder(env: &Env, lease: &str) -> impl std::future::Future<Output = Option<String>> {
    let ns = env.operator_namespace();
    let lease = lease.to_string();
    async move {
        let o = env
            .get("coordination.k8s.io/v1", "Lease", Some(&ns), &lease)
            .await?;
        o["spec"]["holderIdentity"].as_str().map(String::from)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_leader_reconciles_mails_once_and_hands_over_on_sigterm_and_sigkill() {
    let smtp = SmtpServer::start_fresh(None).await;
    let smtp_port = smtp.port;
    let mut env = Env::start_with(Default::default(), support::CONFIG, false).await;
    let lease = env.n("partnerkit");
    // The test's configuration, each replica with its own listen addresses; the acceptance
    // URL names the first replica's page, but every replica serves it.
    let config = format!(
        "{}\nleaderElection: {{leaseName: {lease}, leaseDuration: {LEASE_SECONDS}s, renewBefore: 2s}}\ninvites:\n  acceptUrl: http://ACCEPT/invites\n  smtp: {{host: 127.0.0.1, port: {smtp_port}, tls: none, from: portal@platform.example, attempts: 3, retryBackoff: 200ms, timeout: 5s}}\n",
        support::CONFIG
            .lines()
            .filter(|l| !l.starts_with("listen:"))
            .collect::<Vec<_>>()
            .join("\n")
    ) + "listen: {metrics: \"METRICS\", health: \"127.0.0.1:0\", web: \"WEB\"}\n";

    let sfx = &env.sfx;
    let accept = format!("127.0.0.1:{}", free_port());
    let first = config.replace("ACCEPT", &accept);
    let mut a = Replica::start(&env, &format!("a-{sfx}"), &first).await;
    let mut b = Replica::start(&env, &format!("b-{sfx}"), &first).await;
    let (leader, _) = the_leader(&env, &[&a, &b], 10).await;
    let (leader_r, standby_r) = if leader == 0 { (&a, &b) } else { (&b, &a) };
    assert_eq!(
        holder(&env, &lease).await.as_deref(),
        Some(leader_r.name.as_str()),
        "the Lease names the leader"
    );

    // The leader does the work; the standby keeps its caches warm and does nothing.
    let acme = env.n("acme");
    let pns = env
        .partner_ready(&acme, &[&env.email("alice", &acme)], json!({}))
        .await;
    let globex = env.n("globex");
    env.tenant_ready(&pns, &globex, json!({"displayName": "Globex"}))
        .await;
    env.apply_json(&json!({"apiVersion": "partnerkit.io/v1alpha1", "kind": "PartnerAdminInvite",
        "metadata": {"name": "invite-bob", "namespace": pns}, "spec": {"email": "bob@acme.example"}}))
        .await;
    let mail = smtp.wait_for("bob@acme.example", 20).await;
    assert!(leader_r.reconciles().await > 0);
    assert_eq!(standby_r.reconciles().await, 0, "the standby reconciled");

    // Every replica serves the acceptance page: bob accepts on the standby's.
    let link = mail
        .link(&format!("http://{accept}/invites"))
        .expect("the link");
    let (path_and_query, token) = (
        link.trim_start_matches(&format!("http://{accept}"))
            .to_string(),
        link.rsplit_once("token=").unwrap().1.to_string(),
    );
    let page = format!("http://{}{}", standby_r.web, path_and_query);
    assert_eq!(http::get(&page).await.unwrap().status, 200);
    let r = http::post_form(page.split_once('?').unwrap().0, &[("token", &token)], &[])
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    env.eventually(10, "the invite Accepted", || async {
        let o = env
            .get(
                "partnerkit.io/v1alpha1",
                "PartnerAdminInvite",
                Some(&pns),
                "invite-bob",
            )
            .await?;
        (o["status"]["phase"] == "Accepted").then_some(())
    })
    .await;

    // SIGTERM: the leader releases the Lease; the standby takes over at once.
    let (old, new) = if leader == 0 {
        (&mut a, &mut b)
    } else {
        (&mut b, &mut a)
    };
    let t = Instant::now();
    old.signal("-TERM");
    let status = old.wait().await;
    assert!(status.success(), "{}: {status}\n{}", old.name, old.log());
    assert!(old.log().contains("released the lease"), "{}", old.log());
    env.eventually(5, "the standby to lead", || async {
        new.leading().await.filter(|l| *l)
    })
    .await;
    let handover = t.elapsed();
    eprintln!("SIGTERM handover: {handover:?}");
    // At once: not when the released Lease would have expired (LEASE_SECONDS after the last
    // renewal) but as soon as the standby sees the release on its watch.
    assert!(
        handover < Duration::from_secs(1),
        "took over {handover:?} after SIGTERM (the Lease was released; lease {LEASE_SECONDS}s)"
    );
    // It carries on: a new tenant converges, and nothing is mailed twice.
    let umbrella = env.n("umbrella");
    env.tenant_ready(&pns, &umbrella, json!({"displayName": "Umbrella"}))
        .await;

    // A replacement comes up as a standby; SIGKILL the leader: taken over within the lease
    // duration plus two seconds, and no second mail.
    let third = Replica::start(&env, &format!("c-{sfx}"), &first).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(third.leading().await, Some(false));
    let t = Instant::now();
    new.signal("-KILL");
    let _ = new.wait().await;
    env.eventually(LEASE_SECONDS + 3, "the new standby to lead", || async {
        third.leading().await.filter(|l| *l)
    })
    .await;
    let failover = t.elapsed();
    assert!(
        failover <= Duration::from_secs(LEASE_SECONDS + 2),
        "took over {failover:?} after SIGKILL (lease {LEASE_SECONDS}s)"
    );
    assert_eq!(
        holder(&env, &lease).await.as_deref(),
        Some(third.name.as_str())
    );
    let initrode = env.n("initrode");
    env.tenant_ready(&pns, &initrode, json!({"displayName": "Initrode"}))
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        smtp.messages()
            .iter()
            .filter(|m| m.is_to("bob@acme.example"))
            .count(),
        1,
        "the invitation was mailed once, not once per replica nor again after the failovers"
    );

    let mut third = third;
    third.signal("-TERM");
    assert!(third.wait().await.success(), "{}", third.log());
    // Clean up with an operator (it removes its finalizers) on the same Lease.
    env.start_operator().await;
    env.finish().await;
}
