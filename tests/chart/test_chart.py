"""The Helm chart (charts/partnerkit) and the examples (examples/), checked offline.

Run: make venv helm-bin && HELM=target/kube-bins/current/helm target/venv/bin/python -m pytest tests/chart -q
(packages: tests/chart/requirements.txt; `make test` runs it with $HELM set)

- the chart lints (`helm lint --strict`) and renders (`helm template`) with default and custom
  values, with the real helm CLI: $HELM, else target/kube-bins/current/helm, built from the
  pinned helm Go module by `make helm-bin` (tests/chart/helmcli.py; offline, no cluster). No
  helm binary is a failure that says so, not a skip;
- every rendered built-in object is valid for Kubernetes 1.33 (kubernetes-validate, strict);
- the chart ships exactly what `partnerkit manifests` prints: its crds/ are the repo's crds/
  byte for byte, and templates/user-roles.yaml renders the same ClusterRoles and admission
  policy (scripts/sync-chart.sh regenerates both);
- the operator's Deployment, probes and config ConfigMap, and its RBAC: it can create the
  per-partner ClusterRoles without `escalate`, and binds the two shared roles with `bind`;
- every example is valid against the CRDs' openAPIV3Schema, and against a running kube-sim with
  the CEL rules, by server dry-run; the chart's operator RBAC there too, with `kubectl auth
  can-i`. kube-sim is built if missing ($KUBE_SIM, else target/{release,debug}/kube-sim); no
  kubectl ($KUBECTL, default `kubectl`) is a failure, not a skip.
"""

from __future__ import annotations

import copy
import json
import os
import pathlib
import shutil
import signal
import subprocess
import tempfile
import time

import jsonschema
import kubernetes_validate
import pytest
import yaml

import helmcli

ROOT = pathlib.Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "partnerkit"
EXAMPLES = ROOT / "examples"
KUBE_VERSION = "1.33.0"
NAMESPACE = "partnerkit-system"

# ---------------------------------------------------------------------------------------------
# helpers


def partnerkit_bin() -> pathlib.Path:
    """The partnerkit binary: $PARTNERKIT, else target/debug/partnerkit (built if missing)."""
    if os.environ.get("PARTNERKIT"):
        return pathlib.Path(os.environ["PARTNERKIT"])
    path = ROOT / "target" / "debug" / "partnerkit"
    if not path.exists():
        subprocess.run(["cargo", "build", "--quiet", "--bin", "partnerkit"], cwd=ROOT, check=True)
    return path


@pytest.fixture(scope="session")
def manifests_text() -> str:
    return subprocess.run([str(partnerkit_bin()), "manifests"], cwd=ROOT, check=True, capture_output=True, text=True).stdout


@pytest.fixture(scope="session")
def manifests(manifests_text) -> list[dict]:
    return [d for d in yaml.safe_load_all(manifests_text) if d]


@pytest.fixture(scope="session")
def chart():
    """The chart with the real helm binary; fails (no skip) when there is none."""
    try:
        binary, missing = helmcli.find_helm(), None
    except helmcli.HelmNotFound as e:
        binary, missing = None, str(e)
    if missing:
        pytest.fail(missing, pytrace=False)
    h = helmcli.Helm(binary, CHART, kube_version="v" + KUBE_VERSION)
    yield h
    h.close()


def render(chart, values: dict | None = None, name: str = "partnerkit") -> list[dict]:
    """`helm template`; every object, by template path (within one, in helm's kind order; NOTES.txt
    is not rendered)."""
    out = chart.render(values or {}, name=name, namespace=NAMESPACE, is_install=True)
    objects = []
    for path in sorted(out):
        if path.endswith("NOTES.txt"):
            continue
        objects.extend(d for d in yaml.safe_load_all(out[path]) if d)
    return objects


def notes(chart, values: dict | None = None) -> str:
    """The rendered NOTES.txt (`helm install --dry-run=client`: helm template leaves it out)."""
    return chart.notes(values or {}, name="partnerkit", namespace=NAMESPACE)


def one(objects: list[dict], kind: str, name: str | None = None) -> dict:
    found = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {[o['metadata']['name'] for o in found]}"
    return found[0]


def config_of(objects: list[dict]) -> dict:
    cm = one(objects, "ConfigMap")
    return yaml.safe_load(cm["data"]["config.yaml"])


def crd_schemas() -> dict[str, dict]:
    """kind -> openAPIV3Schema of the storage version, from crds/."""
    out = {}
    for f in sorted((ROOT / "crds").glob("*.yaml")):
        crd = yaml.safe_load(f.read_text())
        version = next(v for v in crd["spec"]["versions"] if v.get("storage"))
        out[crd["spec"]["names"]["kind"]] = version["schema"]["openAPIV3Schema"]
    return out


# The chart's values.schema.json: helm checks every install, upgrade, template and lint against
# it. Its `config` part is the operator's config file (src/config.rs; serde
# deny_unknown_fields everywhere) without `listen`, which the chart derives from `ports`: so the
# config file's schema is that part plus `listen`. One schema, not a copy here.
VALUES_SCHEMA = json.loads((CHART / "values.schema.json").read_text())


def config_file_schema() -> dict:
    """The operator's config file: values.schema.json's `config` (with its $defs) plus `listen`."""
    schema = copy.deepcopy(VALUES_SCHEMA["properties"]["config"])
    schema["$schema"] = VALUES_SCHEMA["$schema"]
    schema["$defs"] = VALUES_SCHEMA["$defs"]
    host_port = {"type": "string", "pattern": r"^([^:\s]+|\[[0-9A-Fa-f:.]+\]):[0-9]{1,5}$"}
    schema["properties"]["listen"] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {"metrics": host_port, "health": host_port, "web": host_port},
    }
    return schema


CONFIG_SCHEMA = config_file_schema()

def merge_values(base: dict, override: dict) -> dict:
    """Helm's merge of a values file over another: maps merge, the rest (lists too) is replaced;
    None is kept (Helm then drops the key)."""
    out = copy.deepcopy(base)
    for k, v in override.items():
        out[k] = merge_values(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


CUSTOM_VALUES = {
    "config": {
        "catalog": [
            {"name": "mail", "displayName": "Mail", "premium": False},
            {"name": "erp", "displayName": "ERP", "premium": True},
        ],
        "defaultBranding": {"logoUrl": "https://portal.example/logo.svg", "primaryColor": "#112233", "support": {"email": "help@portal.example", "url": None}},
        "namespacePrefixes": {"partner": "p-", "tenant": "t-"},
        "userPrefix": "oidc:",
        "invites": {
            "acceptUrl": "https://portal.example/invites",
            "smtp": {"host": "smtp.portal.example", "port": 465, "tls": "tls", "from": "portal@portal.example", "credentialsSecret": "smtp"},
        },
    },
    "ports": {"metrics": 9090, "health": 9091, "web": 9443},
    "image": {"repository": "registry.example/partnerkit", "tag": "1.2.3"},
    "logLevel": "partnerkit=debug,kube=info",
    "metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}}},
    "platformAdmins": [{"kind": "Group", "name": "platform-team"}, {"name": "oidc:support@portal.example"}],
}

# Every optional feature on: CUSTOM_VALUES plus the Ingress, the NetworkPolicy with peers, a
# percentage PodDisruptionBudget, leader-election settings and a client IP header.
MONITORING = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
INGRESS_NGINX = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}},
    "podSelector": {"matchLabels": {"app.kubernetes.io/name": "ingress-nginx"}},
}
ALL_ON = merge_values(CUSTOM_VALUES, {
    "config": {
        "invites": {"clientIpHeader": "X-Forwarded-For",
                    "smtp": {"attempts": 3, "retryBackoff": "10s", "timeout": "20s"}},
        "leaderElection": {"enabled": True, "leaseName": "partnerkit-portal", "leaseDuration": "20s", "renewBefore": "5s"},
    },
    "replicaCount": 3,
    "podDisruptionBudget": {"minAvailable": None, "maxUnavailable": "34%"},
    "web": {"ingress": {"enabled": True, "className": "nginx", "host": "portal.example", "tlsSecretName": "portal-tls"}},
    "networkPolicy": {
        "enabled": True,
        "metricsFrom": [MONITORING],
        "webFrom": [INGRESS_NGINX],
        "apiServer": {"ports": [6443], "to": [{"ipBlock": {"cidr": "10.0.0.10/32"}}]},
        "dns": {"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                        "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}]},
        "smtpTo": [{"ipBlock": {"cidr": "192.0.2.25/32"}}],
    },
    "imagePullSecrets": [{"name": "registry-credentials"}],
    "priorityClassName": "system-cluster-critical",
})


