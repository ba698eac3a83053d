//! Simulator-only behaviour: what a real cluster does too, but can only be forced here
//! (tiny watch history, dropped watches), and kube-sim's own control endpoints.
mod common;
use common::*;

use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{
    Api, ListParams, Patch, PatchParams, PostParams, VersionMatch, WatchEvent, WatchParams,
};
use kube::runtime::watcher::{self, Event};
use serde_json::json;

fn watch_cm(name: &str) -> ConfigMap {
    serde_json::from_value(
        json!({"metadata": {"name": name, "labels": {"w": "sim"}}, "data": {"n": "0"}}),
    )
    .unwrap()
}

async fn watch_next<S, T, E>(s: &mut S, secs: u64, what: &str) -> Option<Result<T, E>>
where
    S: Stream<Item = Result<T, E>> + Unpin,
{
    tokio::time::timeout(Duration::from_secs(secs), s.next())
        .await
        .unwrap_or_else(|_| panic!("timed out after {secs}s waiting for {what}"))
}

/// `POST /kube-sim/watches/drop`: ends every open watch.
async fn watch_drop_all(client: &kube::Client) {
    let req = kube::core::Request::new("/kube-sim/watches/drop")
        .create(&PostParams::default(), Vec::new())
        .unwrap();
    let text = client
        .request_text(req)
        .await
        .expect("POST /kube-sim/watches/drop");
    assert!(text.contains("dropped"), "{text}");
}

// API concepts, "410 Gone responses": a watch from a resourceVersion older than the retained
// history gets an ERROR event with a Status 410 / Expired; an Exact list at that version is 410 too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_too_old_resource_version_is_410_gone() {
    let c = Cluster::sim_only(kube_sim::SimConfig {
        watch_history: 5,
        ..Default::default()
    })
    .await;
    let client = c.client().await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &c.ns);
    let first = api
        .create(&PostParams::default(), &watch_cm("churn"))
        .await
        .unwrap();
    let old = first.metadata.resource_version.unwrap();
    for i in 1..=12 {
        api.patch(
            "churn",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"n": i.to_string()}})),
        )
        .await
        .unwrap();
    }

    let mut s = api
        .watch(&WatchParams::default().timeout(30), &old)
        .await
        .unwrap()
        .boxed();
    let status = match watch_next(&mut s, 20, "the 410 ERROR event").await {
        Some(Ok(WatchEvent::Error(st))) => st,
        Some(Err(kube::Error::Api(st))) => st,
        other => panic!("want a 410 error, got {other:?}"),
    };
    assert_eq!(status.code, 410, "{status:?}");
    assert_eq!(status.reason, "Expired");
    assert!(
        status
            .message
            .starts_with(&format!("too old resource version: {old}")),
        "{}",
        status.message
    );
    assert!(
        watch_next(&mut s, 20, "the end of the watch")
            .await
            .is_none(),
        "the watch ends after the error"
    );

    let lp = ListParams {
        resource_version: Some(old.clone()),
        version_match: Some(VersionMatch::Exact),
        ..Default::default()
    };
    let err = api
        .list(&lp)
        .await
        .expect_err("Exact list at a compacted resourceVersion");
    let kube::Error::Api(st) = err else {
        panic!("want an API error, got {err:?}")
    };
    assert_eq!(st.code, 410);
    assert_eq!(st.reason, "Expired");

    // A watch from a recent resourceVersion still works.
    let now = api
        .get("churn")
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut s = api
        .watch(&WatchParams::default().timeout(30), &now)
        .await
        .unwrap()
        .boxed();
    api.patch(
        "churn",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"n": "last"}})),
    )
    .await
    .unwrap();
    match watch_next(&mut s, 20, "MODIFIED").await {
        Some(Ok(WatchEvent::Modified(o))) => assert_eq!(o.data.unwrap()["n"], "last"),
        other => panic!("want MODIFIED, got {other:?}"),
    }
}

