//! Every installed kubectl release, 1.27 to 1.33, against the cluster (kube-sim, or the real
//! control plane in `make test-real`): the README's kubectl × server table is these tests.
//! Older releases' `apply`/`create` check the server's field-validation support in the OpenAPI
//! v2 document (`GET /openapi/v2`, protobuf) and their `explain` reads it too, so these exercise
//! the Swagger 2.0 endpoint end to end; newer ones use OpenAPI v3.
mod common;
use common::*;

const SDK_BIN: &str = "/usr/lib/google-cloud-sdk/bin";

/// The kubectl binary of a minor version (the machines have 1.27 to 1.33 installed).
fn versioned_kubectl(minor: &str) -> String {
    let path = format!("{SDK_BIN}/kubectl.{minor}");
    assert!(
        std::path::Path::new(&path).exists(),
        "kubectl {minor} is not installed at {path}"
    );
    path
}

async fn ok(c: &Cluster, bin: &str, args: &[&str]) -> String {
    let o = c.kubectl_with(bin, args, None).await;
    assert!(
        o.ok(),
        "{bin} {args:?} failed ({}):\n{}{}",
        o.code,
        o.stderr,
        o.stdout
    );
    o.stdout
}

/// Custom resources walkthrough (kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/
/// custom-resource-definitions): create a CRD, wait for Established, create and apply custom
/// objects, `kubectl explain` their schema, read them back; unknown fields are rejected under
/// kubectl's default `--validate=strict` (API concepts, "Field validation").
async fn crd_round_trip_with(minor: &str) {
    let bin = versioned_kubectl(minor);
    let bin = bin.as_str();
    let version = std::process::Command::new(bin)
        .args(["version", "--client", "-o", "json"])
        .output()
        .expect("kubectl version");
    let version = json(&String::from_utf8_lossy(&version.stdout));
    assert_eq!(
        version["clientVersion"]["minor"]
            .as_str()
            .map(|m| m.trim_end_matches('+')),
        minor.split('.').nth(1),
        "{bin} is kubectl {minor}"
    );
    let c = Cluster::start().await;
    let group = format!("f{}.example.com", c.suffix);
    let crd_name = format!("widgets.{group}");
    let crd = c.write(
        "crd.yaml",
        &format!(
            r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {{name: {crd_name}}}
spec:
  group: {group}
  scope: Namespaced
  names: {{plural: widgets, singular: widget, kind: Widget}}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            description: WidgetSpec is the desired widget.
            required: [tier]
            properties:
              tier: {{type: string, description: Commercial tier of the widget., enum: [gold, silver]}}
              seats: {{type: integer, description: Number of seats.}}
"#
        ),
    );
    let out = ok(&c, bin, &["apply", "-f", &crd]).await;
    assert!(
        out.contains(&format!(
            "customresourcedefinition.apiextensions.k8s.io/{crd_name} created"
        )),
        "{out}"
    );
    ok(
        &c,
        bin,
        &[
            "wait",
            "--for=condition=Established",
            &format!("crd/{crd_name}"),
            "--timeout=60s",
        ],
    )
    .await;

    // A ConfigMap through create -f and apply -f (built-in kind; strategic-merge apply).
    let cm = c.write("cm.yaml", &format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: settings, namespace: {}}}\ndata: {{a: \"1\"}}\n", c.ns));
    let out = ok(&c, bin, &["create", "-f", &cm]).await;
    assert!(out.contains("configmap/settings created"), "{out}");
    let cm2 = c.write("cm2.yaml", &format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: settings, namespace: {}}}\ndata: {{a: \"2\", b: \"3\"}}\n", c.ns));
    let out = ok(&c, bin, &["apply", "-f", &cm2]).await;
    assert!(out.contains("configmap/settings configured"), "{out}");
    let got = json(
        &ok(
            &c,
            bin,
            &["get", "configmap", "settings", "-n", &c.ns, "-o", "json"],
        )
        .await,
    );
    assert_eq!(got["data"], serde_json::json!({"a": "2", "b": "3"}));

    // The custom resource (discovery may lag the Established condition on a real cluster).
    let widget = c.write("widget.yaml", &format!("apiVersion: {group}/v1\nkind: Widget\nmetadata: {{name: w1, namespace: {}}}\nspec: {{tier: gold, seats: 3}}\n", c.ns));
    let out = c
        .eventually(60, "kubectl apply of the custom resource", || async {
            let o = c.kubectl_with(bin, &["apply", "-f", &widget], None).await;
            o.ok().then_some(o.stdout)
        })
        .await;
    assert!(out.contains(&format!("widget.{group}/w1 created")), "{out}");

    // Unknown fields: rejected (kubectl's default validation is strict).
    let bad = c.write("bad.yaml", &format!("apiVersion: {group}/v1\nkind: Widget\nmetadata: {{name: w2, namespace: {}}}\nspec: {{tier: gold, bogus: 1}}\n", c.ns));
    let o = c.kubectl_with(bin, &["create", "-f", &bad], None).await;
    assert!(!o.ok(), "an unknown field was accepted: {}", o.stdout);
    assert!(
        o.stderr.contains(r#"unknown field "spec.bogus""#),
        "{}",
        o.stderr
    );

    // explain, in the default output and in the OpenAPI v2 one.
    let explained = c
        .eventually(60, "kubectl explain of the custom resource", || async {
            let o = c
                .kubectl_with(bin, &["explain", &format!("widgets.{group}.spec")], None)
                .await;
            (o.ok() && o.stdout.contains("Commercial tier of the widget.")).then_some(o.stdout)
        })
        .await;
    assert!(
        explained.contains("WidgetSpec is the desired widget."),
        "{explained}"
    );
    assert!(explained.contains("seats"), "{explained}");
    let v2 = ok(
        &c,
        bin,
        &[
            "explain",
            &format!("widgets.{group}.spec"),
            "--output=plaintext-openapiv2",
        ],
    )
    .await;
    assert!(v2.contains("KIND:     Widget"), "{v2}");
    assert!(v2.contains("tier\t<string> -required-"), "{v2}");
    assert!(v2.contains("Commercial tier of the widget."), "{v2}");
    let cm_explained = ok(
        &c,
        bin,
        &["explain", "configmaps", "--output=plaintext-openapiv2"],
    )
    .await;
    assert!(
        cm_explained.contains("KIND:     ConfigMap"),
        "{cm_explained}"
    );
    assert!(
        cm_explained.contains("data\t<map[string]string>"),
        "{cm_explained}"
    );

    // Read back.
    let got = json(
        &ok(
            &c,
            bin,
            &[
                "get",
                &format!("widgets.{group}"),
                "w1",
                "-n",
                &c.ns,
                "-o",
                "json",
            ],
        )
        .await,
    );
    assert_eq!(got["kind"], "Widget");
    assert_eq!(got["apiVersion"], format!("{group}/v1"));
    assert_eq!(got["spec"], serde_json::json!({"tier": "gold", "seats": 3}));
    assert!(
        got["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
            .is_string()
    );

    // A second apply patches it.
    let widget2 = c.write("widget2.yaml", &format!("apiVersion: {group}/v1\nkind: Widget\nmetadata: {{name: w1, namespace: {}}}\nspec: {{tier: silver, seats: 3}}\n", c.ns));
    let out = ok(&c, bin, &["apply", "-f", &widget2]).await;
    assert!(
        out.contains(&format!("widget.{group}/w1 configured")),
        "{out}"
    );
    let got = json(
        &ok(
            &c,
            bin,
            &[
                "get",
                &format!("widgets.{group}"),
                "w1",
                "-n",
                &c.ns,
                "-o",
                "json",
            ],
        )
        .await,
    );
    assert_eq!(got["spec"]["tier"], "silver");

    // Server-side apply, and the printed table.
    let widget3 = c.write("widget3.yaml", &format!("apiVersion: {group}/v1\nkind: Widget\nmetadata: {{name: w3, namespace: {}}}\nspec: {{tier: gold}}\n", c.ns));
    let out = ok(&c, bin, &["apply", "--server-side", "-f", &widget3]).await;
    assert!(
        out.contains(&format!("widget.{group}/w3 serverside-applied")),
        "{out}"
    );
    let table = ok(&c, bin, &["get", &format!("widgets.{group}"), "-n", &c.ns]).await;
    assert!(
        table.starts_with("NAME") && table.contains("w1") && table.contains("w3"),
        "{table}"
    );

    let _ = c
        .kubectl_with(bin, &["delete", "crd", &crd_name, "--wait=false"], None)
        .await;
}

macro_rules! kubectl_versions {
    ($($name:ident => $minor:literal),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            crd_round_trip_with($minor).await;
        }
    )*};
}

kubectl_versions! {
    kubectl_1_27_applies_creates_and_explains_custom_resources => "1.27",
    kubectl_1_28_applies_creates_and_explains_custom_resources => "1.28",
    kubectl_1_29_applies_creates_and_explains_custom_resources => "1.29",
    kubectl_1_30_applies_creates_and_explains_custom_resources => "1.30",
    kubectl_1_31_applies_creates_and_explains_custom_resources => "1.31",
    kubectl_1_32_applies_creates_and_explains_custom_resources => "1.32",
    kubectl_1_33_applies_creates_and_explains_custom_resources => "1.33",
}
