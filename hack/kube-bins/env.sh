# Sourced by pin.sh and build.sh: Go's module and build caches live in the project's target/
# (outside git), so nothing installed or cached by hand elsewhere takes part in a build.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export GOMODCACHE="$root/target/go/mod"
export GOCACHE="$root/target/go/build"
export GOPATH="$root/target/go/path"
export GOFLAGS="-buildvcs=false -modcacherw"
export GOTOOLCHAIN=local
export CGO_ENABLED=0
unset GOWORK
