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


# The operator's config file keys (src/config.rs; serde deny_unknown_fields everywhere).
_SUPPORT = {"type": "object", "additionalProperties": False, "properties": {"email": {"type": "string"}, "url": {"type": "string"}}}
CONFIG_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["catalog"],
    "properties": {
        "catalog": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name"],
                "properties": {
                    "name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
                    "displayName": {"type": "string"},
                    "premium": {"type": "boolean"},
                },
            },
        },
        "defaultBranding": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"logoUrl": {"type": "string"}, "primaryColor": {"type": "string", "pattern": "^#[0-9a-fA-F]{6}$"}, "support": _SUPPORT},
        },
        "namespacePrefixes": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"partner": {"type": "string"}, "tenant": {"type": "string"}},
        },
        "userPrefix": {"type": "string"},
        "leaderElection": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "enabled": {"type": "boolean"},
                "leaseName": {"type": "string"},
                "leaseDuration": {"type": "string", "pattern": "^[0-9]+s$"},
                "renewBefore": {"type": "string", "pattern": "^[0-9]+s$"},
            },
        },
        "invites": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "acceptUrl": {"type": "string"},
                "smtp": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["host", "from"],
                    "properties": {
                        "host": {"type": "string"},
                        "port": {"type": "integer", "minimum": 1, "maximum": 65535},
                        "tls": {"enum": ["none", "starttls", "tls"]},
                        "from": {"type": "string"},
                        "credentialsSecret": {"type": "string"},
                    },
                },
            },
        },
        "listen": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"metrics": {"type": "string"}, "health": {"type": "string"}, "web": {"type": "string"}},
        },
    },
}

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


# ---------------------------------------------------------------------------------------------
# lint and render


def test_chart_lints_strict(chart):
    for values in ({}, CUSTOM_VALUES):
        report = chart.lint(values, strict=True, namespace=NAMESPACE, kube_version="v" + KUBE_VERSION)
        assert report.returncode == 0 and not report.problems, report.output
    # and lint does catch mistakes (so a pass means something); note that it does not report a
    # template's `fail` (Helm lints in lint mode, where `fail`/`required` only log): those are
    # test_bad_values_are_refused's
    report = chart.lint({"serviceAccount": {"name": "Bad_Name"}}, strict=True, namespace=NAMESPACE, kube_version="v" + KUBE_VERSION)
    assert report.returncode != 0, report.output
    assert any(sev == "WARNING" and "templates/serviceaccount.yaml" in text and '"Bad_Name"' in text for sev, text in report.messages), report.output


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
        if o["kind"] in ("Deployment", "ConfigMap", "Service", "ServiceAccount", "Role", "RoleBinding"):
            assert o["metadata"]["namespace"] == NAMESPACE, o["metadata"]["name"]


def test_rendered_builtin_objects_are_valid_kubernetes(chart):
    """Strict schema validation of every built-in object (not the ServiceMonitor: a CRD)."""
    for values in ({}, CUSTOM_VALUES):
        for o in render(chart, values):
            if o["apiVersion"].startswith("monitoring.coreos.com/"):
                continue
            kubernetes_validate.validate(o, KUBE_VERSION, strict=True)
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


@pytest.mark.parametrize(
    "values, message",
    [
        ({"config": {"catalog": None}}, "config.catalog is required: the BizApps this platform offers"),
        ({"config": {"listen": {"metrics": "0.0.0.0:1"}}}, "do not set config.listen: the chart derives it from ports"),
        ({"config": {"defaultBranding": {"support": {"email": "a@b.example"}}}}, "config.defaultBranding.support: exactly one of email or url"),
    ],
)
def test_bad_values_are_refused(chart, values, message):
    """`helm template` exits non-zero with the template's `fail` message: the key and the reason."""
    with pytest.raises(helmcli.HelmError) as e:
        render(chart, values)
    assert e.value.returncode != 0
    # e.g. "Error: execution error at (partnerkit/templates/deployment.yaml:22:28): config.catalog is required: ..."
    assert "Error: execution error at (partnerkit/templates/" in e.value.stderr, e.value.stderr
    assert message in e.value.stderr, e.value.stderr
    assert not e.value.stdout.strip(), "nothing is rendered from bad values"


def test_release_name_is_used(chart):
    objects = render(chart, name="portal")
    assert one(objects, "Deployment")["metadata"]["name"] == "portal-partnerkit"
    crb = one(objects, "ClusterRoleBinding", "portal-partnerkit-operator")
    assert crb["subjects"] == [{"kind": "ServiceAccount", "name": "portal-partnerkit", "namespace": NAMESPACE}]


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
    for rule in per_partner_cluster_role("acme", ["partner-acme", "tenant-globex"]):
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