// The kube-runtime watcher recovers after the server ends its watches (POST /kube-sim/watches/drop):
// it watches again and still sees later changes; and after a 410 it re-lists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_runtime_watcher_recovers_after_dropped_watches() {
    let c = Cluster::sim_only(kube_sim::SimConfig {
        watch_history: 5,
        ..Default::default()
    })
    .await;
    let client = c.client().await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &c.ns);
    api.create(&PostParams::default(), &watch_cm("seed"))
        .await
        .unwrap();

    // A raw watch is ended by the drop.
    let mut raw = api
        .watch(&WatchParams::default().labels("w=sim"), "0")
        .await
        .unwrap()
        .boxed();
    assert!(matches!(
        watch_next(&mut raw, 20, "ADDED seed").await,
        Some(Ok(WatchEvent::Added(_)))
    ));

    let mut s = watcher::watcher(api.clone(), watcher::Config::default().labels("w=sim")).boxed();
    let mut inits = 0;
    loop {
        match watch_next(&mut s, 20, "initial list").await {
            Some(Ok(Event::Init)) => inits += 1,
            Some(Ok(Event::InitDone)) => break,
            Some(Ok(_)) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    // Let the watcher's watch request reach the server before dropping it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    watch_drop_all(&client).await;
    assert!(
        watch_next(&mut raw, 20, "the raw watch to end")
            .await
            .is_none(),
        "dropped watches end"
    );

    api.create(&PostParams::default(), &watch_cm("after-drop"))
        .await
        .unwrap();
    let mut saw = false;
    while !saw {
        match watch_next(&mut s, 30, "Apply after-drop").await {
            Some(Ok(Event::Apply(o) | Event::InitApply(o)))
                if o.metadata.name.as_deref() == Some("after-drop") =>
            {
                saw = true
            }
            Some(Ok(Event::Init)) => inits += 1,
            Some(_) => {}
            None => panic!("watcher ended"),
        }
    }

    // Drop again and make more changes than the history holds: whether the resumed watch comes in
    // time or gets 410 Gone and the watcher re-lists (a new Init), it ends up seeing the change.
    watch_drop_all(&client).await;
    for i in 0..10 {
        api.patch(
            "seed",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"n": i.to_string()}})),
        )
        .await
        .unwrap();
    }
    api.create(&PostParams::default(), &watch_cm("after-gone"))
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            match s.next().await {
                Some(Ok(Event::Apply(o) | Event::InitApply(o)))
                    if o.metadata.name.as_deref() == Some("after-gone") =>
                {
                    return;
                }
                Some(Ok(Event::Init)) => inits += 1,
                Some(_) => {}
                None => panic!("watcher ended"),
            }
        }
    })
    .await
    .expect("the watcher sees after-gone");
    assert!(inits >= 1);
}

// ---------------------------------------------------------------------------
// Bearer tokens, impersonation, metrics and fault injection (kube-sim's own knobs)
// ---------------------------------------------------------------------------

