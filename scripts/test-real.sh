#!/usr/bin/env bash
# `make test-real`: every backend-independent suite against a real Kubernetes control plane.
#
# With KUBECONFIG set, that cluster is used (it needs nothing but RBAC and the usual
# controllers; each test names what it creates with a random suffix and removes it). Without,
# scripts/real-cluster starts etcd, kube-apiserver and kube-controller-manager on loopback for
# the run and stops them afterwards; its logs are kept in target/real-cluster/logs.
#
# Runs, in order: kube-sim's fidelity suite (all but fidelity_sim_only) and the launcher's own
# tests (real_cluster); then the Helm chart, installed for real with the real helm (`helm lint
# --strict`, `helm template`, `helm upgrade --install`: every object must be accepted), and a
# token of its ServiceAccount (`kubectl create token`); then the operator's rules scenarios
# (rules_*, and the portal's tests/portal.rs and tests/portal_auth.rs, one at a time: each test's operator reconciles the whole cluster), every one with
# the operator running as that ServiceAccount, i.e. with exactly the chart's rights.
set -euo pipefail
cd "$(dirname "$0")/.."
NEXTEST="${NEXTEST:-target/tools/bin/cargo-nextest}"
HELM="${HELM:-$PWD/target/kube-bins/current/helm}"
CHART_NAMESPACE=partnerkit-system
CHART_RELEASE=partnerkit

cluster_pid=""
stop_cluster() {
  if [ -n "$cluster_pid" ] && kill -0 "$cluster_pid" 2>/dev/null; then
    kill -TERM "$cluster_pid"
    wait "$cluster_pid" || true
  fi
}
trap stop_cluster EXIT

if [ -z "${KUBECONFIG:-}" ]; then
  dir=target/real-cluster
  rm -rf "$dir"
  mkdir -p "$dir"
  export KUBECONFIG="$PWD/$dir/kubeconfig"
  echo "== starting a real control plane (scripts/real-cluster)"
  start=$SECONDS
  scripts/real-cluster --kubeconfig "$KUBECONFIG" --log-dir "$dir/logs" &
  cluster_pid=$!
  until [ -s "$KUBECONFIG" ]; do
    kill -0 "$cluster_pid" 2>/dev/null || { echo "scripts/real-cluster failed" >&2; exit 1; }
    [ $((SECONDS - start)) -lt 300 ] || { echo "scripts/real-cluster not ready after 300 s" >&2; exit 1; }
    sleep 0.2
  done
  echo "== ready in $((SECONDS - start)) s"
fi
kubectl version 2>/dev/null

# The chart, for real: lint, render, install; every rendered object must exist afterwards (the
# Deployment too: it is accepted, though no kubelet runs it). Then a token of the operator's
# ServiceAccount, for the rules scenarios.
install_chart() {
  local dir=target/real-cluster/chart
  mkdir -p "$dir"
  "$HELM" lint --strict charts/partnerkit
  "$HELM" lint --strict charts/partnerkit --values tests/chart/values-e2e.yaml
  "$HELM" template "$CHART_RELEASE" charts/partnerkit --namespace "$CHART_NAMESPACE" \
    --values tests/chart/values-e2e.yaml > "$dir/rendered.yaml"
  # --take-ownership --force-conflicts: a cluster that earlier runs gave `partnerkit manifests`.
  "$HELM" upgrade --install "$CHART_RELEASE" charts/partnerkit --namespace "$CHART_NAMESPACE" \
    --create-namespace --take-ownership --force-conflicts --values tests/chart/values-e2e.yaml
  kubectl get -f "$dir/rendered.yaml" -o name > "$dir/installed.txt"
  echo "every rendered object is in the cluster: $(wc -l < "$dir/installed.txt") objects"
  local sa token server ca
  sa="$(kubectl get -f "$dir/rendered.yaml" -o jsonpath='{range .items[?(@.kind=="Deployment")]}{.spec.template.spec.serviceAccountName}{end}')"
  token="$(kubectl create token "$sa" --namespace "$CHART_NAMESPACE" --duration 6h)"
  server="$(kubectl config view --raw --minify -o jsonpath='{.clusters[0].cluster.server}')"
  ca="$(kubectl config view --raw --minify -o jsonpath='{.clusters[0].cluster.certificate-authority-data}')"
  cat > "$dir/operator.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: cluster
  cluster: {server: "$server", certificate-authority-data: "$ca"}
users:
- name: $sa
  user: {token: "$token"}
contexts:
- name: operator
  context: {cluster: cluster, user: $sa, namespace: $CHART_NAMESPACE}
current-context: operator
EOF
  export PARTNERKIT_E2E_OPERATOR_KUBECONFIG="$PWD/$dir/operator.kubeconfig"
  export PARTNERKIT_E2E_OPERATOR_ACCOUNT="$CHART_NAMESPACE/$sa"
  echo "the operator runs as system:serviceaccount:$CHART_NAMESPACE:$sa"
}

status=0
run() {
  echo "== $1"
  shift
  "$@" || status=1
}
run "kube-sim's fidelity suite on the real control plane" \
  env FIDELITY_REAL=1 "$NEXTEST" nextest run -p kube-sim --no-fail-fast \
  -E 'kind(test) and not binary(fidelity_sim_only)'
echo "== the Helm chart installed with the real helm"
install_chart
run "the operator's rules scenarios on the real control plane, as the chart's ServiceAccount" \
  env PARTNERKIT_E2E_REAL=1 "$NEXTEST" nextest run -p partnerkit --no-fail-fast --test-threads 1 \
  -E '(binary(/^rules_/) and not binary(rules_sim_only)) or binary(portal) or binary(portal_auth)'
exit $status
