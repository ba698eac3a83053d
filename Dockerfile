# syntax=docker/dockerfile:1
# The operator's image, for those with Docker/BuildKit (or podman/buildah):
#
#   docker build --platform linux/amd64 -t partnerkit/partnerkit:0.1.0 .
#
# `make image` builds the SAME image without a container engine (scripts/image.sh, the
# assembler in hack/image/) as target/image/partnerkit.oci.tar. Both run scripts/image.sh for
# the binary and the root filesystem, and set the config below; keep this file in step with
# scripts/image.sh — tests/image/test_image.py compares the two (stage, USER, ENTRYPOINT, ENV,
# labels, the version) and fails when they drift. Same files and config, not necessarily the
# same bytes: the builder's Debian patch level and BuildKit's timestamps differ from the local
# build (for fixed timestamps: --build-arg SOURCE_DATE_EPOCH=$(git log -1 --format=%ct) and
# --output type=oci,dest=partnerkit.oci.tar,rewrite-timestamp=true).
#
# The image: a scratch image holding a static `partnerkit` (glibc linked statically), the CA
# roots (SMTP over TLS; the API server's CA comes with the service account), /etc/passwd and
# /etc/group for the user 65532 "nonroot" the chart runs it as, an empty /tmp. No shell.
# linux/amd64 only: the static build targets x86_64-unknown-linux-gnu (on another platform
# without --platform linux/amd64, the build fails instead of mislabelling the image).

# Debian 12 (bookworm), like the machines `make image` runs on; Rust as the project uses.
ARG RUST_IMAGE=docker.io/library/rust:1.95.0-bookworm

FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY . .
# The binary (static, stripped) and the root filesystem, exactly as `make image` makes them.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    bin="$(scripts/image.sh binary)" \
 && scripts/image.sh rootfs /rootfs "$bin"

FROM scratch
COPY --from=build /rootfs/ /
ENV PATH=/usr/local/bin
USER 65532:65532
WORKDIR /
ENTRYPOINT ["/usr/local/bin/partnerkit"]
# The chart's appVersion (charts/partnerkit/Chart.yaml) and the project's source.
ARG VERSION=0.1.0
ARG SOURCE=https://github.com/partnerkit/partnerkit
LABEL org.opencontainers.image.title="partnerkit" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="${SOURCE}"
