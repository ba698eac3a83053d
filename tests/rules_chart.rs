//! The Helm chart as a platform runs it: the `partnerkit` binary with exactly the chart's rights
//! (a token of its ServiceAccount) and the chart's rendered configuration, rendered by the real
//! helm CLI (`make helm-bin`) with `tests/chart/values-e2e.yaml`.
//!
//! - kube-sim: the rendered ServiceAccount, RBAC, admission policies and ConfigMap are applied
//!   (kube-sim runs no Deployments), and the ServiceAccount authenticates with a static token.
//! - A real cluster (`make test-real`): `scripts/test-real.sh` has installed the chart with
//!   `helm upgrade --install` and made a token with `kubectl create token`; this test checks that
//!   every rendered object is in the cluster and runs the binary with that token.
//!
//! Only what differs between a pod and this test process is changed in the configuration: the
//! listen addresses, the SMTP port (a local aiosmtpd requiring AUTH, its credentials in the
//! Secret the chart lets the operator read by name) and the acceptance URL (the page on loopback).

mod support;

use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::Api;
use kube::api::PostParams;
use serde_json::{Value, json};
use support::mail::{SmtpServer, free_port};
use support::{Env, http, real, tenant_json};

const RELEASE: &str = "partnerkit";
const CHART_NAMESPACE: &str = "partnerkit-system";
const VALUES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/chart/values-e2e.yaml");
const SMTP_USER: &str = "portal";
const SMTP_PASSWORD: &str = "chart-s3cret";

fn helm() -> PathBuf {
    let path = std::env::var_os("HELM")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/target/kube-bins/current/helm"
            ))
        });
    assert!(
        path.is_file(),
        "no helm binary at {}: run `make helm-bin` (the real helm CLI from the pinned Go module)",
        path.display()
    );
    path
}

/// `helm template` of the chart, as `scripts/test-real.sh` installs it: every object.
fn render() -> Vec<Value> {
    let chart = concat!(env!("CARGO_MANIFEST_DIR"), "/charts/partnerkit");
    let o = std::process::Command::new(helm())
        .args(["template", RELEASE, chart, "--namespace", CHART_NAMESPACE])
        .args(["--values", VALUES])
        .output()
        .expect("helm template");
    assert!(
        o.status.success(),
        "helm template failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout)
        .split("\n---")
        .map(|d| d.trim().trim_start_matches("---").trim())
        .filter(|d| {
            d.lines()
                .any(|l| !l.trim().is_empty() && !l.starts_with('#'))
        })
        .map(|d| serde_saphyr::from_str::<Value>(d).expect("a rendered document"))
        .collect()
}

fn one<'a>(objects: &'a [Value], kind: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind)
        .unwrap_or_else(|| panic!("the chart renders a {kind}"))
}

