//! `scripts/real-cluster`, the real control plane for tests (`make test-real` runs this; it
//! needs `make real-bins`): started through `kube_sim::real::RealCluster`, it keeps kube-sim's
//! contract — a kubeconfig written once it serves, everything stopped and its data removed on
//! SIGTERM — and runs what partnerkit relies on: the pinned Kubernetes version, an admin in
//! system:masters, ServiceAccount tokens, and the controllers envtest lacks (namespace deletion,
//! garbage collection, ServiceAccounts, root CA publication, ClusterRole aggregation). Nothing
//! it runs listens or connects off loopback.

mod common;

use std::collections::BTreeSet;
use std::process::Stdio;

use common::eventually;
use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client};
use kube_sim::real::RealCluster;
use serde_json::json;

/// The Kubernetes release pinned in hack/kube-bins/go.mod.
fn pinned_version() -> String {
    let gomod = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../hack/kube-bins/go.mod"
    ))
    .expect("hack/kube-bins/go.mod");
    gomod
        .lines()
        .find_map(|l| l.trim().strip_prefix("k8s.io/kubernetes v"))
        .map(|v| format!("v{}", v.split_whitespace().next().unwrap_or_default()))
        .expect("k8s.io/kubernetes in go.mod")
}

async fn client(kubeconfig_yaml: &str) -> Client {
    let kc = kube::config::Kubeconfig::from_yaml(kubeconfig_yaml).expect("kubeconfig");
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .expect("client config");
    Client::try_from(cfg).expect("client")
}

fn kubectl(kubeconfig: &std::path::Path, args: &[&str]) -> String {
    let o = std::process::Command::new(std::env::var("KUBECTL").unwrap_or("kubectl".into()))
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .stdin(Stdio::null())
        .output()
        .expect("kubectl");
    assert!(
        o.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// Every process below `pid` (children, grandchildren, ...).
fn descendants(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) else {
            continue;
        };
        for t in tasks.flatten() {
            let children = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
            for c in children.split_whitespace().filter_map(|c| c.parse().ok()) {
                out.push(c);
                todo.push(c);
            }
        }
    }
    out
}

fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// The TCP sockets of `pids`: (program, state, local, remote), addresses as hex from /proc.
fn tcp_sockets(pids: &[u32]) -> Vec<(String, String, String, String)> {
    let mut inodes = std::collections::HashMap::new();
    for &pid in pids {
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(target) = std::fs::read_link(fd.path()) {
                let t = target.to_string_lossy().to_string();
                if let Some(inode) = t.strip_prefix("socket:[").and_then(|s| s.strip_suffix(']')) {
                    inodes.insert(inode.to_string(), comm(pid));
                }
            }
        }
    }
    let mut out = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        for line in std::fs::read_to_string(table)
            .unwrap_or_default()
            .lines()
            .skip(1)
        {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() > 9
                && let Some(program) = inodes.get(f[9])
            {
                out.push((
                    program.clone(),
                    f[3].to_string(),
                    f[1].to_string(),
                    f[2].to_string(),
                ));
            }
        }
    }
    out
}