/// A raw HTTP/1.1 exchange with the simulator: status code, headers (lower-cased names), body.
struct RawReply {
    code: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl RawReply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

fn raw_request_text(method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> String {
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: kube-sim\r\nConnection: close\r\nAccept: application/json\r\n"
    );
    if !body.is_empty() {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    req
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// Send one request on its own connection and read the whole reply.
async fn raw_http(
    c: &Cluster,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> RawReply {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(c.sim().addr)
        .await
        .expect("connect to kube-sim");
    conn.write_all(raw_request_text(method, path, headers, body).as_bytes())
        .await
        .expect("send");
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), conn.read_to_end(&mut buf))
        .await
        .expect("reply within 30s")
        .expect("read");
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let code = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    RawReply {
        code,
        headers,
        body,
    }
}

async fn put_faults(c: &Cluster, faults: serde_json::Value) -> RawReply {
    raw_http(c, "PUT", "/kube-sim/faults", &[], &faults.to_string()).await
}

/// A kube-rs client from a kubeconfig whose user has `token:` (and optionally `as:`/`as-groups:`).
/// (kubectl sends kubeconfig credentials only over TLS; kube-sim serves plain HTTP.)
async fn token_client(
    c: &Cluster,
    token: &str,
    as_user: Option<&str>,
    as_groups: &[&str],
) -> kube::Client {
    let mut user = json!({"token": token});
    if let Some(u) = as_user {
        user["as"] = json!(u);
    }
    if !as_groups.is_empty() {
        user["as-groups"] = json!(as_groups);
    }
    let kc = json!({"apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "kube-sim", "cluster": {"server": c.sim().url()}}],
        "contexts": [{"name": "t", "context": {"cluster": "kube-sim", "user": "t", "namespace": c.ns}}],
        "current-context": "t", "users": [{"name": "t", "user": user}]});
    let kc = kube::config::Kubeconfig::from_yaml(&kc.to_string()).expect("kubeconfig");
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .expect("client config");
    kube::Client::try_from(cfg).expect("client")
}

/// SelfSubjectReview: who the server thinks the client is.
async fn whoami(client: &kube::Client) -> Result<serde_json::Value, kube::Error> {
    use k8s_openapi::api::authentication::v1::SelfSubjectReview;
    let api: Api<SelfSubjectReview> = Api::all(client.clone());
    let r = api
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await?;
    Ok(serde_json::to_value(r.status.expect("status").user_info.expect("userInfo")).unwrap())
}

/// `kubectl apply` (as the admin) of each item of a v1 List.
async fn apply_each(c: &Cluster, list: &serde_json::Value) {
    for item in list["items"].as_array().unwrap() {
        let o = c.apply(&item.to_string()).await;
        assert!(o.ok(), "apply failed: {}\n{item}", o.stderr);
    }
}

fn bench_cm(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": {"n": "0"}})).unwrap()
}

fn token_config() -> kube_sim::SimConfig {
    let tokens = kube_sim::parse_token_file(
        "# token,user,uid,groups\ntok-bob,bob,1001,\"devs,ops\"\ntok-eve,eve,1002\n",
    )
    .expect("token file");
    kube_sim::SimConfig {
        tokens,
        ..Default::default()
    }
}

// Token file authentication (--token-auth-file): a bearer token is its user, with the file's
// uid and groups plus system:authenticated, and RBAC applies to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_known_token_is_that_user_and_rbac_applies() {
    let c = Cluster::sim_only(token_config()).await;
    let bob = token_client(&c, "tok-bob", None, &[]).await;
    let who = whoami(&bob).await.unwrap();
    assert_eq!(who["username"], "bob");
    assert_eq!(who["uid"], "1001");
    assert_eq!(
        who["groups"],
        json!(["devs", "ops", "system:authenticated"])
    );

    let cms: Api<ConfigMap> = Api::namespaced(bob.clone(), &c.ns);
    let st = api_err(cms.list(&ListParams::default()).await);
    assert_eq!((st.code, st.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        st.message,
        format!(
            "configmaps is forbidden: User \"bob\" cannot list resource \"configmaps\" in API group \"\" in the namespace \"{}\"",
            c.ns
        )
    );
    // A binding to one of the token's groups grants bob.
    let rbac = json!({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "reader", "namespace": c.ns},
         "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "devs", "namespace": c.ns},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
         "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "devs"}]}]});
    apply_each(&c, &rbac).await;
    let names: Vec<String> = cms
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|cm| cm.metadata.name)
        .collect();
    assert!(names.contains(&"kube-root-ca.crt".to_string()), "{names:?}");
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(bob.clone(), &c.ns);
    let st = api_err(secrets.list(&ListParams::default()).await);
    assert!(
        st.message
            .contains("User \"bob\" cannot list resource \"secrets\""),
        "{st:?}"
    );
    // eve is not in devs.
    let eve = token_client(&c, "tok-eve", None, &[]).await;
    assert_eq!(
        whoami(&eve).await.unwrap()["groups"],
        json!(["system:authenticated"])
    );
    let st = api_err(
        Api::<ConfigMap>::namespaced(eve, &c.ns)
            .list(&ListParams::default())
            .await,
    );
    assert!(
        st.message
            .contains("User \"eve\" cannot list resource \"configmaps\""),
        "{st:?}"
    );
    // The kube-sim control endpoints are the admin's.
    let r = raw_http(
        &c,
        "GET",
        "/kube-sim/metrics",
        &[("Authorization", "Bearer tok-bob")],
        "",
    )
    .await;
    assert_eq!(r.code, 403, "{}", r.body);
}

// Token file authentication: an unknown bearer token is 401 Unauthorized.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_unknown_token_is_401() {
    let c = Cluster::sim_only(token_config()).await;
    let bad = token_client(&c, "no-such-token", None, &[]).await;
    let st = api_err(
        Api::<ConfigMap>::namespaced(bad.clone(), &c.ns)
            .list(&ListParams::default())
            .await,
    );
    assert_eq!(
        (st.code, st.reason.as_str(), st.message.as_str()),
        (401, "Unauthorized", "Unauthorized")
    );
    assert!(matches!(whoami(&bad).await, Err(kube::Error::Api(s)) if s.code == 401));
    let r = raw_http(
        &c,
        "GET",
        &format!("/api/v1/namespaces/{}/configmaps", c.ns),
        &[("Authorization", "Bearer no-such-token")],
        "",
    )
    .await;
    assert_eq!(r.code, 401);
    assert_eq!(r.json()["reason"], "Unauthorized");
    let r = raw_http(
        &c,
        "GET",
        "/api/v1/namespaces",
        &[("Authorization", "Basic Ym9iOng=")],
        "",
    )
    .await;
    assert_eq!(r.code, 401, "a scheme other than Bearer is not a token");
}

// User impersonation: impersonating is itself authorized (verb `impersonate` on users, groups,
// serviceaccounts); a user without that permission is refused with 403.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_impersonation_needs_the_impersonate_verb() {
    let c = Cluster::sim_only(token_config()).await;
    let list_as = |user: &'static str, groups: &'static [&'static str]| {
        let c = &c;
        async move {
            let client = token_client(c, "tok-bob", Some(user), groups).await;
            Api::<ConfigMap>::namespaced(client, &c.ns)
                .list(&ListParams::default())
                .await
        }
    };
    let st = api_err(list_as("alice", &[]).await);
    assert_eq!((st.code, st.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        st.message,
        "users \"alice\" is forbidden: User \"bob\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope"
    );
    let sa = format!("system:serviceaccount:{}:robot", c.ns);
    let st = api_err(
        Api::<ConfigMap>::namespaced(token_client(&c, "tok-bob", Some(&sa), &[]).await, &c.ns)
            .list(&ListParams::default())
            .await,
    );
    assert_eq!(
        st.message,
        format!(
            "serviceaccounts \"robot\" is forbidden: User \"bob\" cannot impersonate resource \"serviceaccounts\" in API group \"\" in the namespace \"{}\"",
            c.ns
        )
    );

    // May impersonate the user alice (by name) and nothing else.
    let grant = json!({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "impersonate-alice"},
         "rules": [{"apiGroups": [""], "resources": ["users"], "resourceNames": ["alice"], "verbs": ["impersonate"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "bob-impersonates-alice"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "impersonate-alice"},
         "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "bob"}]}]});
    apply_each(&c, &grant).await;
    let who = whoami(&token_client(&c, "tok-bob", Some("alice"), &[]).await)
        .await
        .unwrap();
    assert_eq!(who["username"], "alice");
    assert_eq!(who["groups"], json!(["system:authenticated"]));
    // alice herself has no permissions: the request is authorized as alice, not bob.
    let st = api_err(list_as("alice", &[]).await);
    assert!(
        st.message.starts_with(
            "configmaps is forbidden: User \"alice\" cannot list resource \"configmaps\""
        ),
        "{st:?}"
    );
    let st = api_err(list_as("carol", &[]).await);
    assert!(
        st.message.starts_with(
            "users \"carol\" is forbidden: User \"bob\" cannot impersonate resource \"users\""
        ),
        "{st:?}"
    );
    let st = api_err(list_as("alice", &["admins"]).await);
    assert_eq!(
        st.message,
        "groups \"admins\" is forbidden: User \"bob\" cannot impersonate resource \"groups\" in API group \"\" at the cluster scope"
    );
}

fn metrics_row<'a>(
    m: &'a serde_json::Value,
    verb: &str,
    resource: &str,
    manager: &str,
) -> Option<&'a serde_json::Value> {
    m["requests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["verb"] == verb && r["resource"] == resource && r["fieldManager"] == manager)
}

// kube-sim metrics: GET /kube-sim/metrics counts API requests by verb, resource and field manager.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_by_verb_resource_and_field_manager() {
    let c = Cluster::sim_only(Default::default()).await;
    let api: Api<ConfigMap> = Api::namespaced(c.client().await, &c.ns);
    let pp = PostParams {
        field_manager: Some("bench".into()),
        ..Default::default()
    };
    for i in 0..3 {
        api.create(&pp, &bench_cm(&format!("bench-{i}")))
            .await
            .unwrap();
    }
    api.get("bench-0").await.unwrap();
    let m = raw_http(&c, "GET", "/kube-sim/metrics", &[], "").await;
    assert_eq!(m.code, 200, "{}", m.body);
    let m = m.json();
    let row = metrics_row(&m, "create", "configmaps", "bench")
        .unwrap_or_else(|| panic!("no create/configmaps/bench row: {m}"));
    assert_eq!(row["count"], 3, "{m}");
    assert_eq!(row["group"], "");
    assert!(
        metrics_row(&m, "get", "configmaps", "").is_some_and(|r| r["count"].as_u64() >= Some(1)),
        "{m}"
    );
    assert!(m["byVerb"]["create"].as_u64().unwrap() >= 3, "{m}");
    assert!(
        m["writes"].as_u64().unwrap() >= 3
            && m["total"].as_u64().unwrap() >= m["writes"].as_u64().unwrap(),
        "{m}"
    );
}

// kube-sim metrics: POST /kube-sim/metrics/reset zeroes the counters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_reset_zeroes_the_counters() {
    let c = Cluster::sim_only(Default::default()).await;
    let api: Api<ConfigMap> = Api::namespaced(c.client().await, &c.ns);
    api.create(
        &PostParams {
            field_manager: Some("bench".into()),
            ..Default::default()
        },
        &bench_cm("one"),
    )
    .await
    .unwrap();
    let before = raw_http(&c, "GET", "/kube-sim/metrics", &[], "")
        .await
        .json();
    assert!(before["total"].as_u64().unwrap() > 0, "{before}");
    let r = raw_http(&c, "POST", "/kube-sim/metrics/reset", &[], "").await;
    assert_eq!(r.code, 200, "{}", r.body);
    assert_eq!(r.json()["total"], 0);
    let after = raw_http(&c, "GET", "/kube-sim/metrics", &[], "")
        .await
        .json();
    assert_eq!(after["total"], 0, "{after}");
    assert_eq!(after["requests"], json!([]));
    api.list(&ListParams::default()).await.unwrap();
    let again = raw_http(&c, "GET", "/kube-sim/metrics", &[], "")
        .await
        .json();
    assert_eq!(again["byVerb"]["list"], 1, "{again}");
    assert!(
        metrics_row(&again, "create", "configmaps", "bench").is_none(),
        "{again}"
    );
}

// kube-sim faults: writeErrorRate 1 with code 500 fails every write and no read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_write_error_rate_fails_writes_not_reads() {
    let c = Cluster::sim_only(Default::default()).await;
    let api: Api<ConfigMap> = Api::namespaced(c.client().await, &c.ns);
    api.create(&PostParams::default(), &bench_cm("before"))
        .await
        .unwrap();
    let r = put_faults(&c, json!({"writeErrorRate": 1.0, "writeErrorCode": 500})).await;
    assert_eq!(r.code, 200, "{}", r.body);
    assert_eq!(
        raw_http(&c, "GET", "/kube-sim/faults", &[], "")
            .await
            .json()["writeErrorRate"],
        1.0
    );
    for i in 0..5 {
        let err = api
            .create(&PostParams::default(), &bench_cm(&format!("during-{i}")))
            .await
            .expect_err("writes fail");
        let kube::Error::Api(st) = err else {
            panic!("want an API error, got {err:?}")
        };
        assert_eq!(
            (st.code, st.reason.as_str()),
            (500, "InternalError"),
            "{st:?}"
        );
    }
    let err = api
        .patch(
            "before",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"n": "1"}})),
        )
        .await
        .expect_err("patch fails");
    assert!(
        matches!(&err, kube::Error::Api(st) if st.code == 500),
        "{err:?}"
    );
    let err = c
        .kubectl_err(&["delete", "configmap", "before", "-n", &c.ns])
        .await;
    assert!(err.contains("Internal error occurred"), "{err}");
    // Reads are untouched.
    assert_eq!(api.get("before").await.unwrap().data.unwrap()["n"], "0");
    assert_eq!(
        api.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .iter()
            .filter(|cm| cm.metadata.name.as_deref() == Some("before"))
            .count(),
        1
    );
    c.kubectl_ok(&["get", "configmap", "before", "-n", &c.ns])
        .await;
    // Clearing the knobs restores writes.
    assert_eq!(put_faults(&c, json!({})).await.code, 200);
    api.create(&PostParams::default(), &bench_cm("after"))
        .await
        .unwrap();
}