/// The operator's configuration from the rendered ConfigMap, with what must differ here.
fn config_for_this_process(rendered: &[Value], smtp_port: u16, web_port: u16) -> Value {
    let cm = rendered
        .iter()
        .find(|o| o["kind"] == "ConfigMap" && o["metadata"]["name"] == "partnerkit-config")
        .expect("the config ConfigMap");
    let mut config: Value =
        serde_saphyr::from_str(cm["data"]["config.yaml"].as_str().expect("config.yaml"))
            .expect("the rendered config is YAML");
    assert_eq!(
        config["invites"]["smtp"]["credentialsSecret"], "partnerkit-smtp",
        "values-e2e.yaml configures SMTP with a credentials Secret"
    );
    config["listen"] = json!({"metrics": "127.0.0.1:0", "health": format!("127.0.0.1:{}", free_port()), "web": format!("127.0.0.1:{web_port}")});
    config["invites"]["smtp"]["port"] = json!(smtp_port);
    config["invites"]["smtp"]["retryBackoff"] = json!("200ms");
    config["invites"]["acceptUrl"] = json!(format!("http://127.0.0.1:{web_port}/invites"));
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_binary_runs_with_exactly_the_charts_rights_and_configuration() {
    let sa = "partnerkit";
    let sa_user = format!("system:serviceaccount:{CHART_NAMESPACE}:{sa}");
    let rendered = render();
    let deployment = one(&rendered, "Deployment");
    assert_eq!(
        deployment["spec"]["template"]["spec"]["serviceAccountName"],
        sa
    );

    // The cluster, and the ServiceAccount's kubeconfig.
    let sim = kube_sim::SimConfig {
        tokens: vec![kube_sim::TokenEntry {
            token: "operator-token".into(),
            user: sa_user.clone(),
            uid: "sa-uid".into(),
            groups: vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{CHART_NAMESPACE}"),
            ],
        }],
        ..Default::default()
    };
    let env = Env::start_with(sim, support::CONFIG, false).await;
    let sa_kubeconfig = if real() {
        // Installed by scripts/test-real.sh: every rendered object is in the cluster.
        for o in &rendered {
            let ns = o["metadata"]["namespace"].as_str();
            let name = o["metadata"]["name"].as_str().unwrap();
            let (api_version, kind) = (
                o["apiVersion"].as_str().unwrap(),
                o["kind"].as_str().unwrap(),
            );
            assert!(
                env.get(api_version, kind, ns, name).await.is_some(),
                "{kind} {name} of the chart is not in the cluster: install it with scripts/test-real.sh"
            );
        }
        let (kubeconfig, account) = support::operator_identity().expect(
            "on a real cluster this test needs the chart's token: run it through `make test-real`",
        );
        assert_eq!(account, (CHART_NAMESPACE.to_string(), sa.to_string()));
        kubeconfig
    } else {
        env.apply_json(&json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": CHART_NAMESPACE}}))
            .await;
        let served = [
            "ServiceAccount",
            "ConfigMap",
            // The portal's session key (values-e2e.yaml configures the portal; the chart
            // generates the Secret, and the operator reads it at start with the chart's rights).
            "Secret",
            "ClusterRole",
            "ClusterRoleBinding",
            "Role",
            "RoleBinding",
            "ValidatingAdmissionPolicy",
            "ValidatingAdmissionPolicyBinding",
        ];
        for o in rendered
            .iter()
            .filter(|o| served.contains(&o["kind"].as_str().unwrap_or_default()))
        {
            support::apply_value(&env.client, o, "helm").await;
        }
        let path = env.dir.join("operator.kubeconfig");
        std::fs::write(
            &path,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: sim\n  cluster: {{server: {}}}\ncontexts:\n- name: sa\n  context: {{cluster: sim, user: sa, namespace: {CHART_NAMESPACE}}}\ncurrent-context: sa\nusers:\n- name: sa\n  user: {{token: operator-token}}\n",
                env.sim().url()
            ),
        )
        .unwrap();
        path
    };
    let sa_client = support::client_from(&sa_kubeconfig).await;
    let who =
        Api::<k8s_openapi::api::authentication::v1::SelfSubjectReview>::all(sa_client.clone())
            .create(&PostParams::default(), &Default::default())
            .await
            .expect("SelfSubjectReview as the ServiceAccount");
    assert_eq!(
        who.status
            .and_then(|s| s.user_info)
            .and_then(|u| u.username)
            .as_deref(),
        Some(sa_user.as_str()),
        "the operator's identity is the chart's ServiceAccount"
    );

    // The chart's configuration; the SMTP server wants the credentials from the Secret that
    // the chart lets the operator read (by name, in its namespace).
    let smtp = SmtpServer::start_fresh(Some((SMTP_USER, SMTP_PASSWORD))).await;
    let (smtp_port, web_port) = (smtp.port, free_port());
    let config = config_for_this_process(&rendered, smtp_port, web_port);
    let config_path = env.dir.join("config.yaml");
    std::fs::write(&config_path, serde_json::to_string_pretty(&config).unwrap()).unwrap();
    env.apply_json(&json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "partnerkit-smtp", "namespace": CHART_NAMESPACE},
        "stringData": {"username": SMTP_USER, "password": SMTP_PASSWORD}}))
        .await;

    // The binary, as the Deployment runs it.
    let health = config["listen"]["health"].as_str().unwrap().to_string();
    let log_path = env.dir.join("operator.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut op = tokio::process::Command::new(env!("CARGO_BIN_EXE_partnerkit"))
        .args(["run", "--config"])
        .arg(&config_path)
        .env("KUBECONFIG", &sa_kubeconfig)
        .env("POD_NAMESPACE", CHART_NAMESPACE)
        .env("POD_NAME", "partnerkit-test")
        .env("PARTNERKIT_SERVICE_ACCOUNT", sa)
        .env("RUST_LOG", "info")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("the partnerkit binary");
    env.eventually(60, "the operator to be ready (/readyz)", || async {
        let r = http::get(&format!("http://{health}/readyz")).await.ok()?;
        (r.status == 200).then_some(())
    })
    .await;

    // A partner with a template, a tenant: everything materialized, every binding accepted by
    // the API server's escalation checks.
    let acme = env.n("acme");
    let alice = env.email("alice", &acme);
    let pns = env
        .partner_ready(
            &acme,
            &[&alice],
            json!({"entitlements": {"bizApps": [], "branding": true}, "branding": {"primaryColor": "#0055ff"}}),
        )
        .await;
    env.apply_json(&tenant_json(
        &pns,
        "template",
        json!({"displayName": "T", "profiles": {"wifi": {"ssid": "acme"}}}),
    ))
    .await;
    let globex = env.n("globex");
    env.tenant_ready(&pns, &globex, json!({"displayName": "Globex"}))
        .await;
    let ws = env.ws(&globex);
    env.eventually(10, "the inherited profile", || async {
        let cm = env.config_map(&ws, "partnerkit-profile-wifi").await?;
        (cm["data"]["ssid"] == "acme").then_some(())
    })
    .await;
    for cm in ["partnerkit-bizapps", "partnerkit-branding"] {
        assert!(env.config_map(&ws, cm).await.is_some(), "{cm}");
    }
    // The portal runs with the chart's configuration (auth: proxy, trusting 127.0.0.1/32) and
    // rights: as alice (the proxy's header), her partner's Companies, read with impersonation.
    let r = http::request(
        "GET",
        &format!("http://127.0.0.1:{web_port}/portal/partners/{acme}/companies"),
        &[("X-Forwarded-Email", &alice)],
        None,
    )
    .await
    .expect("the portal");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains(&globex), "{}", r.body);
    assert_eq!(
        env.config_map(&ws, "partnerkit-branding").await.unwrap()["data"]["primaryColor"],
        "#0055ff"
    );
    for rb in ["partnerkit-partner-admins", "partnerkit-tenant-admins"] {
        assert!(env.role_binding(&ws, rb).await.is_some(), "{rb}");
    }
    let per_partner = format!("partnerkit:partner:{acme}");
    assert!(env.cluster_role(&per_partner).await.is_some());
    assert!(env.cluster_role_binding(&per_partner).await.is_some());
    let rb = env
        .role_binding(&pns, "partnerkit-operator")
        .await
        .expect("the operator's RoleBinding in the partner namespace");
    assert_eq!(rb["roleRef"]["name"], "partnerkit-invite-links");
    assert_eq!(rb["subjects"][0]["name"], sa);
    assert_eq!(rb["subjects"][0]["namespace"], CHART_NAMESPACE);
    // Alice administers the tenant's workspace through what the operator bound.
    let o = env
        .kubectl_as(
            &alice,
            &["auth", "can-i", "create", "configmaps", "-n", &ws],
        )
        .await;
    assert_eq!(o.stdout.trim(), "yes", "{}", o.stderr);

    // An invitation: mailed through the SMTP server with the chart-granted credentials, accepted.
    env.apply_json(&json!({"apiVersion": "partnerkit.io/v1alpha1", "kind": "PartnerAdminInvite",
        "metadata": {"name": "invite-bob", "namespace": pns}, "spec": {"email": "bob@acme.example"}}))
        .await;
    let mail = smtp.wait_for("bob@acme.example", 30).await;
    let prefix = format!("http://127.0.0.1:{web_port}/invites");
    let link = mail.link(&prefix).expect("the link in the mail");
    let token = link.rsplit_once("token=").expect("a token").1.to_string();
    let page = link.split_once('?').unwrap().0.to_string();
    let r = http::post_form(&page, &[("token", &token)], &[])
        .await
        .expect("accept");
    assert_eq!(r.status, 200, "{}", r.body);
    env.eventually(15, "bob to be a partner admin", || async {
        let o = env
            .kubectl_as(
                "bob@acme.example",
                &[
                    "auth",
                    "can-i",
                    "create",
                    "tenants.partnerkit.io",
                    "-n",
                    &pns,
                ],
            )
            .await;
        (o.stdout.trim() == "yes").then_some(())
    })
    .await;

    // What the chart does not grant, the API server refuses — for real, not by can-i.
    let err = Api::<Secret>::namespaced(sa_client.clone(), &ws)
        .list(&Default::default())
        .await
        .expect_err("the operator may not list Secrets in a tenant workspace");
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 403),
        "a 403, got {err:?}"
    );
    let err = Api::<Secret>::namespaced(sa_client.clone(), &ws)
        .get("anything")
        .await
        .expect_err("nor read one");
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 403),
        "{err:?}"
    );
    // In a partner namespace it reaches Secrets through its own binding only (404, not 403).
    assert!(
        Api::<Secret>::namespaced(sa_client.clone(), &pns)
            .get_opt("no-such-secret")
            .await
            .expect("the operator may read Secrets in a partner namespace")
            .is_none()
    );
    // And it cannot grant itself more: the API server's escalation check refuses a ClusterRole
    // with rights it does not hold (it has no `escalate`).
    let greedy: ClusterRole = serde_json::from_value(json!({
        "metadata": {"name": env.n("partnerkit-greedy")},
        "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}]
    }))
    .unwrap();
    let err = Api::<ClusterRole>::all(sa_client.clone())
        .create(&PostParams::default(), &greedy)
        .await
        .expect_err("no escalation");
    match &err {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 403, "{s:?}");
            assert!(
                s.message
                    .contains("is attempting to grant RBAC permissions not currently held"),
                "{}",
                s.message
            );
        }
        other => panic!("a 403, got {other:?}"),
    }

    // A refused tenant gets its Warning Event; deletion works with the chart's rights.
    let greedy_tenant = env.n("greedy");
    env.apply_json(&tenant_json(
        &pns,
        &greedy_tenant,
        json!({"displayName": "G", "bizApps": {"crm": true}}),
    ))
    .await;
    env.wait_reason("Tenant", Some(&pns), &greedy_tenant, "NotEntitled")
        .await;
    env.eventually(10, "the Warning Event", || async {
        (!env
            .warnings_about(&pns, "Tenant", &greedy_tenant)
            .await
            .is_empty())
        .then_some(())
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
    for t in [&globex, &greedy_tenant] {
        env.delete("tenant", Some(&pns), t).await;
    }
    env.kubectl_ok(&["delete", "pai", "invite-bob", "-n", &pns])
        .await;
    env.delete("partner", None, &acme).await;
    env.wait_gone("partnerkit.io/v1alpha1", "Partner", None, &acme)
        .await;
    let kept = env
        .namespace(&ws)
        .await
        .expect("the Retain workspace is kept");
    assert_eq!(
        support::labels_of(&kept)
            .get("partnerkit.io/orphaned")
            .map(String::as_str),
        Some("true")
    );

    // It stops cleanly, and was never refused anything on the way (a right the chart lacks
    // would show as a forbidden error in its log).
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &op.id().unwrap().to_string()])
        .status();
    let status = tokio::time::timeout(Duration::from_secs(15), op.wait())
        .await
        .expect("the operator stops on SIGTERM")
        .unwrap();
    assert!(status.success(), "exit status {status}");
    let log_text = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        log_text.contains("invitation sent") && log_text.contains("invitation accepted"),
        "the log covers the flow:\n{log_text}"
    );
    assert!(
        !log_text.to_lowercase().contains("forbidden"),
        "the operator was refused something:\n{log_text}"
    );
    env.kubectl_ok(&["delete", "secret", "partnerkit-smtp", "-n", CHART_NAMESPACE])
        .await;
    env.kubectl_ok(&["delete", "namespace", &ws, "--wait=false"])
        .await;
    env.finish().await;
}
