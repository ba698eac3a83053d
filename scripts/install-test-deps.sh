#!/usr/bin/env bash
# What the invitation tests need besides Rust and kubectl, from Debian's packages:
#   python3-aiosmtpd  a real SMTP server (run as /usr/bin/python3 -m aiosmtpd)
#   chromium          a real headless browser, driven by Playwright (tests/browser/*.mjs)
#   nodejs, npm       run those scripts; npm installs playwright-core and axe-core (make node)
#   openssl, curl     scripts/real-cluster makes certificates and probes etcd with them
#   ca-certificates   the CA roots scripts/image.sh puts into the operator's image
# Installs only what is missing; needs root (or sudo) the first time.
#   scripts/install-test-deps.sh        everything (make test)
#   scripts/install-test-deps.sh demo   the SMTP server, chromium and Node.js (make demo)
#   scripts/install-test-deps.sh image  the CA roots only (make image)
set -euo pipefail
missing=()
[ -s /etc/ssl/certs/ca-certificates.crt ] || missing+=(ca-certificates)
if [ "${1:-}" != image ]; then
  /usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null || missing+=(python3-aiosmtpd)
  command -v openssl >/dev/null 2>&1 || missing+=(openssl)
  command -v curl >/dev/null 2>&1 || missing+=(curl)
fi
if [ "${1:-}" != image ]; then
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  command -v node >/dev/null 2>&1 || missing+=(nodejs)
  command -v npm >/dev/null 2>&1 || missing+=(npm)
fi
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
