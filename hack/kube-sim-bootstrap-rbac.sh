#!/usr/bin/env bash
# Writes kube-sim/src/bootstrap_rbac.json: the RBAC objects a real kube-apiserver creates at
# start (label kubernetes.io/bootstrapping=rbac-defaults: cluster-admin, admin/edit/view and
# their system:aggregate-to-* parts, system:discovery, system:basic-user, the controllers'
# roles, ...), read from the real control plane of $KUBECONFIG (default: a fresh one from
# scripts/real-cluster). kube-sim seeds exactly these, so `kubectl auth can-i` and the RBAC
# escalation checks answer as on a real cluster. The fidelity test
# bootstrap_rbac_is_the_real_servers fails when the file and the real server drift apart.
set -euo pipefail
cd "$(dirname "$0")/.."
out=kube-sim/src/bootstrap_rbac.json
pid=""
if [ -z "${KUBECONFIG:-}" ]; then
  dir="$(mktemp -d)"
  export KUBECONFIG="$dir/kubeconfig"
  scripts/real-cluster --kubeconfig "$KUBECONFIG" &
  pid=$!
  trap 'kill -TERM $pid; wait $pid; rm -rf "$dir"' EXIT
  until [ -s "$KUBECONFIG" ]; do kill -0 $pid; sleep 0.2; done
fi
kubectl get clusterroles,clusterrolebindings,roles,rolebindings -A \
  -l kubernetes.io/bootstrapping=rbac-defaults -o json | python3 -c '
import json, sys
items = json.load(sys.stdin)["items"]
order = {"ClusterRole": 0, "ClusterRoleBinding": 1, "Role": 2, "RoleBinding": 3}
out = []
for o in sorted(items, key=lambda o: (order[o["kind"]], o["metadata"].get("namespace", ""), o["metadata"]["name"])):
    m = o["metadata"]
    meta = {k: m[k] for k in ("name", "namespace", "labels", "annotations") if k in m}
    o["metadata"] = meta
    if o.get("aggregationRule"):
        o["rules"] = []  # filled by the aggregation, as the controller does
    out.append(o)
version = sys.argv[1]
json.dump({"kubernetesVersion": version, "items": out}, sys.stdout, indent=1, sort_keys=True)
print()
' "$(kubectl version -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["serverVersion"]["gitVersion"])')" > "$out.tmp"
mv "$out.tmp" "$out"
echo "wrote $out ($(grep -c '"kind"' "$out") objects)"
