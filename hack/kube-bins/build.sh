#!/usr/bin/env bash
# Builds the programs of the pinned Kubernetes release into target/kube-bins/<version>/:
#   kube-apiserver, kube-controller-manager  k8s.io/kubernetes/cmd/… (with version ldflags)
#   etcd                                     go.etcd.io/etcd/server/v3 (the version k/k pins)
#   helm                                     helm.sh/helm/v4/cmd/helm
# Rebuilt only when go.mod, go.sum or this script change (a stamp file per program records
# their hash). `build.sh helm` builds only the named programs. Prints the output directory on
# its last line.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
. ./env.sh
command -v go >/dev/null || { echo "build.sh: Go is missing (Go 1.26 builds Kubernetes 1.36)" >&2; exit 1; }

version_of() { go list -m -f '{{.Version}}' "$1"; }
k8s="$(version_of k8s.io/kubernetes)"
etcd="$(version_of go.etcd.io/etcd/server/v3)"
helm="$(version_of helm.sh/helm/v4)"
out="$root/target/kube-bins/$k8s"
stamp="$(cat go.mod go.sum build.sh env.sh | sha256sum | cut -d' ' -f1)"
all=(etcd kube-apiserver kube-controller-manager helm)
wanted=("${@:-${all[@]}}")
for b in "${wanted[@]}"; do
  [[ " ${all[*]} " == *" $b "* ]] || { echo "build.sh: unknown program '$b' (one of: ${all[*]})" >&2; exit 2; }
done
fresh() { [ -x "$out/$1" ] && [ "$(cat "$out/.$1.stamp" 2>/dev/null)" = "$stamp" ]; }
todo=()
for b in "${wanted[@]}"; do fresh "$b" || todo+=("$b"); done
# target/kube-bins/current names the pinned version's directory (the Makefile's $HELM, tests).
mkdir -p "$out"
ln -sfn "$k8s" "$root/target/kube-bins/current"
if [ ${#todo[@]} -eq 0 ]; then
  echo "kube-bins: ${wanted[*]} in $out up to date (k8s $k8s, etcd $etcd, helm $helm)" >&2
  echo "$out"
  exit 0
fi

start=$SECONDS
[[ "$k8s" =~ ^v([0-9]+)\.([0-9]+)\. ]]
major="${BASH_REMATCH[1]}" minor="${BASH_REMATCH[2]}"
# The release's commit date stands for the build date, so two builds of one pin are identical.
date="$(go list -m -f '{{.Time.Format "2006-01-02T15:04:05Z"}}' k8s.io/kubernetes)"
kv=k8s.io/component-base/version
kflags="-s -w -X $kv.gitVersion=$k8s -X $kv.gitMajor=$major -X $kv.gitMinor=$minor -X $kv.gitTreeState=clean -X $kv.buildDate=$date"
hv=helm.sh/helm/v4/internal/version
hflags="-s -w -X $hv.version=$helm -X $hv.gitTreeState=clean"

build() { # name package ldflags
  [[ " ${todo[*]} " == *" $1 "* ]] || return 0
  local t=$SECONDS
  echo "kube-bins: building $1 ($2)" >&2
  rm -f "$out/.$1.stamp"
  go build -trimpath -ldflags "$3" -o "$out/$1.tmp" "$2"
  mv "$out/$1.tmp" "$out/$1"
  echo "$stamp" > "$out/.$1.stamp"
  echo "kube-bins: $1 built in $((SECONDS - t)) s: $("$out/$1" $4 2>&1 | head -1)" >&2
}
build etcd go.etcd.io/etcd/server/v3 "-s -w" --version
build kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver "$kflags" --version
build kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager "$kflags" --version
build helm helm.sh/helm/v4/cmd/helm "$hflags" "version --short"

echo "kube-bins: built in $((SECONDS - start)) s; $(du -sh "$out" | cut -f1) of programs, $(du -sh "$root/target/go" | cut -f1) of Go caches" >&2
echo "$out"