// kube-sim faults: write errors with code 429 carry Retry-After (as API priority and fairness does).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_429_write_errors_carry_retry_after() {
    let c = Cluster::sim_only(Default::default()).await;
    let r = put_faults(
        &c,
        json!({"writeErrorRate": 1.0, "writeErrorCode": 429, "retryAfterSeconds": 7}),
    )
    .await;
    assert_eq!(r.code, 200, "{}", r.body);
    let cm =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}).to_string();
    let r = raw_http(
        &c,
        "POST",
        &format!("/api/v1/namespaces/{}/configmaps", c.ns),
        &[],
        &cm,
    )
    .await;
    assert_eq!(r.code, 429, "{}", r.body);
    assert_eq!(r.header("retry-after"), Some("7"));
    let st = r.json();
    assert_eq!(st["kind"], "Status");
    assert_eq!(st["reason"], "TooManyRequests");
    assert_eq!(st["details"]["retryAfterSeconds"], 7);
    let r = raw_http(
        &c,
        "GET",
        &format!("/api/v1/namespaces/{}/configmaps", c.ns),
        &[],
        "",
    )
    .await;
    assert_eq!(r.code, 200, "reads are not refused");
}

// kube-sim faults: maxInFlight caps concurrent requests; the excess gets 429.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_max_in_flight_refuses_the_excess_with_429() {
    let c = Cluster::sim_only(Default::default()).await;
    let r = put_faults(&c, json!({"maxInFlight": 1, "latencyMs": 300})).await;
    assert_eq!(r.code, 200, "{}", r.body);
    let path = format!("/api/v1/namespaces/{}/configmaps", c.ns);
    let (a, b) = tokio::join!(
        raw_http(&c, "GET", &path, &[], ""),
        raw_http(&c, "GET", &path, &[], "")
    );
    let mut codes = [a.code, b.code];
    codes.sort();
    assert_eq!(
        codes,
        [200, 429],
        "one request is served, the other refused: {} / {}",
        a.body,
        b.body
    );
    let refused = if a.code == 429 { &a } else { &b };
    assert!(
        refused.header("retry-after").is_some(),
        "{:?}",
        refused.headers
    );
    assert_eq!(refused.json()["reason"], "TooManyRequests");
    // One at a time is fine.
    assert_eq!(raw_http(&c, "GET", &path, &[], "").await.code, 200);
    assert_eq!(put_faults(&c, json!({})).await.code, 200);
    let (a, b) = tokio::join!(
        raw_http(&c, "GET", &path, &[], ""),
        raw_http(&c, "GET", &path, &[], "")
    );
    assert_eq!((a.code, b.code), (200, 200));
}