# ---------------------------------------------------------------------------------------------
# lint and render


def test_chart_lints_strict(chart):
    """Clean with the defaults, with custom values and with every optional feature on."""
    for values in ({}, CUSTOM_VALUES, ALL_ON):
        report = chart.lint(values, strict=True, namespace=NAMESPACE, kube_version="v" + KUBE_VERSION)
        assert report.returncode == 0 and not report.problems, report.output
    # and lint does catch mistakes (so a pass means something): values.schema.json names the
    # key; note that lint does not report a template's `fail` (Helm lints in lint mode, where
    # `fail`/`required` only log): those are test_bad_values_are_refused's
    report = chart.lint({"serviceAccount": {"name": "Bad_Name"}}, strict=True, namespace=NAMESPACE, kube_version="v" + KUBE_VERSION)
    assert report.returncode != 0, report.output
    assert any(sev == "ERROR" and "at '/serviceAccount/name'" in text for sev, text in report.messages), report.output
    # the NetworkPolicy with its defaults (no peers: every source, every destination)
    report = chart.lint({"networkPolicy": {"enabled": True}}, strict=True, namespace=NAMESPACE, kube_version="v" + KUBE_VERSION)
    assert report.returncode == 0 and not report.problems, report.output


def test_chart_metadata(chart):
    meta = chart.metadata
    assert meta["apiVersion"] == "v2"
    assert meta["name"] == "partnerkit"
    assert meta.get("kubeVersion"), "the ValidatingAdmissionPolicy needs Kubernetes >= 1.30: say so"
    # and helm holds a cluster to it
    with pytest.raises(helmcli.HelmError) as e:
        chart.render({}, namespace=NAMESPACE, kube_version="v1.29.0")
    assert f"chart requires kubeVersion: {meta['kubeVersion']} which is incompatible with Kubernetes v1.29.0" in e.value.stderr, e.value.stderr


def test_default_render_has_every_object(chart):
    objects = render(chart)
    kinds = sorted((o["kind"], o["metadata"]["name"]) for o in objects)
    assert kinds == sorted(
        [
            ("ClusterRole", "partnerkit-operator"),
            ("ClusterRoleBinding", "partnerkit-operator"),
            ("Role", "partnerkit-leader-election"),
            ("RoleBinding", "partnerkit-leader-election"),
            ("ServiceAccount", "partnerkit"),
            ("Deployment", "partnerkit"),
            ("PodDisruptionBudget", "partnerkit"),
            ("ConfigMap", "partnerkit-config"),
            ("Service", "partnerkit-metrics"),
            ("Service", "partnerkit-web"),
            ("ClusterRole", "partnerkit-invite-links"),
            ("ClusterRole", "partnerkit-platform-admin"),
            ("ClusterRole", "partnerkit-partner-admin"),
            ("ClusterRole", "partnerkit-tenant-admin"),
            ("ValidatingAdmissionPolicy", "partnerkit-partner-fields"),
            ("ValidatingAdmissionPolicyBinding", "partnerkit-partner-fields"),
            ("ValidatingAdmissionPolicy", "partnerkit-tenant-fields"),
            ("ValidatingAdmissionPolicyBinding", "partnerkit-tenant-fields"),
        ]
    )
    for o in objects:
        if o["kind"] in ("Deployment", "PodDisruptionBudget", "ConfigMap", "Service", "ServiceAccount", "Role", "RoleBinding"):
            assert o["metadata"]["namespace"] == NAMESPACE, o["metadata"]["name"]


def test_rendered_builtin_objects_are_valid_kubernetes(chart):
    """Strict schema validation of every built-in object (not the ServiceMonitor: a CRD)."""
    kinds = set()
    for values in ({}, CUSTOM_VALUES, ALL_ON):
        for o in render(chart, values):
            kinds.add(o["kind"])
            if o["apiVersion"].startswith("monitoring.coreos.com/"):
                continue
            kubernetes_validate.validate(o, KUBE_VERSION, strict=True)
    assert {"PodDisruptionBudget", "NetworkPolicy", "Ingress", "Deployment"} <= kinds
    # and the validator does catch mistakes (so a pass means something)
    bad = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}, "spec": {"ports": [{"port": "eighty"}]}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, KUBE_VERSION, strict=True)


def test_chart_crds_are_valid_crd_objects(chart):
    assert chart.crds, "charts/partnerkit/crds/ is empty"
    for crd in chart.crds:
        kubernetes_validate.validate(yaml.safe_load(crd["data"]), KUBE_VERSION, strict=True)
    # and they are what helm installs from crds/ (`helm template --include-crds`)
    rendered = chart.render({}, name="partnerkit", namespace=NAMESPACE, include_crds=True)
    shipped = {path.removeprefix("partnerkit/"): yaml.safe_load(text) for path, text in rendered.items() if "/crds/" in "/" + path}
    assert shipped == {c["name"]: yaml.safe_load(c["data"]) for c in chart.crds}


# ---------------------------------------------------------------------------------------------
# the same content as `partnerkit manifests`


def test_chart_crds_are_the_repository_crds_byte_for_byte():
    repo = {p.name: p.read_bytes() for p in (ROOT / "crds").glob("*.yaml")}
    chart = {p.name: p.read_bytes() for p in (CHART / "crds").glob("*.yaml")}
    assert repo, "crds/ is empty"
    assert chart == repo, "charts/partnerkit/crds/ differs from crds/: run scripts/sync-chart.sh"


def test_chart_ships_exactly_partnerkit_manifests(chart, manifests):
    crds = [m for m in manifests if m["kind"] == "CustomResourceDefinition"]
    others = [m for m in manifests if m["kind"] != "CustomResourceDefinition"]
    chart_crds = sorted((yaml.safe_load(c["data"]) for c in chart.crds), key=lambda c: c["metadata"]["name"])
    assert chart_crds == sorted(crds, key=lambda c: c["metadata"]["name"])
    rendered = render(chart)
    for m in others:
        got = one(rendered, m["kind"], m["metadata"]["name"])
        assert got == m, f"{m['kind']} {m['metadata']['name']} differs from `partnerkit manifests`: run scripts/sync-chart.sh"


