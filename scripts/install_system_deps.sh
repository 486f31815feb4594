#!/usr/bin/env bash
# Debian packages the integration stage needs: a Docker engine (to run the collector container)
# and Prometheus (a real server for the course's PromQL). Idempotent; needs root (as on these machines).
set -euo pipefail
missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
# the collector refuses to start its exporter without a CA bundle, even for plain http
[ -f /etc/ssl/certs/ca-certificates.crt ] || missing+=(ca-certificates)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian's prometheus package may start a service on install on some systems; we start our own.
pkill -x prometheus 2>/dev/null || true
echo "system deps: dockerd=$(command -v dockerd) prometheus=$(command -v prometheus)"