// kube-sim faults: invalid knobs are refused with 400 naming the field, and change nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_invalid_knobs_are_400() {
    let c = Cluster::sim_only(Default::default()).await;
    assert_eq!(put_faults(&c, json!({"latencyMs": 5})).await.code, 200);
    let r = put_faults(&c, json!({"writeErrorRate": 2.0, "writeErrorCode": 500})).await;
    assert_eq!(r.code, 400, "{}", r.body);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("writeErrorRate"),
        "{}",
        r.body
    );
    assert_eq!(r.json()["reason"], "BadRequest");
    let r = put_faults(&c, json!({"writeErrorRate": 0.5, "writeErrorCode": 404})).await;
    assert_eq!(r.code, 400);
    assert!(r.body.contains("writeErrorCode"), "{}", r.body);
    let r = put_faults(&c, json!({"latencyMS": 5})).await;
    assert_eq!(r.code, 400, "unknown knobs are refused: {}", r.body);
    let now = raw_http(&c, "GET", "/kube-sim/faults", &[], "")
        .await
        .json();
    assert_eq!(now["latencyMs"], 5, "{now}");
    assert_eq!(now["writeErrorRate"], 0.0, "{now}");
}

// kube-sim faults: dropWatchesEverySeconds ends open watch streams.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_drop_watches_ends_a_raw_watch_stream() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let c = Cluster::sim_only(Default::default()).await;
    assert_eq!(
        put_faults(&c, json!({"dropWatchesEverySeconds": 1}))
            .await
            .code,
        200
    );
    let mut conn = tokio::net::TcpStream::connect(c.sim().addr).await.unwrap();
    let path = format!(
        "/api/v1/namespaces/{}/configmaps?watch=1&timeoutSeconds=300",
        c.ns
    );
    conn.write_all(raw_request_text("GET", &path, &[], "").as_bytes())
        .await
        .unwrap();
    let mut seen = Vec::new();
    let ended = tokio::time::timeout(Duration::from_secs(15), async {
        let mut buf = [0u8; 4096];
        loop {
            match conn.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(
        ended.is_ok(),
        "the watch (timeoutSeconds=300) was not ended by dropWatchesEverySeconds=1"
    );
    let text = String::from_utf8_lossy(&seen);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
}

// kube-sim faults: watchLagMs holds each watch event back, so a write is answered before any
// watch shows it (as on a busy kube-apiserver); the event still arrives, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_watch_lag_holds_events_back_after_the_write_is_answered() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let c = Cluster::sim_only(Default::default()).await;
    assert_eq!(put_faults(&c, json!({"watchLagMs": 1500})).await.code, 200);
    let list = raw_http(
        &c,
        "GET",
        &format!("/api/v1/namespaces/{}/configmaps", c.ns),
        &[],
        "",
    )
    .await;
    let rv = list.json()["metadata"]["resourceVersion"]
        .as_str()
        .expect("list resourceVersion")
        .to_string();
    let mut conn = tokio::net::TcpStream::connect(c.sim().addr).await.unwrap();
    let path = format!(
        "/api/v1/namespaces/{}/configmaps?watch=1&resourceVersion={rv}&timeoutSeconds=30",
        c.ns
    );
    conn.write_all(raw_request_text("GET", &path, &[], "").as_bytes())
        .await
        .unwrap();
    let made = raw_http(
        &c,
        "POST",
        &format!("/api/v1/namespaces/{}/configmaps", c.ns),
        &[],
        &json!({"metadata": {"name": "lagging"}, "data": {"k": "v"}}).to_string(),
    )
    .await;
    assert_eq!(made.code, 201, "{}", made.body);
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    // Answered, but not yet watched: nothing names the ConfigMap for a while.
    let _ = tokio::time::timeout(Duration::from_millis(300), async {
        loop {
            match conn.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(
        !String::from_utf8_lossy(&seen).contains("\"lagging\""),
        "the event came before the lag: {}",
        String::from_utf8_lossy(&seen)
    );
    // Then it comes.
    let arrived = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if String::from_utf8_lossy(&seen).contains("\"lagging\"") {
                return;
            }
            match conn.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    let text = String::from_utf8_lossy(&seen);
    assert!(
        arrived.is_ok() && text.contains("\"ADDED\"") && text.contains("\"lagging\""),
        "{text}"
    );
}