/// A /proc/net address (`0100007F:1F90`, or 32 hex digits for IPv6) on loopback.
fn is_loopback(addr: &str) -> bool {
    let ip = addr.split(':').next().unwrap_or_default();
    match ip.len() {
        8 => ip.ends_with("7F"), // 127.x.x.x, little-endian
        32 => {
            ip == "00000000000000000000000001000000" // ::1
                || (ip.starts_with("0000000000000000FFFF0000") && ip.ends_with("7F")) // ::ffff:127.x
        }
        _ => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_launcher_serves_a_real_control_plane_on_loopback_and_removes_it_on_sigterm() {
    let cluster = RealCluster::start().await.expect("scripts/real-cluster");
    let kubeconfig = cluster.kubeconfig_path().to_path_buf();
    assert!(
        cluster.url().starts_with("https://127.0.0.1:"),
        "{}",
        cluster.url()
    );
    let c = client(cluster.kubeconfig_yaml()).await;

    // The pinned release, with /version right (the build's ldflags).
    let v = c.apiserver_version().await.expect("/version");
    assert_eq!(v.git_version, pinned_version());
    assert_eq!(format!("v{}.{}", v.major, v.minor), {
        let p = pinned_version();
        p.rsplit_once('.').unwrap().0.to_string()
    });

    // The admin: a client certificate in system:masters.
    let me = Api::<SelfSubjectReview>::all(c.clone())
        .create(&PostParams::default(), &Default::default())
        .await
        .expect("SelfSubjectReview");
    let info = me.status.and_then(|s| s.user_info).expect("userInfo");
    assert_eq!(info.username.as_deref(), Some("admin"));
    assert!(
        info.groups
            .unwrap_or_default()
            .contains(&"system:masters".to_string())
    );

    // ServiceAccounts: created by the serviceaccount controller; `kubectl create token`
    // (TokenRequest, signed with the launcher's key) authenticates as the account.
    let ns = "launcher-check";
    Api::<Namespace>::all(c.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap(),
        )
        .await
        .expect("a namespace");
    eventually(
        30,
        "the default ServiceAccount of a new namespace",
        || async {
            Api::<ServiceAccount>::namespaced(c.clone(), ns)
                .get_opt("default")
                .await
                .ok()
                .flatten()
        },
    )
    .await;
    let ca = eventually(30, "kube-root-ca.crt in a new namespace", || async {
        Api::<ConfigMap>::namespaced(c.clone(), ns)
            .get_opt("kube-root-ca.crt")
            .await
            .ok()
            .flatten()
    })
    .await;
    assert!(
        ca.data.unwrap_or_default()["ca.crt"].contains("BEGIN CERTIFICATE"),
        "the root CA publisher's ConfigMap holds the cluster CA"
    );
    let token = kubectl(&kubeconfig, &["create", "token", "default", "-n", ns]);
    let mut sa_kubeconfig: serde_json::Value =
        serde_saphyr::from_str(cluster.kubeconfig_yaml()).expect("kubeconfig YAML");
    sa_kubeconfig["users"][0]["user"] = json!({"token": token});
    let sa = client(&serde_json::to_string(&sa_kubeconfig).unwrap()).await;
    let who = Api::<SelfSubjectReview>::all(sa)
        .create(&PostParams::default(), &Default::default())
        .await
        .expect("SelfSubjectReview with the token");
    assert_eq!(
        who.status
            .and_then(|s| s.user_info)
            .and_then(|u| u.username)
            .as_deref(),
        Some(format!("system:serviceaccount:{ns}:default").as_str())
    );

    // Garbage collection: a dependent goes with its owner.
    let cms = Api::<ConfigMap>::namespaced(c.clone(), ns);
    let owner = cms
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "owner"}})).unwrap(),
        )
        .await
        .unwrap();
    let uid = owner.metadata.uid.unwrap();
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(
            json!({"metadata": {"name": "dependent", "ownerReferences": [
            {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": uid}]}}),
        )
        .unwrap(),
    )
    .await
    .unwrap();
    cms.delete("owner", &DeleteParams::default()).await.unwrap();
    eventually(
        60,
        "the garbage collector to delete the dependent",
        || async { cms.get_opt("dependent").await.ok()?.is_none().then_some(()) },
    )
    .await;

    // ClusterRole aggregation.
    let roles = Api::<ClusterRole>::all(c.clone());
    roles
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "launcher-aggregate"},
                "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"launcher-check/aggregate": "true"}}]}}))
            .unwrap(),
        )
        .await
        .unwrap();
    roles
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "launcher-part", "labels": {"launcher-check/aggregate": "true"}},
                "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]}))
            .unwrap(),
        )
        .await
        .unwrap();
    eventually(
        30,
        "the aggregation controller to fill the rules",
        || async {
            let r = roles.get("launcher-aggregate").await.ok()?;
            (!r.rules.unwrap_or_default().is_empty()).then_some(())
        },
    )
    .await;

    // Namespace deletion runs to the end (the namespace controller empties it first).
    Api::<Namespace>::all(c.clone())
        .delete(ns, &DeleteParams::default())
        .await
        .unwrap();
    eventually(60, "the namespace to be deleted", || async {
        Api::<Namespace>::all(c.clone())
            .get_opt(ns)
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;

    // Nothing listens or connects off loopback: every TCP socket of etcd, kube-apiserver and
    // kube-controller-manager is on 127.0.0.1 at both ends (so nothing dials the service CIDR).
    let pids = descendants(cluster.pid().expect("running"));
    let programs: BTreeSet<String> = pids.iter().map(|p| comm(*p)).collect();
    for p in ["etcd", "kube-apiserver", "kube-controller"] {
        assert!(programs.contains(p), "{p} runs: {programs:?}");
    }
    let sockets = tcp_sockets(&pids);
    assert!(
        sockets
            .iter()
            .any(|s| s.0 == "kube-apiserver" && s.1 == "0A"),
        "kube-apiserver listens: {sockets:?}"
    );
    for (program, state, local, remote) in &sockets {
        assert!(
            is_loopback(local),
            "{program} on {local} (state {state}) is off loopback"
        );
        if state != "0A" {
            assert!(
                is_loopback(remote),
                "{program} connected to {remote}: off loopback"
            );
        }
    }

    // SIGTERM: all three stop, exit 0, and the data (etcd, certificates) is gone.
    assert!(
        std::fs::read_dir(cluster.data_parent())
            .unwrap()
            .next()
            .is_some(),
        "the launcher keeps its data under TMPDIR while it runs"
    );
    let stopped = cluster.stop().await.expect("stop");
    assert!(stopped.status.success(), "exit status {}", stopped.status);
    assert!(
        stopped.left_behind.is_empty(),
        "data left behind: {:?}",
        stopped.left_behind
    );
    for p in &pids {
        assert!(comm(*p).is_empty(), "process {p} still runs after SIGTERM");
    }
}
