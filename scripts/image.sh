#!/usr/bin/env bash
# The operator's container image, built without a container engine (`make image`):
#
#   scripts/image.sh                 everything below: target/image/partnerkit.oci.tar
#   scripts/image.sh binary          the static binary only; prints its path
#   scripts/image.sh rootfs DIR BIN  the image's root filesystem only, from a static binary
#   scripts/image.sh assemble DIR OUT  pack a root filesystem into an OCI image-layout archive
#
# The Dockerfile runs `binary` and `rootfs` in its builder stage and copies DIR into a scratch
# image with the same config, so both ways give the same image. Keep them in step: the image
# test (tests/image) compares the Dockerfile with the archive.
#
# - The binary: `cargo build --profile dist --target x86_64-unknown-linux-gnu` (release with
#   whole-program LTO, Cargo.toml) with glibc linked
#   statically (crt-static), symbols stripped, getrandom(2) called directly (a static binary
#   cannot dlsym it and would fall back to /dev/urandom), and the build paths remapped so two
#   checkouts give the same binary. Needs nothing but the Rust toolchain this project uses.
# - The root filesystem: /usr/local/bin/partnerkit, /etc/passwd and /etc/group with root and
#   nonroot (65532), /etc/nsswitch.conf, the CA bundle /etc/ssl/certs/ca-certificates.crt (from
#   Debian's ca-certificates: the roots for SMTP over TLS), an empty /tmp (1777; the chart
#   mounts an emptyDir there). No shell, no other program. Everything owned by root.
# - The archive: hack/image/ (go-containerregistry, pinned), with every timestamp set to
#   SOURCE_DATE_EPOCH (default: the last commit's time), so the same sources give the same
#   digest. Named as the chart's default: values.yaml image.repository, tagged with
#   Chart.yaml's appVersion.
#
# Environment: IMAGE_OUT (default target/image/partnerkit.oci.tar), SOURCE_DATE_EPOCH,
# IMAGE_SOURCE (the org.opencontainers.image.source label).
set -euo pipefail
umask 022
root="$(cd "$(dirname "$0")/.." && pwd)"
TARGET=x86_64-unknown-linux-gnu
ARCH=amd64
# What the image config says; the Dockerfile's final stage says the same (tests/image checks).
ENTRYPOINT=/usr/local/bin/partnerkit
USER_SPEC=65532:65532
ENV_PATH=/usr/local/bin
IMAGE_SOURCE="${IMAGE_SOURCE:-https://github.com/partnerkit/partnerkit}"
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt

chart_value() { # file key-regex: the first `key: value` at the top level or under image:
  awk -v key="$2" '
    /^image:/ { in_image = 1; next }
    /^[^ #]/ { in_image = 0 }
    $0 ~ "^" key ":" || (in_image && $0 ~ "^  " key ":") { v = $2; gsub(/"/, "", v); print v; exit }
  ' "$1"
}

build_binary() {
  cd "$root"
  local cargo_home="${CARGO_HOME:-$HOME/.cargo}"
  unset CARGO_ENCODED_RUSTFLAGS
  RUSTFLAGS="-C target-feature=+crt-static -C strip=symbols --cfg getrandom_backend=\"linux_getrandom\" --remap-path-prefix=$root=/partnerkit --remap-path-prefix=$cargo_home=/cargo" \
    "${CARGO:-cargo}" build --locked --profile dist --target "$TARGET" --bin partnerkit >&2
  local bin="${CARGO_TARGET_DIR:-$root/target}/$TARGET/dist/partnerkit"
  # Static means: no program interpreter, no shared library needed.
  if readelf -lW "$bin" | grep -q 'INTERP' || readelf -dW "$bin" | grep -q '(NEEDED)'; then
    echo "image.sh: $bin is not static:" >&2
    readelf -dW "$bin" | grep NEEDED >&2 || true
    exit 1
  fi
  echo "$bin"
}

make_rootfs() { # DIR BIN
  local dir="$1" bin="$2"
  [ -s "$CA_BUNDLE" ] || { echo "image.sh: $CA_BUNDLE is missing (Debian package ca-certificates)" >&2; exit 1; }
  rm -rf "$dir"
  mkdir -p "$dir"/etc/ssl/certs "$dir"/usr/local/bin "$dir"/tmp
  install -m 0755 "$bin" "$dir/usr/local/bin/partnerkit"
  install -m 0644 "$CA_BUNDLE" "$dir/etc/ssl/certs/ca-certificates.crt"
  printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' \
    'nonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin' > "$dir/etc/passwd"
  printf '%s\n' 'root:x:0:' 'nonroot:x:65532:' > "$dir/etc/group"
  # Name lookups: /etc/hosts (the pod's hostAliases) before DNS. glibc, linked statically,
  # has the files and dns sources built in; it loads no NSS module.
  printf '%s\n' 'passwd: files' 'group: files' 'hosts: files dns' > "$dir/etc/nsswitch.conf"
  chmod 0644 "$dir"/etc/passwd "$dir"/etc/group "$dir"/etc/nsswitch.conf
  chmod 0755 "$dir"/etc "$dir"/etc/ssl "$dir"/etc/ssl/certs "$dir"/usr "$dir"/usr/local "$dir"/usr/local/bin
  chmod 1777 "$dir"/tmp
}

assemble() { # DIR OUT
  local dir="$1" out="$2"
  local repository version license epoch tool
  repository="$(chart_value "$root/charts/partnerkit/values.yaml" repository)"
  version="$(chart_value "$root/charts/partnerkit/Chart.yaml" appVersion)"
  license="$(sed -n 's/^license = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -1)"
  [ -n "$repository" ] && [ -n "$version" ] && [ -n "$license" ] || {
    echo "image.sh: could not read image.repository, appVersion or the license" >&2; exit 1; }
  epoch="${SOURCE_DATE_EPOCH:-$(git -C "$root" log -1 --format=%ct 2>/dev/null || true)}"
  epoch="${epoch:-0}"
  tool="$root/target/image/bin/oci-image"
  command -v go >/dev/null || { echo "image.sh: Go is missing (hack/image is a Go module)" >&2; exit 1; }
  # Go's caches in target/go, as for hack/kube-bins (a subshell: env.sh sets $root).
  ( cd "$root/hack/image" && . ../kube-bins/env.sh && go build -trimpath -o "$tool" . )
  mkdir -p "$(dirname "$out")"
  "$tool" --rootfs "$dir" --out "$out" --name "$repository:$version" --created "$epoch" \
    --arch "$ARCH" --entrypoint "$ENTRYPOINT" --user "$USER_SPEC" --env "PATH=$ENV_PATH" \
    --created-by "scripts/image.sh (make image)" \
    --label "org.opencontainers.image.title=partnerkit" \
    --label "org.opencontainers.image.version=$version" \
    --label "org.opencontainers.image.licenses=$license" \
    --label "org.opencontainers.image.source=$IMAGE_SOURCE"
}

case "${1:-all}" in
  binary) build_binary ;;
  rootfs) [ $# -eq 3 ] || { echo "usage: scripts/image.sh rootfs DIR BIN" >&2; exit 2; }
    make_rootfs "$2" "$3" ;;
  assemble) [ $# -eq 3 ] || { echo "usage: scripts/image.sh assemble DIR OUT" >&2; exit 2; }
    assemble "$2" "$3" ;;
  all)
    start=$SECONDS
    bin="$(build_binary)"
    make_rootfs "$root/target/image/rootfs" "$bin"
    out="${IMAGE_OUT:-$root/target/image/partnerkit.oci.tar}"
    assemble "$root/target/image/rootfs" "$out"
    echo "image: $out ($(du -h "$out" | cut -f1), binary $(du -h "$bin" | cut -f1)) in $((SECONDS - start)) s" >&2 ;;
  *) echo "usage: scripts/image.sh [binary | rootfs DIR BIN | assemble DIR OUT]" >&2; exit 2 ;;
esac
