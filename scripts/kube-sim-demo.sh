#!/usr/bin/env bash
# The demo: kube-sim, the embedded API server, driven by the real kubectl the way users drive a cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
EX=kube-sim/examples/demo
WORK=$(mktemp -d)
export KUBECONFIG=$WORK/kubeconfig
SIM_PID=
cleanup() {
  if [ -n "$SIM_PID" ] && kill -0 "$SIM_PID" 2>/dev/null; then kill "$SIM_PID"; wait "$SIM_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }
fails() { printf '$ %s\n' "$*"; if "$@"; then echo "(expected a refusal)" >&2; exit 1; fi; }

say "Start kube-sim on a free port; it writes its kubeconfig once it listens"
target/release/kube-sim --listen 127.0.0.1:0 --kubeconfig "$KUBECONFIG" 2>"$WORK/kube-sim.log" &
SIM_PID=$!
for _ in $(seq 100); do [ -s "$KUBECONFIG" ] && break; sleep 0.05; done
[ -s "$KUBECONFIG" ] || { cat "$WORK/kube-sim.log"; exit 1; }
run kubectl version
run kubectl get namespaces

say "A CustomResourceDefinition comes alive: Established, served, explainable"
run kubectl apply -f $EX/widgets-crd.yaml
run kubectl wait --for=condition=Established crd/widgets.demo.kube-sim.io --timeout=10s
run kubectl explain widgets.spec.size
run kubectl create namespace demo
run kubectl apply -f $EX/widgets.yaml
run kubectl get widgets -n demo --show-labels

say "Bad input is refused at apply time, naming the field"
fails kubectl -n demo patch widget red --type merge -p '{"spec":{"color":"red","size":11}}'
fails kubectl -n demo patch widget red --type merge -p '{"spec":{"owner":"mallory"}}'

say "Status subresource, conditions and kubectl wait"
run kubectl -n demo patch widget red --subresource=status --type merge -p '{"status":{"conditions":[{"type":"Ready","status":"True"}]}}'
run kubectl -n demo wait --for=condition=Ready widget/red --timeout=10s
run kubectl -n demo get wg -l tier=front

say "Server-side apply: field ownership, conflicts, force"
cat > "$WORK/green.yaml" <<'YAML'
apiVersion: demo.kube-sim.io/v1
kind: Widget
metadata: {name: green, namespace: demo}
spec: {color: "#00ff00", size: 5}
YAML
run kubectl apply --server-side --field-manager=team-a -f "$WORK/green.yaml"
sed -i 's/size: 5/size: 9/' "$WORK/green.yaml"
fails kubectl apply --server-side --field-manager=team-b -f "$WORK/green.yaml"
run kubectl apply --server-side --field-manager=team-b --force-conflicts -f "$WORK/green.yaml"
run kubectl -n demo get widget green -o jsonpath='{range .metadata.managedFields[*]}{.manager}{"\t"}{.operation}{"\t"}{.fieldsV1}{"\n"}{end}'

say "RBAC: alice may edit widgets in demo, and nothing else"
run kubectl apply -f $EX/alice-rbac.yaml
run kubectl auth can-i patch widgets -n demo --as alice@example.com
run kubectl auth can-i delete widgets -n demo --as alice@example.com || true
run kubectl -n demo get widgets --as alice@example.com
fails kubectl get widgets -n default --as alice@example.com

say "Watch: kubectl get -w sees a change as it happens"
kubectl -n demo get widgets -w --output-watch-events > "$WORK/watch.txt" 2>&1 &
WATCH=$!
sleep 1
run kubectl -n demo label widget blue seen=yes
sleep 1
kill $WATCH 2>/dev/null || true
cat "$WORK/watch.txt"

say "Garbage collection: dependents go with their owner"
BLUE_UID=$(kubectl -n demo get widget blue -o jsonpath='{.metadata.uid}')
kubectl -n demo create -f - <<YAML
apiVersion: v1
kind: ConfigMap
metadata:
  name: blue-settings
  ownerReferences: [{apiVersion: demo.kube-sim.io/v1, kind: Widget, name: blue, uid: $BLUE_UID}]
data: {shade: navy}
YAML
run kubectl -n demo delete widget blue
run kubectl -n demo wait --for=delete configmap/blue-settings --timeout=10s

say "Deleting a namespace empties it through Terminating"
run kubectl delete namespace demo --timeout=20s
run kubectl get namespaces

say "What the API server was asked (kube-sim's request counters)"
kubectl get --raw /kube-sim/metrics | python3 -c 'import json,sys; m=json.load(sys.stdin); print("requests:", m["total"], " writes:", m["writes"]); print("by verb:", m["byVerb"])'

say "Stop kube-sim (SIGTERM) and check it exits cleanly"
kill -TERM "$SIM_PID"
wait "$SIM_PID"
echo "kube-sim exited with status $?"
SIM_PID=
