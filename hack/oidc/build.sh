#!/usr/bin/env bash
# Builds the sign-in programs the portal's auth tests (tests/portal_auth.rs) run, into
# target/oidc-bins/:
#   oidc-provider  this module (main.go): github.com/oauth2-proxy/mockoidc as pinned in go.mod
#   oauth2-proxy   github.com/oauth2-proxy/oauth2-proxy/v7 at $OAUTH2_PROXY (its own go.mod
#                  and go.sum, checked against the Go checksum database by `go install`)
# Go's caches are the project's (hack/kube-bins/env.sh). Rebuilt only when this module or this
# script change (a stamp per program). Prints the output directory on its last line.
set -euo pipefail
OAUTH2_PROXY=v7.15.6
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
. ../kube-bins/env.sh
command -v go >/dev/null || { echo "hack/oidc/build.sh: Go is missing" >&2; exit 1; }
out="$root/target/oidc-bins"
mkdir -p "$out"
stamp="$(cat go.mod go.sum main.go build.sh ../kube-bins/env.sh | sha256sum | cut -d' ' -f1)"
fresh() { [ -x "$out/$1" ] && [ "$(cat "$out/.$1.stamp" 2>/dev/null)" = "$stamp" ]; }

if ! fresh oidc-provider; then
  echo "oidc-bins: building oidc-provider (mockoidc)" >&2
  go build -trimpath -ldflags "-s -w" -o "$out/oidc-provider.tmp" .
  mv "$out/oidc-provider.tmp" "$out/oidc-provider"
  echo "$stamp" > "$out/.oidc-provider.stamp"
fi
if ! fresh oauth2-proxy; then
  t=$SECONDS
  echo "oidc-bins: building oauth2-proxy $OAUTH2_PROXY" >&2
  tmp="$(mktemp -d "$out/.gobin.XXXXXX")"
  GOBIN="$tmp" go install -trimpath \
    -ldflags "-s -w -X github.com/oauth2-proxy/oauth2-proxy/v7/pkg/version.VERSION=$OAUTH2_PROXY" \
    "github.com/oauth2-proxy/oauth2-proxy/v7@$OAUTH2_PROXY"
  mv "$tmp/oauth2-proxy" "$out/oauth2-proxy"
  rmdir "$tmp"
  echo "$stamp" > "$out/.oauth2-proxy.stamp"
  echo "oidc-bins: oauth2-proxy built in $((SECONDS - t)) s: $("$out/oauth2-proxy" --version 2>&1 | head -1)" >&2
fi
echo "oidc-bins: oidc-provider and oauth2-proxy in $out up to date" >&2
echo "$out"