def test_sync_script_reports_no_drift():
    env = dict(os.environ, PARTNERKIT=str(partnerkit_bin()))
    r = subprocess.run(["bash", "scripts/sync-chart.sh", "--check"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_user_roles_can_be_left_out(chart):
    objects = render(chart, {"userRoles": {"create": False}})
    names = {o["metadata"]["name"] for o in objects}
    assert not names & {"partnerkit-platform-admin", "partnerkit-partner-admin", "partnerkit-tenant-admin", "partnerkit-partner-fields"}
    assert "WARNING: userRoles.create is false" in notes(chart, {"userRoles": {"create": False}})


# ---------------------------------------------------------------------------------------------
# the operator: Deployment, config


def test_deployment_runs_the_operator_with_probes_and_a_locked_down_container(chart):
    objects = render(chart)
    dep = one(objects, "Deployment")
    pod = dep["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert c["args"] == ["run", "--config", "/etc/partnerkit/config.yaml"]
    assert c["image"] == "partnerkit/partnerkit:" + chart.metadata["appVersion"]
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"metrics": 8080, "health": 8081, "web": 8443}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    assert c["resources"]["requests"] and c["resources"]["limits"]["memory"]
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert pod["serviceAccountName"] == one(objects, "ServiceAccount")["metadata"]["name"]
    # the config ConfigMap is what is mounted at /etc/partnerkit
    vol = next(v for v in pod["volumes"] if v["name"] == "config")
    assert vol["configMap"]["name"] == one(objects, "ConfigMap")["metadata"]["name"]
    mount = next(m for m in c["volumeMounts"] if m["name"] == "config")
    assert mount["mountPath"] == "/etc/partnerkit" and mount["readOnly"] is True
    # the metrics Service selects this pod and targets its metrics port
    svc = one(objects, "Service", "partnerkit-metrics")
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert all(labels.get(k) == v for k, v in svc["spec"]["selector"].items())
    assert svc["spec"]["ports"][0]["targetPort"] == "metrics"


def test_default_config_is_the_documented_one(chart):
    cfg = config_of(render(chart))
    jsonschema.validate(cfg, CONFIG_SCHEMA)
    expected = copy.deepcopy(chart.values["config"])
    expected["listen"] = {"metrics": "0.0.0.0:8080", "health": "0.0.0.0:8081", "web": "0.0.0.0:8443"}
    assert cfg == expected
    assert [a["name"] for a in cfg["catalog"]] == ["mail", "calendar", "crm", "analytics"]


def test_custom_config_renders_as_given(chart):
    objects = render(chart, CUSTOM_VALUES)
    cfg = config_of(objects)
    jsonschema.validate(cfg, CONFIG_SCHEMA)
    expected = copy.deepcopy(CUSTOM_VALUES["config"])
    del expected["defaultBranding"]["support"]["url"]  # null removes a default in Helm
    expected["listen"] = {"metrics": "0.0.0.0:9090", "health": "0.0.0.0:9091", "web": "0.0.0.0:9443"}
    assert cfg == expected
    # the pod follows the ports, the image and the log level, and rolls when the config changes
    dep = one(objects, "Deployment")
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    assert {p["name"]: p["containerPort"] for p in c["ports"]} == {"metrics": 9090, "health": 9091, "web": 9443}
    assert c["image"] == "registry.example/partnerkit:1.2.3"
    assert {"name": "RUST_LOG", "value": "partnerkit=debug,kube=info"} in c["env"]
    default_sum = one(render(chart), "Deployment")["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
    assert dep["spec"]["template"]["metadata"]["annotations"]["checksum/config"] != default_sum
    # ServiceMonitor and platform admins
    sm = one(objects, "ServiceMonitor")
    assert sm["metadata"]["labels"]["release"] == "prometheus"
    assert sm["spec"]["endpoints"][0]["port"] == "metrics"
    crb = one(objects, "ClusterRoleBinding", "partnerkit-platform-admins")
    assert crb["roleRef"]["name"] == "partnerkit-platform-admin"
    assert crb["subjects"] == [
        {"kind": "Group", "name": "platform-team", "apiGroup": "rbac.authorization.k8s.io"},
        {"kind": "User", "name": "oidc:support@portal.example", "apiGroup": "rbac.authorization.k8s.io"},
    ]


def test_image_digest_wins(chart):
    dep = one(render(chart, {"image": {"digest": "sha256:" + "a" * 64}}), "Deployment")
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "partnerkit/partnerkit@sha256:" + "a" * 64


SCHEMA_ERROR = "values don't meet the specifications of the schema(s) in the following chart(s):\npartnerkit:\n"
SMTP = {"host": "smtp.example", "from": "portal@platform.example"}
WITH_SMTP = {"acceptUrl": "https://portal.example/invites", "smtp": SMTP}


@pytest.mark.parametrize(
    "values, message",
    [
        # the ones issue 9 names
        ({"replicaCount": 0}, "at '/replicaCount': minimum: got 0, want 1"),
        ({"image": {"pullPolicy": "Sometimes"}}, "at '/image/pullPolicy': value must be one of 'Always', 'IfNotPresent', 'Never'"),
        ({"config": {"invites": {**WITH_SMTP, "smtp": {**SMTP, "tls": "ssl"}}}}, "at '/config/invites/smtp/tls': value must be one of 'none', 'starttls', 'tls'"),
        ({"replicas": 3}, "at '': additional properties 'replicas' not allowed"),
        # types, ranges, patterns of the chart's own values
        ({"replicaCount": "2"}, "at '/replicaCount': got string, want integer"),
        ({"image": {"repository": "Registry.example/Partnerkit:1.0"}}, "at '/image/repository': "),
        ({"image": {"digest": "sha256:abc"}}, "at '/image/digest': "),
        ({"image": {"tag": "1.0 beta"}}, "at '/image/tag': "),
        ({"ports": {"web": 70000}}, "at '/ports/web': maximum: got 70,000, want 65,535"),
        ({"ports": {"metrics": 0}}, "at '/ports/metrics': minimum: got 0, want 1"),
        ({"ports": {"health": "8081"}}, "at '/ports/health': got string, want integer"),
        ({"logLevel": "verbose"}, "at '/logLevel': 'verbose' does not match pattern"),
        ({"logLevel": "INFO"}, "at '/logLevel': 'INFO' does not match pattern"),
        ({"resources": {"limits": {"memory": "lots"}}}, "at '/resources/limits/memory': 'lots' does not match pattern"),
        ({"resources": {"limit": {"memory": "1Gi"}}}, "at '/resources': additional properties 'limit' not allowed"),
        ({"probes": {"liveness": {"periodSeconds": 0}}}, "at '/probes/liveness/periodSeconds': minimum: got 0, want 1"),
        ({"updateStrategy": {"type": "BlueGreen"}}, "at '/updateStrategy/type': value must be one of 'RollingUpdate', 'Recreate'"),
        ({"podDisruptionBudget": {"minAvailable": "half"}}, "at '/podDisruptionBudget/minAvailable': 'half' does not match pattern"),
        ({"podDisruptionBudget": {"unhealthyPodEvictionPolicy": "Never"}}, "at '/podDisruptionBudget/unhealthyPodEvictionPolicy': value must be one of"),
        ({"topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "Sometimes"}]},
         "at '/topologySpreadConstraints/0/whenUnsatisfiable': value must be one of 'DoNotSchedule', 'ScheduleAnyway'"),
        ({"topologySpreadConstraints": [{"topologyKey": "zone"}]}, "at '/topologySpreadConstraints/0': missing properties 'maxSkew', 'whenUnsatisfiable'"),
        ({"networkPolicy": {"enabled": "yes"}}, "at '/networkPolicy/enabled': got string, want boolean"),
        ({"networkPolicy": {"apiServer": {"ports": []}}}, "at '/networkPolicy/apiServer/ports': minItems: got 0, want 1"),
        ({"networkPolicy": {"metricsFrom": [{"namespace": "monitoring"}]}}, "at '/networkPolicy/metricsFrom/0': additional properties 'namespace' not allowed"),
        ({"web": {"service": {"type": "Ingress"}}}, "at '/web/service/type': value must be one of 'ClusterIP', 'NodePort', 'LoadBalancer'"),
        ({"securityContext": {"capabilities": {"drop": "ALL"}}}, "at '/securityContext/capabilities/drop': got string, want array"),
        ({"platformAdmins": [{"kind": "Team", "name": "x"}]}, "at '/platformAdmins/0/kind': value must be one of 'User', 'Group', 'ServiceAccount'"),
        # config: the operator's config file
        ({"config": {"catalog": None}}, "at '/config': missing property 'catalog'"),
        ({"config": {"catalog": []}}, "at '/config/catalog': minItems: got 0, want 1"),
        ({"config": {"catalog": [{"name": "CRM"}]}}, "at '/config/catalog/0/name': 'CRM' does not match pattern"),
        ({"config": {"catalog": [{"name": "crm", "premum": True}]}}, "at '/config/catalog/0': additional properties 'premum' not allowed"),
        ({"config": {"listen": {"metrics": "0.0.0.0:1"}}}, "at '/config': additional properties 'listen' not allowed"),
        ({"config": {"colour": "red"}}, "at '/config': additional properties 'colour' not allowed"),
        ({"config": {"defaultBranding": {"primaryColor": "blue"}}}, "at '/config/defaultBranding/primaryColor': 'blue' does not match pattern"),
        ({"config": {"defaultBranding": {"logoUrl": "http://x.example/l.png"}}}, "at '/config/defaultBranding/logoUrl': "),
        ({"config": {"defaultBranding": {"support": {"url": None}}}}, "at '/config/defaultBranding/support': minProperties: got 0, want 1"),
        ({"config": {"namespacePrefixes": {"tenant": "tenant"}}}, "at '/config/namespacePrefixes/tenant': 'tenant' does not match pattern"),
        ({"config": {"namespacePrefixes": {"tenant": "tenants-of-the-platform-"}}}, "at '/config/namespacePrefixes/tenant': maxLength: got 24, want 13"),
        ({"config": {"userPrefix": "oidc: "}}, "at '/config/userPrefix': 'oidc: ' does not match pattern"),
        ({"config": {"invites": {"acceptUrl": "portal.example/invites"}}}, "at '/config/invites/acceptUrl': "),
        ({"config": {"invites": {"smtp": SMTP}}}, "at '/config/invites': properties 'acceptUrl' required, if 'smtp' exists"),
        ({"config": {"invites": {**WITH_SMTP, "smtp": {"host": "smtp.example"}}}}, "at '/config/invites/smtp': missing property 'from'"),
        ({"config": {"invites": {**WITH_SMTP, "smtp": {**SMTP, "from": "nobody"}}}}, "at '/config/invites/smtp/from': 'nobody' does not match pattern"),
        ({"config": {"invites": {**WITH_SMTP, "smtp": {**SMTP, "port": 0}}}}, "at '/config/invites/smtp/port': minimum: got 0, want 1"),
        ({"config": {"invites": {**WITH_SMTP, "smtp": {**SMTP, "attempts": 21}}}}, "at '/config/invites/smtp/attempts': maximum: got 21, want 20"),
        ({"config": {"invites": {**WITH_SMTP, "smtp": {**SMTP, "retryBackoff": "soon"}}}}, "at '/config/invites/smtp/retryBackoff': 'soon' does not match pattern"),
        ({"config": {"invites": {**WITH_SMTP, "smtp": {**SMTP, "timeout": "30"}}}}, "at '/config/invites/smtp/timeout': '30' does not match pattern"),
        ({"config": {"invites": {**WITH_SMTP, "smtp": {**SMTP, "credentialsSecret": "Bad_Name"}}}}, "at '/config/invites/smtp/credentialsSecret': 'Bad_Name' does not match pattern"),
        ({"config": {"invites": {"clientIpHeader": "X Forwarded"}}}, "at '/config/invites/clientIpHeader': 'X Forwarded' does not match pattern"),
        ({"config": {"leaderElection": {"leaseDuration": "1500ms"}}}, "at '/config/leaderElection/leaseDuration': '1500ms' does not match pattern"),
        ({"config": {"leaderElection": {"renewBefore": "5"}}}, "at '/config/leaderElection/renewBefore': '5' does not match pattern"),
        ({"config": {"leaderElection": {"leaseName": "My_Lease"}}}, "at '/config/leaderElection/leaseName': 'My_Lease' does not match pattern"),
        ({"config": {"leaderElection": {"lease": "x"}}}, "at '/config/leaderElection': additional properties 'lease' not allowed"),
        ({"config": {"apiServer": {"maxRequestsInFlight": 0}}}, "at '/config/apiServer/maxRequestsInFlight': minimum: got 0, want 1"),
        ({"config": {"apiServer": {"maxInFlight": 5}}}, "at '/config/apiServer': additional properties 'maxInFlight' not allowed"),
    ],
)
def test_bad_values_are_refused_by_the_schema(chart, values, message):
    """values.schema.json: `helm template` exits non-zero naming the key (its path) and the reason."""
    with pytest.raises(helmcli.HelmError) as e:
        render(chart, values)
    assert e.value.returncode != 0
    assert SCHEMA_ERROR in e.value.stderr, e.value.stderr
    assert f"- {message}" in e.value.stderr, e.value.stderr
    assert not e.value.stdout.strip(), "nothing is rendered from bad values"


def test_helm_install_refuses_bad_values_naming_the_key(chart):
    """`helm install` (client dry run: no cluster) and `helm lint` refuse them the same way."""
    bad = {"replicaCount": 0, "image": {"pullPolicy": "Sometimes"}, "config": {"invites": {**WITH_SMTP, "smtp": {**SMTP, "tls": "ssl"}}}, "replicas": 3}
    with pytest.raises(helmcli.HelmError) as e:
        notes(chart, bad)
    for message in (
        "at '/replicaCount': minimum: got 0, want 1",
        "at '/image/pullPolicy': value must be one of",
        "at '/config/invites/smtp/tls': value must be one of 'none', 'starttls', 'tls'",
        "at '': additional properties 'replicas' not allowed",
    ):
        assert message in e.value.stderr, e.value.stderr
    report = chart.lint(bad, strict=True, namespace=NAMESPACE, kube_version="v" + KUBE_VERSION)
    assert report.returncode != 0 and "at '/replicaCount': minimum: got 0, want 1" in report.output, report.output


def test_schema_allows_what_the_chart_and_the_operator_allow(chart):
    """Good values pass: the defaults, ALL_ON, `global` (what a parent chart passes), quantities as
    numbers, percentages, the operator's duration forms and log filters."""
    render(chart, ALL_ON)
    render(chart, {"global": {"imageRegistry": "registry.example"}})
    render(chart, {"resources": {"requests": {"cpu": 0.1, "memory": "100M"}, "limits": {"memory": "1Gi", "ephemeral-storage": "100Mi"}}})
    render(chart, {"podDisruptionBudget": {"minAvailable": "50%"}, "updateStrategy": {"rollingUpdate": {"maxSurge": "25%"}}})
    render(chart, {"config": {"leaderElection": {"leaseDuration": "1m30s", "renewBefore": "10s"}}})
    render(chart, {"config": {"invites": {**WITH_SMTP, "smtp": {**SMTP, "retryBackoff": "500ms", "timeout": "1m30s", "host": "192.0.2.25"}}}})
    for level in ("info", "partnerkit=debug,kube=info", "warn,partnerkit::invite=trace", "partnerkit[reconcile]=debug", "off"):
        render(chart, {"logLevel": level})


def test_the_schema_is_the_operators_config_file(chart):
    """values.schema.json's `config` (plus `listen`) accepts the example config and what the chart
    renders, and refuses what the operator refuses (each file checked by the operator too)."""
    example = yaml.safe_load((EXAMPLES / "00-config.yaml").read_text())
    jsonschema.validate(example, CONFIG_SCHEMA)
    bad = [
        {**example, "colour": "red"},
        {**example, "catalog": [{"name": "CRM"}]},
        {**example, "leaderElection": {"renewBefore": "1.5s"}},
        {**example, "invites": {"acceptUrl": "https://p.example/i", "smtp": {"host": "h.example", "from": "a@b.example", "tls": "ssl"}}},
        {**example, "listen": {"metric": "0.0.0.0:1"}},
    ]
    validator = jsonschema.Draft202012Validator(CONFIG_SCHEMA)
    for cfg in bad:
        assert list(validator.iter_errors(cfg)), cfg
    # the values schema itself refuses `listen` (the chart derives it)
    values_validator = jsonschema.Draft202012Validator(VALUES_SCHEMA)
    assert list(values_validator.iter_errors({"config": {**example}})), "config.listen must be refused in values"
    assert not list(values_validator.iter_errors(chart.values)), "values.yaml passes its own schema"
    # the operator agrees: it loads the good one (then finds no cluster) and refuses the bad ones
    good = {**example, "listen": {"metrics": "127.0.0.1:0", "health": "127.0.0.1:0", "web": "127.0.0.1:0"}}
    with tempfile.TemporaryDirectory() as d:
        for i, cfg in enumerate([good, *bad]):
            path = pathlib.Path(d) / f"config-{i}.yaml"
            path.write_text(yaml.safe_dump(cfg))
            env = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_")}
            env.update(KUBECONFIG=str(pathlib.Path(d) / "none"), RUST_LOG="info")
            r = subprocess.run([str(partnerkit_bin()), "run", "--config", str(path)], capture_output=True, text=True, timeout=30, env=env)
            assert r.returncode != 0, r.stderr
            if cfg is good:
                assert "configuration loaded" in r.stderr and "connecting to the cluster" in r.stderr, r.stderr
            else:
                assert f"configuration: config {path}: " in r.stderr, (cfg, r.stderr)


@pytest.mark.parametrize(
    "values, message",
    [
        ({"config": {"defaultBranding": {"support": {"email": "a@b.example"}}}}, "config.defaultBranding.support: exactly one of email or url"),
        ({"podDisruptionBudget": {"maxUnavailable": 1}}, "podDisruptionBudget: set exactly one of minAvailable or maxUnavailable"),
        ({"podDisruptionBudget": {"minAvailable": None}}, "podDisruptionBudget: set exactly one of minAvailable or maxUnavailable"),
        ({"config": {"leaderElection": {"enabled": False}}}, "config.leaderElection.enabled is false: set replicaCount to 1"),
    ],
)
def test_bad_values_are_refused_by_the_templates(chart, values, message):
    """What the schema cannot say well: `helm template` exits with the template's `fail` message."""
    with pytest.raises(helmcli.HelmError) as e:
        render(chart, values)
    assert e.value.returncode != 0
    # e.g. "Error: execution error at (partnerkit/templates/deployment.yaml:22:28): config.catalog is required: ..."
    assert "Error: execution error at (partnerkit/templates/" in e.value.stderr, e.value.stderr
    assert message in e.value.stderr, e.value.stderr
    assert not e.value.stdout.strip(), "nothing is rendered from bad values"


@pytest.mark.parametrize(
    "values, message",
    [
        ({"config": {"catalog": None}}, "config.catalog is required: the BizApps this platform offers"),
        ({"config": {"listen": {"metrics": "0.0.0.0:1"}}}, "do not set config.listen: the chart derives it from ports"),
    ],
)
def test_templates_still_refuse_without_the_schema(chart, values, message):
    """`--skip-schema-validation`: the templates' own guards remain."""
    with pytest.raises(helmcli.HelmError) as e:
        chart.render(values, namespace=NAMESPACE, skip_schema_validation=True)
    assert message in e.value.stderr, e.value.stderr


def test_release_name_is_used(chart):
    objects = render(chart, name="portal")
    assert one(objects, "Deployment")["metadata"]["name"] == "portal-partnerkit"
    crb = one(objects, "ClusterRoleBinding", "portal-partnerkit-operator")
    assert crb["subjects"] == [{"kind": "ServiceAccount", "name": "portal-partnerkit", "namespace": NAMESPACE}]


# ---------------------------------------------------------------------------------------------
# high availability: replicas, rolling update, PodDisruptionBudget, topology spread, probes


def pod_labels(objects: list[dict]) -> dict:
    return one(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]


def selects(selector: dict, labels: dict) -> bool:
    """A LabelSelector (matchLabels only, as the chart writes them) against a pod's labels."""
    assert set(selector) == {"matchLabels"}, selector
    return all(labels.get(k) == v for k, v in selector["matchLabels"].items())


def test_two_replicas_roll_one_at_a_time_keeping_one_running(chart):
    objects = render(chart)
    dep = one(objects, "Deployment")
    assert dep["spec"]["replicas"] == 2
    assert dep["spec"]["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}
    assert dep["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 30
    # leader election is on (the operator's default: the chart does not turn it off), and the
    # notes say where to see the leader
    assert config_of(objects).get("leaderElection", {}).get("enabled", True) is True
    # each replica's Lease identity is its pod name, the Lease is in the pod's namespace (the
    # operator reads both from the environment: src/controller/leader.rs)
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("valueFrom") for e in c["env"]}
    assert env["POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["POD_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert f"kubectl -n {NAMESPACE} get lease partnerkit" in notes(chart)
    # without leader election: one replica (two would both reconcile; the chart refuses that)
    single = {"replicaCount": 1, "config": {"leaderElection": {"enabled": False}}}
    assert one(render(chart, single), "Deployment")["spec"]["replicas"] == 1
    assert "get lease" not in notes(chart, single)


def test_pod_disruption_budget_keeps_one_replica(chart):
    objects = render(chart)
    pdb = one(objects, "PodDisruptionBudget")
    assert pdb["apiVersion"] == "policy/v1"
    assert pdb["metadata"]["namespace"] == NAMESPACE
    assert pdb["spec"]["minAvailable"] == 1 and "maxUnavailable" not in pdb["spec"]
    assert pdb["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
    assert selects(pdb["spec"]["selector"], pod_labels(objects))
    assert pdb["spec"]["selector"] == one(objects, "Deployment")["spec"]["selector"]
    # maxUnavailable instead (a percentage too)
    pdb = one(render(chart, {"podDisruptionBudget": {"minAvailable": None, "maxUnavailable": "50%"}}), "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == "50%" and "minAvailable" not in pdb["spec"]
    # none with one replica (it could never be evicted), nor when turned off
    for values in ({"replicaCount": 1}, {"podDisruptionBudget": {"enabled": False}}):
        assert not [o for o in render(chart, values) if o["kind"] == "PodDisruptionBudget"], values
    assert one(render(chart, {"replicaCount": 1}), "Deployment")["spec"]["replicas"] == 1


def test_replicas_spread_over_nodes_and_zones(chart):
    objects = render(chart)
    labels = pod_labels(objects)
    spread = one(objects, "Deployment")["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert [c["topologyKey"] for c in spread] == ["kubernetes.io/hostname", "topology.kubernetes.io/zone"]
    for c in spread:
        assert c["whenUnsatisfiable"] == "ScheduleAnyway" and c["maxSkew"] == 1
        assert selects(c["labelSelector"], labels)
        assert c["labelSelector"]["matchLabels"] == one(objects, "Deployment")["spec"]["selector"]["matchLabels"]
        assert c["matchLabelKeys"] == ["pod-template-hash"]
    # overridable: [] turns it off; an entry's own labelSelector is kept, a missing one filled in
    assert "topologySpreadConstraints" not in one(render(chart, {"topologySpreadConstraints": []}), "Deployment")["spec"]["template"]["spec"]
    own = {"maxSkew": 2, "topologyKey": "topology.kubernetes.io/region", "whenUnsatisfiable": "DoNotSchedule",
           "labelSelector": {"matchLabels": {"team": "platform"}}}
    spread = one(render(chart, {"topologySpreadConstraints": [own, {"maxSkew": 1, "topologyKey": "rack", "whenUnsatisfiable": "ScheduleAnyway"}]}),
                 "Deployment")["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert spread[0] == own
    assert spread[1]["topologyKey"] == "rack" and selects(spread[1]["labelSelector"], labels)


def test_probes_suit_a_standby(chart):
    """Liveness: /healthz, served from the start (before the API server, before the CRDs), so no
    startupProbe is needed. Readiness: /readyz, true on a synced standby too (it serves the page).
    Both on the health port the operator's config listens on."""
    objects = render(chart)
    (c,) = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    assert "startupProbe" not in c
    health_port = next(p["containerPort"] for p in c["ports"] if p["name"] == "health")
    assert config_of(objects)["listen"]["health"] == f"0.0.0.0:{health_port}"
    # readiness reacts faster than liveness, and liveness gives a slow start time
    assert c["readinessProbe"]["periodSeconds"] <= c["livenessProbe"]["periodSeconds"]
    live = c["livenessProbe"]
    assert live["initialDelaySeconds"] + live["periodSeconds"] * live["failureThreshold"] >= 30


def test_resources_request_the_typical_and_limit_memory_only(chart):
    """Measured (values.yaml says how): requests for a typical installation, a memory limit with
    headroom over the 10,000-tenant peak, no CPU limit."""
    (c,) = one(render(chart), "Deployment")["spec"]["template"]["spec"]["containers"]
    res = c["resources"]
    assert set(res) == {"requests", "limits"}
    assert set(res["requests"]) == {"cpu", "memory"}
    assert set(res["limits"]) == {"memory"}, "no CPU limit: throttling would slow a leader's catch-up and its probes"

    def mib(q: str) -> float:
        units = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024}
        return float(q[:-2]) * units[q[-2:]]

    # the README's 100,000-tenant peak (309 MiB, the image's build) with headroom
    assert mib(res["limits"]["memory"]) >= 1.25 * 309
    assert mib(res["requests"]["memory"]) < mib(res["limits"]["memory"])


# ---------------------------------------------------------------------------------------------
# security context


def test_every_security_setting_is_there(chart):
    pod = one(render(chart), "Deployment")["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    psc, sc = pod["securityContext"], c["securityContext"]
    assert psc["runAsNonRoot"] is True and sc["runAsNonRoot"] is True
    assert psc["runAsUser"] == 65532 and psc["runAsGroup"] == 65532, "the image's user (nonroot)"
    assert psc["seccompProfile"] == {"type": "RuntimeDefault"} and sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["privileged"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    # the read-only root needs nothing but the emptyDir /tmp and the config
    assert {m["mountPath"] for m in c["volumeMounts"]} == {"/etc/partnerkit", "/tmp"}


def restricted_violations(pod: dict) -> list[str]:
    """The checks of the "restricted" Pod Security Standard (kubernetes.io/docs/concepts/security/
    pod-security-standards), for a pod spec."""
    v = []
    psc = pod.get("securityContext", {})
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(key):
            v.append(key)
    allowed_volumes = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"}
    for vol in pod.get("volumes", []):
        if not set(vol) - {"name"} <= allowed_volumes:
            v.append(f"volume {vol['name']}")
    for c in pod.get("initContainers", []) + pod["containers"]:
        sc = c.get("securityContext", {})
        if sc.get("privileged"):
            v.append("privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            v.append("allowPrivilegeEscalation")
        if "ALL" not in sc.get("capabilities", {}).get("drop", []):
            v.append("capabilities.drop ALL")
        if set(sc.get("capabilities", {}).get("add", [])) - {"NET_BIND_SERVICE"}:
            v.append("capabilities.add")
        if not sc.get("runAsNonRoot", psc.get("runAsNonRoot")):
            v.append("runAsNonRoot")
        if sc.get("runAsUser", psc.get("runAsUser")) == 0:
            v.append("runAsUser 0")
        if sc.get("seccompProfile", psc.get("seccompProfile", {})).get("type") not in ("RuntimeDefault", "Localhost"):
            v.append("seccompProfile")
        if any(p.get("hostPort") for p in c.get("ports", [])):
            v.append("hostPort")
        if sc.get("procMount", "Default") != "Default":
            v.append("procMount")
    return v


def test_pod_meets_the_restricted_pod_security_standard(chart):
    for values in ({}, ALL_ON):
        pod = one(render(chart, values), "Deployment")["spec"]["template"]["spec"]
        assert restricted_violations(pod) == [], values
    # and the check does find a violation (so a pass means something)
    pod = one(render(chart, {"securityContext": {"allowPrivilegeEscalation": True}}), "Deployment")["spec"]["template"]["spec"]
    assert restricted_violations(pod) == ["allowPrivilegeEscalation"]


# ---------------------------------------------------------------------------------------------
# the NetworkPolicy


def ports_of(rule: dict) -> set[tuple[int, str]]:
    return {(p["port"], p["protocol"]) for p in rule["ports"]}


def test_no_network_policy_by_default(chart):
    assert not [o for o in render(chart) if o["kind"] == "NetworkPolicy"]


def test_network_policy_admits_the_three_ports_from_anywhere_by_default(chart):
    objects = render(chart, {"networkPolicy": {"enabled": True}})
    np = one(objects, "NetworkPolicy")
    assert np["apiVersion"] == "networking.k8s.io/v1" and np["metadata"]["namespace"] == NAMESPACE
    assert selects(np["spec"]["podSelector"], pod_labels(objects))
    assert np["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert [ports_of(r) for r in np["spec"]["ingress"]] == [{(8080, "TCP")}, {(8081, "TCP")}, {(8443, "TCP")}]
    assert not any("from" in r for r in np["spec"]["ingress"]), "no peers configured: any source"
    egress = np["spec"]["egress"]
    assert [ports_of(r) for r in egress] == [{(443, "TCP"), (6443, "TCP")}, {(53, "UDP"), (53, "TCP")}]
    assert not any("to" in r for r in egress)


def test_network_policy_with_peers_and_smtp(chart):
    objects = render(chart, ALL_ON)
    np = one(objects, "NetworkPolicy")
    ingress = {next(iter(ports_of(r)))[0]: r.get("from") for r in np["spec"]["ingress"]}
    # CUSTOM_VALUES' ports: metrics 9090, health 9091, web 9443
    assert ingress == {9090: [MONITORING], 9091: None, 9443: [INGRESS_NGINX]}
    api, dns, smtp = np["spec"]["egress"]
    assert ports_of(api) == {(6443, "TCP")} and api["to"] == [{"ipBlock": {"cidr": "10.0.0.10/32"}}]
    assert ports_of(dns) == {(53, "UDP"), (53, "TCP")} and dns["to"][0]["podSelector"] == {"matchLabels": {"k8s-app": "kube-dns"}}
    assert ports_of(smtp) == {(465, "TCP")} and smtp["to"] == [{"ipBlock": {"cidr": "192.0.2.25/32"}}]
    # the SMTP port defaults as the operator's does (587); extra rules are appended as given
    extra_in = {"ports": [{"port": 9999, "protocol": "TCP"}]}
    extra_out = {"ports": [{"port": 443, "protocol": "TCP"}], "to": [{"ipBlock": {"cidr": "203.0.113.0/24"}}]}
    np = one(render(chart, {"config": {"invites": WITH_SMTP}, "networkPolicy": {"enabled": True, "extraIngress": [extra_in], "extraEgress": [extra_out]}}), "NetworkPolicy")
    assert ports_of(np["spec"]["egress"][2]) == {(587, "TCP")}
    assert np["spec"]["egress"][-1] == extra_out and np["spec"]["ingress"][-1] == extra_in


def test_e2e_values_install_every_optional_builtin_object(chart):
    """scripts/test-real.sh installs the chart with values-e2e.yaml on a real API server: it must
    carry every optional built-in object, so that the server proves it accepts each."""
    values = yaml.safe_load((ROOT / "tests" / "chart" / "values-e2e.yaml").read_text())
    objects = render(chart, values)
    kinds = {o["kind"] for o in objects}
    assert {"PodDisruptionBudget", "NetworkPolicy", "Ingress", "Role"} <= kinds, kinds
    assert one(objects, "Role", "partnerkit-smtp-credentials")
    np = one(objects, "NetworkPolicy")
    assert all("from" in r for r in np["spec"]["ingress"] if ports_of(r) != {(8081, "TCP")})
    assert all("to" in r for r in np["spec"]["egress"]), "peers on every egress rule"
    assert "topologySpreadConstraints" in one(objects, "Deployment")["spec"]["template"]["spec"]
    report = chart.lint(values, strict=True, namespace=NAMESPACE, kube_version="v" + KUBE_VERSION)
    assert report.returncode == 0 and not report.problems, report.output


# ---------------------------------------------------------------------------------------------
# the operator's RBAC


def covers(rules: list[dict], group: str, resource: str, verb: str, name: str | None = None, namespaced: bool = False) -> bool:
    """Whether cluster-wide `rules` allow verb on group/resource (optionally one resourceName)."""
    for r in rules:
        if group not in r.get("apiGroups", []) and "*" not in r.get("apiGroups", []):
            continue
        if resource not in r.get("resources", []) and "*" not in r.get("resources", []):
            continue
        if verb not in r.get("verbs", []) and "*" not in r.get("verbs", []):
            continue
        names = r.get("resourceNames")
        if names and name not in names:
            continue
        return True
    return False


def per_partner_cluster_role(partner: str, namespaces: list[str]) -> list[dict]:
    """The rules of ClusterRole partnerkit:partner:<name> as DESIGN.md defines them."""
    return [
        {"apiGroups": ["partnerkit.io"], "resources": ["partners"], "resourceNames": [partner], "verbs": ["get", "watch", "patch"]},
        {"apiGroups": ["partnerkit.io"], "resources": ["partners/status"], "resourceNames": [partner], "verbs": ["get"]},
        {"apiGroups": [""], "resources": ["namespaces"], "resourceNames": namespaces, "verbs": ["get"]},
    ]


def test_operator_can_write_per_partner_cluster_roles_without_escalate(chart):
    """Kubernetes' escalation check: a role may be created (and bound) only by someone holding
    all its permissions. The operator holds every permission of partnerkit:partner:<name>."""
    role = one(render(chart), "ClusterRole", "partnerkit-operator")
    rules = role["rules"]
    for rule in per_partner_cluster_role("acme", ["partner-acme"]):
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    for name in rule["resourceNames"]:
                        assert covers(rules, group, resource, verb, name), (group, resource, verb, name)
    assert not any("escalate" in r["verbs"] or "*" in r["verbs"] for r in rules), "the operator must not hold escalate"
    assert not any("*" in r.get("resources", []) or "*" in r.get("apiGroups", []) for r in rules), "no wildcards"


def test_smtp_credentials_are_readable_by_name_only(chart):
    values = {"config": {"catalog": [{"name": "mail"}], "invites": {
        "acceptUrl": "https://portal.example/invites",
        "smtp": {"host": "smtp.example", "from": "p@example.com", "credentialsSecret": "partnerkit-smtp"}}}}
    role = one(render(chart, values), "Role", "partnerkit-smtp-credentials")
    assert role["rules"] == [{"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["partnerkit-smtp"], "verbs": ["get"]}]
    binding = one(render(chart, values), "RoleBinding", "partnerkit-smtp-credentials")
    assert binding["subjects"][0]["kind"] == "ServiceAccount"
    # Without credentials there is no such Role.
    assert not [d for d in render(chart) if d["metadata"]["name"] == "partnerkit-smtp-credentials"]


PORTAL = {"auth": "proxy", "proxy": {"trustedProxies": ["10.0.0.0/8"]}}


def test_portal_impersonates_users_and_the_listed_groups_only(chart):
    """The portal acts as the signed-in person: impersonate on users, and on exactly the groups of
    config.portal.impersonateGroups; never ServiceAccounts, uids or extras; none without portal."""
    values = {"config": {"catalog": [{"name": "mail"}], "portal": {**PORTAL, "impersonateGroups": ["support"]}}}
    objects = render(chart, values)
    role = one(objects, "ClusterRole", "partnerkit-portal-impersonate")
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"]},
        {"apiGroups": [""], "resources": ["groups"], "resourceNames": ["support"], "verbs": ["impersonate"]},
    ]
    binding = one(objects, "ClusterRoleBinding", "partnerkit-portal-impersonate")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "partnerkit", "namespace": NAMESPACE}]
    # Without impersonateGroups: users only.
    plain = {"config": {"catalog": [{"name": "mail"}], "portal": PORTAL}}
    role = one(render(chart, plain), "ClusterRole", "partnerkit-portal-impersonate")
    assert role["rules"] == [{"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"]}]
    # Without the portal, no impersonation at all.
    for o in render(chart):
        for r in o.get("rules", []) if o["kind"] in ("ClusterRole", "Role") else []:
            assert "impersonate" not in r["verbs"] or o["metadata"]["name"].startswith("partnerkit-platform-admin"), o["metadata"]["name"]
    assert not [o for o in render(chart) if "portal" in o["metadata"]["name"]]


def test_portal_session_key_is_shared_and_readable_by_name_only(chart):
    """Every replica needs the same session key: the chart generates a Secret unless one is named,
    puts its name into the config, and lets the operator read exactly that Secret."""
    objects = render(chart, {"config": {"catalog": [{"name": "mail"}], "portal": PORTAL}})
    secret = one(objects, "Secret", "partnerkit-portal-session")
    import base64
    assert len(base64.b64decode(secret["data"]["key"])) >= 32
    assert config_of(objects)["portal"]["sessionSecret"] == "partnerkit-portal-session"
    role = one(objects, "Role", "partnerkit-portal-session")
    assert role["rules"] == [{"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["partnerkit-portal-session"], "verbs": ["get"]}]
    # A Secret of one's own: named in the config and the Role, none generated.
    objects = render(chart, {"config": {"catalog": [{"name": "mail"}], "portal": {**PORTAL, "sessionSecret": "my-key"}}})
    assert not [o for o in objects if o["kind"] == "Secret"]
    assert config_of(objects)["portal"]["sessionSecret"] == "my-key"
    assert one(objects, "Role", "partnerkit-portal-session")["rules"][0]["resourceNames"] == ["my-key"]


def test_portal_refuses_demo(chart):
    with pytest.raises(helmcli.HelmError) as e:
        render(chart, {"config": {"catalog": [{"name": "mail"}], "portal": {"auth": "demo"}}})
    assert "config.portal.auth: demo lets anyone sign in as anyone and is only for a loopback address" in e.value.stderr, e.value.stderr


OIDC = {"issuerUrl": "https://id.example:8443/realms/p", "clientId": "partnerkit", "clientSecretSecret": "partnerkit-oidc"}


def test_portal_oidc_reads_its_client_secret_by_name_and_reaches_its_provider(chart):
    """auth: oidc: the config carries the oidc block; the operator may read exactly the session
    key's and the client secret's Secrets; the NetworkPolicy lets it reach the issuer's port."""
    values = {
        "config": {"catalog": [{"name": "mail"}], "invites": {"acceptUrl": "https://portal.example/invites"},
                   "portal": {"auth": "oidc", "oidc": OIDC}},
        "networkPolicy": {"enabled": True, "oidcTo": [{"ipBlock": {"cidr": "192.0.2.0/24"}}]},
    }
    objects = render(chart, values)
    assert config_of(objects)["portal"]["oidc"] == OIDC
    role = one(objects, "Role", "partnerkit-portal-session")
    assert role["rules"][0]["resourceNames"] == ["partnerkit-portal-session", "partnerkit-oidc"]
    egress = one(objects, "NetworkPolicy", "partnerkit")["spec"]["egress"]
    assert {"ports": [{"port": 8443, "protocol": "TCP"}], "to": [{"ipBlock": {"cidr": "192.0.2.0/24"}}]} in egress, egress
    # Default port 443; no such rule without auth: oidc.
    values["config"]["portal"]["oidc"] = {**OIDC, "issuerUrl": "https://id.example"}
    egress = one(render(chart, values), "NetworkPolicy", "partnerkit")["spec"]["egress"]
    assert any(r["ports"] == [{"port": 443, "protocol": "TCP"}] for r in egress), egress
    values["config"]["portal"] = {"auth": "proxy", "proxy": {"trustedProxies": ["10.0.0.0/8"]}, "oidc": OIDC}
    egress = one(render(chart, values), "NetworkPolicy", "partnerkit")["spec"]["egress"]
    assert not any(r["ports"] == [{"port": 8443, "protocol": "TCP"}] for r in egress), egress


@pytest.mark.parametrize("oidc, word", [
    (None, "oidc"),
    ({"clientId": "x"}, "issuerUrl"),
    ({**OIDC, "issuerUrl": "http://id.example"}, "issuerUrl"),
    ({**OIDC, "redirectUrl": "https://portal.example/callback"}, "redirectUrl"),
    ({**OIDC, "scopes": ["email"]}, "scopes"),
])
def test_portal_oidc_values_are_checked(chart, oidc, word):
    portal = {"auth": "oidc"} if oidc is None else {"auth": "oidc", "oidc": oidc}
    with pytest.raises(helmcli.HelmError) as e:
        render(chart, {"config": {"catalog": [{"name": "mail"}], "portal": portal}})
    assert SCHEMA_ERROR in e.value.stderr and word in e.value.stderr, e.value.stderr


def test_portal_proxy_needs_its_trusted_proxies(chart):
    with pytest.raises(helmcli.HelmError) as e:
        render(chart, {"config": {"catalog": [{"name": "mail"}], "portal": {"auth": "proxy"}}})
    assert SCHEMA_ERROR in e.value.stderr and "proxy" in e.value.stderr, e.value.stderr


def test_operator_binds_exactly_the_shared_admin_roles(chart, manifests):
    rules = one(render(chart), "ClusterRole", "partnerkit-operator")["rules"]
    bind = [r for r in rules if "bind" in r["verbs"]]
    assert bind == [
        {
            "apiGroups": ["rbac.authorization.k8s.io"],
            "resources": ["clusterroles"],
            "resourceNames": ["partnerkit-partner-admin", "partnerkit-tenant-admin", "partnerkit-invite-links"],
            "verbs": ["bind"],
        }
    ]
    # and it does not hold what partnerkit-tenant-admin grants (so bind is what it needs): that
    # role is Kubernetes' namespace `admin`, aggregated, plus partnerkit's own label
    tenant_admin = next(m for m in manifests if m["metadata"]["name"] == "partnerkit-tenant-admin")
    assert "rules" not in tenant_admin, "an aggregated role's rules are the controller's to write"
    assert tenant_admin["aggregationRule"]["clusterRoleSelectors"] == [
        {"matchLabels": {"rbac.authorization.k8s.io/aggregate-to-admin": "true"}},
        {"matchLabels": {"partnerkit.io/aggregate-to-tenant-admin": "true"}},
    ]
    assert not covers(rules, "apps", "deployments", "create")
    assert not covers(rules, "", "pods", "create")


def test_operator_has_what_it_manages(chart):
    rules = one(render(chart), "ClusterRole", "partnerkit-operator")["rules"]
    needs = [
        ("partnerkit.io", "partners", ["get", "list", "watch", "patch", "update", "manage"]),
        ("partnerkit.io", "partners/status", ["patch"]),
        ("partnerkit.io", "partners/finalizers", ["update"]),
        ("partnerkit.io", "tenants", ["get", "list", "watch", "create", "patch", "update"]),
        ("partnerkit.io", "tenants/status", ["patch"]),
        ("partnerkit.io", "tenants/finalizers", ["update"]),
        ("partnerkit.io", "partneradmininvites", ["get", "list", "watch", "patch", "update"]),
        ("partnerkit.io", "partneradmininvites/status", ["patch"]),
        ("partnerkit.io", "partnerassignments", ["get", "list", "watch"]),
        ("", "namespaces", ["get", "list", "watch", "create", "patch", "delete"]),
        ("", "configmaps", ["get", "list", "watch", "create", "patch", "delete"]),
        ("rbac.authorization.k8s.io", "rolebindings", ["get", "list", "watch", "create", "patch", "delete"]),
        ("rbac.authorization.k8s.io", "clusterroles", ["get", "list", "watch", "create", "patch", "delete"]),
        ("rbac.authorization.k8s.io", "clusterrolebindings", ["get", "list", "watch", "create", "patch", "delete"]),
        ("", "events", ["create", "patch"]),
        ("events.k8s.io", "events", ["create", "patch"]),
    ]
    for group, resource, verbs in needs:
        for verb in verbs:
            assert covers(rules, group, resource, verb), (group, resource, verb)
    # A PartnerAssignment is a platform admin's act: the operator only reads them.
    for verb in ("create", "update", "patch", "delete"):
        assert not covers(rules, "partnerkit.io", "partnerassignments", verb), verb
    lease_role = one(render(chart), "Role", "partnerkit-leader-election")
    assert covers(lease_role["rules"], "coordination.k8s.io", "leases", "update")


# ---------------------------------------------------------------------------------------------
# the examples


def example_objects() -> dict[str, list[dict]]:
    return {p.name: [d for d in yaml.safe_load_all(p.read_text()) if d] for p in sorted(EXAMPLES.glob("0[1-9]-*.yaml"))}


def merge_patch(target, patch):
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def test_example_config_is_a_valid_operator_config():
    cfg = yaml.safe_load((EXAMPLES / "00-config.yaml").read_text())
    jsonschema.validate(cfg, CONFIG_SCHEMA)
    assert {(a["name"], a["premium"]) for a in cfg["catalog"]} == {("mail", False), ("calendar", False), ("crm", True), ("analytics", True)}


def test_examples_are_valid_against_the_crds():
    schemas = crd_schemas()
    partners = {d["metadata"]["name"]: d for d in example_objects()["01-partners.yaml"]}
    seen = 0
    for name, docs in example_objects().items():
        for d in docs:
            assert d["apiVersion"] == "partnerkit.io/v1alpha1", name
            if "branding" in name:
                # a merge patch of spec.branding: valid once merged into the Partner it patches
                assert set(d["spec"]) == {"branding"}, f"{name} must touch spec.branding only"
                d = merge_patch(partners[d["metadata"]["name"]], d)
            jsonschema.validate(d, schemas[d["kind"]])
            seen += 1
    assert seen >= 8


def test_example_tenants_live_in_their_partners_namespaces():
    partners = {d["metadata"]["name"] for d in example_objects()["01-partners.yaml"]}
    tenants = [d for docs in example_objects().values() for d in docs if d["kind"] == "Tenant"]
    for t in tenants:
        assert t["metadata"]["namespace"].removeprefix("partner-") in partners, t["metadata"]
    globex = [t for t in tenants if t["metadata"]["name"] == "globex"]
    assert [t["metadata"]["namespace"] for t in globex] == ["partner-acme", "partner-initech"], "06 moves globex"


def kube_sim_bin() -> pathlib.Path:
    """The kube-sim binary: $KUBE_SIM, else target/{release,debug}/kube-sim (debug built if missing)."""
    if os.environ.get("KUBE_SIM"):
        return pathlib.Path(os.environ["KUBE_SIM"])
    for profile in ("release", "debug"):
        p = ROOT / "target" / profile / "kube-sim"
        if p.exists():
            return p
    subprocess.run(["cargo", "build", "-q", "-p", "kube-sim", "--bin", "kube-sim"], cwd=ROOT, check=True)
    path = ROOT / "target" / "debug" / "kube-sim"
    assert path.exists(), f"`cargo build -p kube-sim --bin kube-sim` made no {path}"
    return path


def kubectl_bin() -> str:
    """kubectl ($KUBECTL, default `kubectl` on PATH); a failure, not a skip, when there is none."""
    name = os.environ.get("KUBECTL", "kubectl")
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"kubectl not found (KUBECTL={name!r}): the kube-sim tests drive kube-sim with the real kubectl; install it or set KUBECTL", pytrace=False)
    return found


@pytest.fixture(scope="module")
def kubectl(manifests_text):
    """A fresh kube-sim with `partnerkit manifests` applied; yields kubectl(*args, stdin=, ok=)."""
    binary = kubectl_bin()
    sim_bin = kube_sim_bin()
    with tempfile.TemporaryDirectory() as work:
        kubeconfig = pathlib.Path(work) / "kubeconfig"
        sim = subprocess.Popen([str(sim_bin), "--listen", "127.0.0.1:0", "--kubeconfig", str(kubeconfig)], stderr=subprocess.DEVNULL)
        try:
            for _ in range(200):
                if kubeconfig.exists() and kubeconfig.stat().st_size:
                    break
                assert sim.poll() is None, f"{sim_bin} exited {sim.returncode} before writing its kubeconfig"
                time.sleep(0.05)
            else:
                pytest.fail(f"{sim_bin} wrote no kubeconfig within 10 s", pytrace=False)
            env = dict(os.environ, KUBECONFIG=str(kubeconfig))

            def k(*args, stdin=None, ok=True):
                r = subprocess.run([binary, *args], env=env, input=stdin, capture_output=True, text=True, timeout=60)
                if ok:
                    assert r.returncode == 0, f"kubectl {' '.join(args)}: {r.stderr}"
                return r

            k("apply", "-f", "-", stdin=manifests_text)
            yield k
        finally:
            sim.send_signal(signal.SIGTERM)
            sim.wait(timeout=10)


def test_examples_pass_server_side_dry_run_on_kube_sim(kubectl):
    """The CRDs' CEL rules too: the examples against a real API-server implementation."""
    kubectl("apply", "-f", str(EXAMPLES / "01-partners.yaml"))
    # what the operator would create: the partner namespaces
    kubectl("create", "namespace", "partner-acme")
    kubectl("create", "namespace", "partner-initech")
    for f in ("02-acme-template.yaml", "03-acme-tenants.yaml", "04-initech-tenants.yaml", "06-move-globex.yaml"):
        out = kubectl("apply", "--dry-run=server", "-f", str(EXAMPLES / f)).stdout
        assert "(server dry run)" in out
    for partner in ("acme", "initech"):
        kubectl("patch", "partner", partner, "--type", "merge", "--dry-run=server", "--patch-file", str(EXAMPLES / f"05-{partner}-branding.yaml"))
        # the branding patches are not whole objects: apply refuses them, as the files say
        assert kubectl("apply", "--dry-run=server", "-f", str(EXAMPLES / f"05-{partner}-branding.yaml"), ok=False).returncode != 0


def test_operator_service_account_may_do_its_work_on_kube_sim(kubectl, chart):
    """The chart's operator RBAC, applied to kube-sim, asked with `kubectl auth can-i --as` the SA."""
    rbac = [o for o in render(chart) if o["kind"] in ("ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")]
    kubectl("create", "namespace", NAMESPACE, ok=False)
    kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(rbac))
    sa = f"system:serviceaccount:{NAMESPACE}:partnerkit"

    def can(*args):
        return kubectl("auth", "can-i", *args, "--as", sa, ok=False).stdout.strip()

    assert can("manage", "partners.partnerkit.io/acme", "-A") == "yes"
    assert can("patch", "partners.partnerkit.io/acme", "-A") == "yes"
    assert can("create", "tenants.partnerkit.io", "-n", "partner-acme") == "yes"
    assert can("patch", "tenants.partnerkit.io", "--subresource=status", "-n", "partner-acme") == "yes"
    assert can("create", "namespaces", "-A") == "yes"
    assert can("create", "configmaps", "-n", "tenant-globex") == "yes"
    assert can("create", "clusterroles.rbac.authorization.k8s.io", "-A") == "yes"
    assert can("create", "rolebindings.rbac.authorization.k8s.io", "-n", "tenant-globex") == "yes"
    assert can("bind", "clusterroles.rbac.authorization.k8s.io/partnerkit-tenant-admin", "-A") == "yes"
    assert can("bind", "clusterroles.rbac.authorization.k8s.io/partnerkit-partner-admin", "-A") == "yes"
    assert can("bind", "clusterroles.rbac.authorization.k8s.io/partnerkit-invite-links", "-A") == "yes"
    assert can("bind", "clusterroles.rbac.authorization.k8s.io/cluster-admin", "-A") == "no"
    # Customers' Secrets in their workspaces are out of the operator's reach.
    assert can("get", "secrets", "-n", "tenant-globex") == "no"
    assert can("list", "secrets", "-A") == "no"
    assert can("escalate", "clusterroles.rbac.authorization.k8s.io", "-A") == "no"
    assert can("update", "leases.coordination.k8s.io", "-n", NAMESPACE) == "yes"
    assert can("update", "leases.coordination.k8s.io", "-n", "kube-system") == "no"
    assert can("create", "deployments.apps", "-n", "tenant-globex") == "no"


def test_the_acceptance_page_has_a_service_and_an_optional_ingress(chart):
    objects = render(chart)
    svc = one(objects, "Service", "partnerkit-web")
    assert svc["spec"]["ports"] == [{"name": "web", "port": 8443, "targetPort": "web", "protocol": "TCP"}]
    assert not [o for o in objects if o["kind"] == "Ingress"]
    ing = one(render(chart, {"web": {"ingress": {"enabled": True, "host": "portal.example", "path": "/invites",
                                                  "tlsSecretName": "portal-tls", "className": "nginx"}}}), "Ingress")
    rule = ing["spec"]["rules"][0]
    assert rule["host"] == "portal.example"
    assert rule["http"]["paths"][0]["path"] == "/invites"
    assert rule["http"]["paths"][0]["backend"]["service"] == {"name": "partnerkit-web", "port": {"name": "web"}}
    assert ing["spec"]["tls"] == [{"hosts": ["portal.example"], "secretName": "portal-tls"}]
    assert ing["spec"]["ingressClassName"] == "nginx"


def test_the_operator_knows_its_service_account(chart):
    dep = one(render(chart), "Deployment")
    env = {e["name"]: e for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["PARTNERKIT_SERVICE_ACCOUNT"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.serviceAccountName"
    assert env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
