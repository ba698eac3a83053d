#!/usr/bin/env bash
# The partnerkit demo: the examples/ walk-through, step by step, against kube-sim (the embedded
# API server) with the real operator and the real kubectl — as a platform admin and as partner
# admins (kubectl --as <e-mail>).
#
#   scripts/partnerkit-demo.sh            # builds the release binaries if missing
#   BACKEND=real scripts/partnerkit-demo.sh   # on a real control plane (scripts/real-cluster:
#                                         # etcd, kube-apiserver, kube-controller-manager; make demo-real)
#   KUBE_SIM=... PARTNERKIT=... scripts/partnerkit-demo.sh    # other binaries
#   KEEP=1 scripts/partnerkit-demo.sh     # keep the work directory (logs, kubeconfig)
#   PAUSE=1 scripts/partnerkit-demo.sh    # keep everything running at the end (the portal in a browser)
set -euo pipefail
cd "$(dirname "$0")/.."
EX=examples
KUBE_SIM=${KUBE_SIM:-target/release/kube-sim}
PARTNERKIT=${PARTNERKIT:-target/release/partnerkit}
if [ ! -x "$KUBE_SIM" ] || [ ! -x "$PARTNERKIT" ]; then
  cargo build --release -p kube-sim -p partnerkit --bins
fi

