//! The harness itself: a cluster starts, kubectl reaches it, the test namespace exists.
mod common;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_reaches_the_cluster_and_the_test_namespace_exists() {
    let c = Cluster::start().await;
    let out = c
        .kubectl_ok(&["get", "namespace", &c.ns, "-o", "json"])
        .await;
    let ns = json(&out);
    assert_eq!(ns["status"]["phase"], "Active");
    assert_eq!(
        ns["metadata"]["labels"]["kubernetes.io/metadata.name"],
        c.ns.as_str()
    );
    let version = c.kubectl_ok(&["version", "-o", "json"]).await;
    assert!(
        json(&version)["serverVersion"]["gitVersion"]
            .as_str()
            .unwrap()
            .starts_with("v1.")
    );
}