WORK=$(mktemp -d)
export KUBECONFIG=$WORK/kubeconfig
SIM_PID=
OP_PID=
SMTP_PID=
stop() { # stop PID: SIGTERM, wait, report how it ended
  local pid=$1 what=$2
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    local status=0
    wait "$pid" 2>/dev/null || status=$?
    echo "$what stopped (exit status $status)"
  fi
}
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if [ "$status" -ne 0 ]; then
    echo >&2
    echo "demo failed (exit $status); last lines of the operator's log:" >&2
    tail -n 30 "$WORK/operator.log" 2>/dev/null >&2 || true
  fi
  stop "$OP_PID" "partnerkit"
  stop "$SIM_PID" "${API_SERVER:-kube-sim}"
  stop "$SMTP_PID" "the SMTP server"
  if [ -n "${KEEP:-}" ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
note() { printf '\033[2m# %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }
# `kubectl auth can-i` exits 1 for "no": show the answer, never stop the demo for it.
can_i() { printf '$ kubectl auth can-i %s\n' "$*"; kubectl auth can-i "$@" 2>/dev/null || true; }
fails() { # a command that must be refused: show the refusal
  printf '$ %s\n' "$*"
  if "$@"; then echo "(expected a refusal)" >&2; exit 1; fi
}
# Wait until `kubectl get ARGS` finds the object (kubectl wait needs it to exist).
wait_exists() {
  for _ in $(seq 200); do kubectl get "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "timed out waiting for: kubectl get $*" >&2
  return 1
}
ALICE=alice@acme.example   # acme's admins: alice, carol
CAROL=carol@acme.example
PETER=peter@initech.example # initech's admin

if [ "${BACKEND:-kube-sim}" = real ]; then
  API_SERVER="the real control plane"
  say "Start a real control plane (etcd, kube-apiserver, kube-controller-manager) on loopback"
  note "scripts/real-cluster writes its kubeconfig once /readyz is ok and namespace default exists"
  scripts/real-cluster --kubeconfig "$KUBECONFIG" 2>"$WORK/api-server.log" &
  SIM_PID=$!
  for _ in $(seq 1800); do [ -s "$KUBECONFIG" ] && break; kill -0 "$SIM_PID" 2>/dev/null || break; sleep 0.1; done
else
  API_SERVER="kube-sim"
  say "Start kube-sim on a free port; it writes its kubeconfig once it listens"
  "$KUBE_SIM" --listen 127.0.0.1:0 --kubeconfig "$KUBECONFIG" 2>"$WORK/api-server.log" &
  SIM_PID=$!
  for _ in $(seq 200); do [ -s "$KUBECONFIG" ] && break; sleep 0.05; done
fi
[ -s "$KUBECONFIG" ] || { cat "$WORK/api-server.log"; exit 1; }
run kubectl version 2>/dev/null

say "Install partnerkit's cluster objects: CRDs, ClusterRoles, admission policy"
note "partnerkit manifests | kubectl apply -f -   (the Helm chart ships the same objects)"
"$PARTNERKIT" manifests | kubectl apply -f -
run kubectl get crds
run kubectl get clusterroles partnerkit-platform-admin partnerkit-partner-admin partnerkit-tenant-admin

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
WEB_PORT=$(free_port)
SMTP_PORT=$(free_port)

say "Start a local SMTP server for the invitation e-mails (aiosmtpd, messages into a Maildir)"
mkdir -p "$WORK/maildir/new" "$WORK/maildir/tmp" "$WORK/maildir/cur"
printf '$ %s\n' "/usr/bin/python3 -m aiosmtpd -n -l 127.0.0.1:$SMTP_PORT -c aiosmtpd.handlers.Mailbox $WORK/maildir &"
/usr/bin/python3 -m aiosmtpd -n -l "127.0.0.1:$SMTP_PORT" -c aiosmtpd.handlers.Mailbox "$WORK/maildir" 2>"$WORK/smtp.log" &
SMTP_PID=$!

say "Start the operator with examples/00-config.yaml (listening on free loopback ports)"
sed -E -e 's/"0\.0\.0\.0:[0-9]+"/"127.0.0.1:0"/' \
  -e "s|web: \"127.0.0.1:0\"|web: \"127.0.0.1:$WEB_PORT\"|" \
  -e "s|acceptUrl: .*|acceptUrl: http://127.0.0.1:$WEB_PORT/invites\\
  smtp: {host: 127.0.0.1, port: $SMTP_PORT, tls: none, from: portal@platform.example}|" \
  -e "s|^  auth: proxy|  auth: demo|" \
  $EX/00-config.yaml >"$WORK/config.yaml"
note "catalog: mail, calendar, crm (premium), analytics (premium); default branding; userPrefix \"\""
note "invitations: the acceptance page on 127.0.0.1:$WEB_PORT, e-mail through the local SMTP server"
run grep -A3 '^listen:' "$WORK/config.yaml"
run grep -A2 '^invites:' "$WORK/config.yaml"
note "the portal: auth: demo (pick any user; allowed on a loopback address only)"
run grep -A1 '^portal:' "$WORK/config.yaml"
printf '$ %s\n' "$PARTNERKIT run --config $WORK/config.yaml &"
RUST_LOG=${RUST_LOG:-info} "$PARTNERKIT" run --config "$WORK/config.yaml" >"$WORK/operator.log" 2>&1 &
OP_PID=$!
sleep 0.5
kill -0 "$OP_PID" 2>/dev/null || { echo "the operator exited:"; cat "$WORK/operator.log"; exit 1; }
PORTAL=http://127.0.0.1:$WEB_PORT/portal/
say "The Partner Portal: $PORTAL"
note "open it in a browser while the demo runs (PAUSE=1 keeps everything up at the end);"
note "auth: demo — pick a user, e.g. alice@acme.example (Acme's admin) once Step 1 has run"

say "Step 1 — the platform admin signs up two partners"
run kubectl apply -f $EX/01-partners.yaml
run kubectl wait --for=condition=Ready partner/acme partner/initech --timeout=30s
run kubectl get partners
note "what partnerkit made for acme:"
run kubectl get namespace partner-acme --show-labels
wait_exists tenant template -n partner-acme
run kubectl get tenants -n partner-acme --show-labels
run kubectl get rolebinding partnerkit-partner-admins -n partner-acme -o wide
run kubectl get clusterrole,clusterrolebinding partnerkit:partner:acme

say "What a partner admin may do — plain RBAC, each partner in its own namespace"
can_i create tenants -n partner-acme --as $ALICE
can_i create tenants -n partner-initech --as $ALICE
can_i get partners.partnerkit.io/acme --as $ALICE -A
can_i patch partners.partnerkit.io/acme --as $ALICE -A
can_i patch partners.partnerkit.io/initech --as $ALICE -A
can_i create partners.partnerkit.io --as $ALICE -A
fails kubectl get tenants -n partner-acme --as $PETER

say "Step 2 — acme's admin edits the template: crm on, a wifi profile"
run kubectl apply -f $EX/02-acme-template.yaml --as $ALICE
note "the template has no workspace; its status shows its own effective values"
run kubectl wait --for=jsonpath='{.status.effectiveBizApps[?(@.name=="crm")].enabled}'=true tenant/template -n partner-acme --timeout=30s
run kubectl get tenant template -n partner-acme \
  -o jsonpath='{range .status.effectiveBizApps[*]}{.name}={.enabled} ({.source}){"\n"}{end}'

say "Step 3 — acme's other admin creates two companies (globex, umbrella)"
run kubectl apply -f $EX/03-acme-tenants.yaml --as $CAROL
run kubectl wait --for=condition=Ready tenant/globex tenant/umbrella -n partner-acme --timeout=30s
run kubectl get tenants -n partner-acme --as $CAROL
note "globex's effective values and where each comes from:"
run kubectl get tenant globex -n partner-acme --as $CAROL \
  -o jsonpath='{range .status.effectiveBizApps[*]}{.name}={.enabled} ({.source}){"\n"}{end}'
run kubectl get tenant globex -n partner-acme --as $CAROL \
  -o jsonpath='{range .status.effectiveProfiles[*]}{.name}: {.data} from {.sources}{"\n"}{end}'
run kubectl get tenant globex -n partner-acme --as $CAROL \
  -o jsonpath='{range .status.effectiveAdmins[*]}{.email} ({.source}){"\n"}{end}'
note "materialized in globex's workspace:"
run kubectl get namespace tenant-globex --show-labels
run kubectl get configmaps,rolebindings -n tenant-globex -l app.kubernetes.io/managed-by=partnerkit
run kubectl get configmap partnerkit-bizapps -n tenant-globex -o jsonpath='{.data}{"\n"}'
run kubectl get configmap partnerkit-profile-wifi -n tenant-globex -o jsonpath='{.data}{"\n"}'
run kubectl get configmap partnerkit-branding -n tenant-globex -o jsonpath='{.data}{"\n"}'
note "umbrella has its own admins; acme's admins keep access:"
run kubectl get rolebindings -n tenant-umbrella -o wide
can_i create configmaps -n tenant-umbrella --as wesker@umbrella.example
can_i create configmaps -n tenant-globex --as wesker@umbrella.example

say "Inheritance is live: the template changes, every inheriting tenant follows"
run kubectl patch tenant template -n partner-acme --type merge \
  -p '{"spec":{"profiles":{"wifi":{"security":"wpa3"}}}}' --as $ALICE
run kubectl wait --for=jsonpath='{.data.security}'=wpa3 configmap/partnerkit-profile-wifi -n tenant-globex --timeout=30s
run kubectl get configmap partnerkit-profile-wifi -n tenant-globex -o jsonpath='{.data}{"\n"}'

say "Refusals read from status: a premium app acme is not entitled to"
cat >"$WORK/hooli.yaml" <<'YAML'
apiVersion: partnerkit.io/v1alpha1
kind: Tenant
metadata: {name: hooli, namespace: partner-acme}
spec:
  displayName: Hooli
  bizApps: {analytics: true}
YAML
run kubectl apply -f "$WORK/hooli.yaml" --as $ALICE
run kubectl wait --for=condition=Ready=false tenant/hooli -n partner-acme --timeout=30s
run kubectl get tenant hooli -n partner-acme \
  -o jsonpath='{range .status.conditions[*]}{.type}={.status} {.reason}: {.message}{"\n"}{end}'
fails kubectl get namespace tenant-hooli
run kubectl delete tenant hooli -n partner-acme --as $ALICE --wait

say "Step 4 — initech's admin creates initrode (analytics: initech is entitled to every premium app)"
run kubectl apply -f $EX/04-initech-tenants.yaml --as $PETER
run kubectl wait --for=condition=Ready tenant/initrode -n partner-initech --timeout=30s
run kubectl get configmap partnerkit-bizapps -n tenant-initrode -o jsonpath='{.data}{"\n"}'

say "Step 5 — branding: partner admins may change spec.branding of their Partner, nothing else"
run kubectl patch partner acme --type merge --patch-file $EX/05-acme-branding.yaml --as $ALICE
run kubectl patch partner initech --type merge --patch-file $EX/05-initech-branding.yaml --as $PETER
note "RBAC allows patching the Partner; the admission policy refuses anything but branding:"
fails kubectl patch partner acme --type merge -p '{"spec":{"displayName":"Evil Corp"}}' --as $ALICE
fails kubectl patch partner acme --type merge -p '{"spec":{"entitlements":{"bizApps":["crm","analytics"]}}}' --as $ALICE
note "acme is entitled to branding: applied; initech is not: stored, not applied"
run kubectl wait --for=jsonpath='{.status.brandingApplied}'=true partner/acme --timeout=30s
run kubectl wait --for=jsonpath='{.data.primaryColor}'='#0055ff' configmap/partnerkit-branding -n tenant-globex --timeout=30s
run kubectl get partners
run kubectl get configmap partnerkit-branding -n tenant-globex -o jsonpath='{.data}{"\n"}'
run kubectl get configmap partnerkit-branding -n tenant-initrode -o jsonpath='{.data}{"\n"}'
run kubectl get configmap partnerkit-branding -n partner-initech -o jsonpath='{.data}{"\n"}'

say "Step 7 — acme's admin invites bob; bob accepts the e-mailed link and becomes an admin"
BOB=bob@acme.example
can_i create partneradmininvites -n partner-acme --as $ALICE
can_i create partneradmininvites -n partner-initech --as $ALICE
run kubectl apply -f $EX/07-invite-bob.yaml --as $ALICE
run kubectl wait --for=jsonpath='{.status.phase}'=Sent pai/invite-bob -n partner-acme --timeout=30s
run kubectl get pai -n partner-acme
run kubectl get pai invite-bob -n partner-acme \
  -o jsonpath='{range .status.conditions[*]}{.type}={.status} {.reason}: {.message}{"\n"}{end}tokenHash: {.status.tokenHash}{"\n"}'
note "the e-mail, as the local SMTP server received it (text part):"
MAIL=$(ls "$WORK"/maildir/new/* | head -1)
/usr/bin/python3 - "$MAIL" <<'PY'
import email, email.policy, sys
m = email.message_from_binary_file(open(sys.argv[1], "rb"), policy=email.policy.default)
print(f"From: {m['From']}\nTo: {m['To']}\nSubject: {m['Subject']}\n")
print(m.get_body(("plain",)).get_content())
PY
LINK=$(/usr/bin/python3 - "$MAIL" <<'PY'
import email, email.policy, re, sys
m = email.message_from_binary_file(open(sys.argv[1], "rb"), policy=email.policy.default)
print(re.search(r"http://\S+", m.get_body(("plain",)).get_content()).group(0))
PY
)
TOKEN=${LINK##*token=}
PAGE=${LINK%%\?*}
note "the link from the e-mail: $LINK"
note "only the token's SHA-256 is in the cluster: $(printf %s "$TOKEN" | sha256sum | cut -d' ' -f1)"
status_of() { curl -s -o "$WORK/page.html" -w '%{http_code}' "$@"; }
page_text() { sed -e 's/<style>.*<\/style>//' -e 's/<[^>]*>/ /g' -e 's/  */ /g' "$WORK/page.html" | tr -s ' ' | fold -s -w 100; echo; }
printf '$ curl %s\n' "$LINK"
echo "HTTP $(status_of "$LINK")"; page_text
note "a forged token gets a clear 404, never a stack trace:"
printf '$ curl %s\n' "$PAGE?token=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
echo "HTTP $(status_of "$PAGE?token=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")"; page_text
note "bob clicks Accept (the page's form posts the token):"
printf '$ curl -X POST --data-urlencode token=… %s\n' "$PAGE"
echo "HTTP $(status_of -X POST --data-urlencode "token=$TOKEN" "$PAGE")"; page_text
run kubectl wait --for=jsonpath='{.status.phase}'=Accepted pai/invite-bob -n partner-acme --timeout=30s
wait_admin() { # wait_admin yes|no: bob may (not) create tenants in partner-acme
  for _ in $(seq 100); do
    [ "$(kubectl auth can-i create tenants -n partner-acme --as $BOB 2>/dev/null)" = "$1" ] && return 0
    sleep 0.1
  done
  echo "timed out waiting for bob's rights to be '$1'" >&2; return 1
}
wait_admin yes
run kubectl get partner acme -o jsonpath='{.status.admins}{"\n"}'
run kubectl get rolebinding partnerkit-partner-admins -n partner-acme -o wide
can_i create tenants -n partner-acme --as $BOB
can_i patch tenants/template -n partner-acme --as $BOB
can_i create tenants -n partner-initech --as $BOB
note "the link works once:"
printf '$ curl -X POST --data-urlencode token=… %s\n' "$PAGE"
echo "HTTP $(status_of -X POST --data-urlencode "token=$TOKEN" "$PAGE")"; page_text
note "the audit trail:"
run kubectl get events -n partner-acme --field-selector involvedObject.name=invite-bob
note "deleting the invite revokes bob's rights:"
run kubectl delete pai invite-bob -n partner-acme --as $ALICE
wait_admin no
can_i create tenants -n partner-acme --as $BOB

say "Everything at a glance"
run kubectl get partners,tenants -A
run kubectl get namespaces -l app.kubernetes.io/managed-by=partnerkit --show-labels

say "The Partner Portal: alice's Companies, as the API server lets alice see them"
note "sign in on the demo page (its form carries a CSRF token in an encrypted session cookie)"
JAR=$WORK/portal-cookies
CSRF=$(curl -s -c "$JAR" -b "$JAR" "${PORTAL}sign-in" | sed -n 's/.*name="csrf" value="\([^"]*\)".*/\1/p' | head -1)
printf '$ curl -X POST %s (email=%s)\n' "${PORTAL}sign-in" "$ALICE"
curl -s -o /dev/null -c "$JAR" -b "$JAR" -H 'Sec-Fetch-Site: same-origin' \
  --data-urlencode "csrf=$CSRF" --data-urlencode "email=$ALICE" "${PORTAL}sign-in"
printf '$ curl %s\n' "${PORTAL}partners/acme/companies"
curl -s -o "$WORK/page.html" -c "$JAR" -b "$JAR" "${PORTAL}partners/acme/companies"
/usr/bin/python3 - "$WORK/page.html" <<'PY'
import html.parser, sys
class Rows(html.parser.HTMLParser):
    rows, row, cell, inside = [], None, None, False
    def handle_starttag(self, tag, attrs):
        if tag == "tr": self.row = []
        elif tag in ("td", "th") and self.row is not None: self.cell = []
        elif tag == "br" and self.cell is not None: self.cell.append(" — ")
    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.cell is not None:
            self.row.append(" ".join("".join(self.cell).split())); self.cell = None
        elif tag == "tr" and self.row is not None: self.rows.append(self.row); self.row = None
    def handle_data(self, data):
        if self.cell is not None: self.cell.append(data)
p = Rows(); p.feed(open(sys.argv[1]).read())
for r in p.rows: print(" | ".join(c for c in r if c))
PY
note "and the page itself, in a real browser (Playwright driving chromium, as alice):"
mkdir -p target/demo
run node tests/browser/screenshot.mjs \
  "{\"base\": \"${PORTAL%/portal/}\", \"user\": \"$ALICE\", \"path\": \"partners/acme/companies\", \"file\": \"$PWD/target/demo/portal-companies.png\"}"

say "Step 6 — the platform admin moves globex from acme to initech"
run kubectl delete tenant globex -n partner-acme --wait
note "deletionPolicy Retain: the workspace stays, labelled orphaned"
run kubectl wait --for=jsonpath='{.metadata.labels.partnerkit\.io/orphaned}'=true namespace/tenant-globex --timeout=30s
run kubectl get namespace tenant-globex --show-labels
note "initech's admin cannot take acme's retained data on its own: the Tenant waits, and gets nothing"
cat >"$WORK/globex-initech.yaml" <<'YAML'
apiVersion: partnerkit.io/v1alpha1
kind: Tenant
metadata: {name: globex, namespace: partner-initech}
spec: {displayName: Globex Corporation}
YAML
run kubectl apply -f "$WORK/globex-initech.yaml" --as $PETER
run kubectl wait --for=jsonpath='{.status.conditions[?(@.type=="Ready")].reason}'=AssignmentRequired tenant/globex -n partner-initech --timeout=30s
run kubectl get tenant globex -n partner-initech \
  -o jsonpath='{range .status.conditions[*]}{.type}={.status} {.reason}: {.message}{"\n"}{end}'
can_i get configmaps -n tenant-globex --as $PETER
note "nor may a partner admin perform the platform admin's act:"
can_i create partnerassignments.partnerkit.io --as $PETER
note "the platform admin assigns the company to initech (PartnerAssignment) and applies its spec:"
run kubectl apply -f $EX/06-move-globex.yaml
run kubectl wait --for=condition=Ready tenant/globex -n partner-initech --timeout=30s
run kubectl wait --for=jsonpath='{.metadata.labels.partnerkit\.io/partner}'=initech namespace/tenant-globex --timeout=30s
run kubectl get namespace tenant-globex --show-labels
run kubectl get configmap partnerkit-bizapps -n tenant-globex -o jsonpath='{.data}{"\n"}'
can_i create configmaps -n tenant-globex --as $PETER
can_i create configmaps -n tenant-globex --as $ALICE
run kubectl get partnerassignments
run kubectl get partners

say "deletionPolicy Delete: deleting umbrella deletes its workspace"
run kubectl delete tenant umbrella -n partner-acme --as $ALICE --wait
run kubectl wait --for=delete namespace/tenant-umbrella --timeout=30s
run kubectl get tenants -A

if [ -n "${PAUSE:-}" ]; then
  say "Everything is still running: the portal at $PORTAL (KUBECONFIG=$KUBECONFIG)"
  read -r -p "Press Enter to stop the demo. " _ || true
fi

say "Stop the operator, $API_SERVER and the SMTP server"
stop "$OP_PID" "partnerkit"
OP_PID=
stop "$SIM_PID" "$API_SERVER"
SIM_PID=
stop "$SMTP_PID" "the SMTP server"
SMTP_PID=
echo "demo finished"
