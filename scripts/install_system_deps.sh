#!/usr/bin/env bash
# Debian packages the integration stage needs: a Docker engine (to run the collector container)
# and Prometheus (a real server for the course's PromQL); and headless Chromium (with its driver),
# in which the HTML report tests open the pages. Idempotent; needs root (as on these machines).
set -euo pipefail
missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
# the collector refuses to start its exporter without a CA bundle, even for plain http
[ -f /etc/ssl/certs/ca-certificates.crt ] || missing+=(ca-certificates)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Debian's prometheus and docker.io packages start services on install where an init system runs.
  # The tests start (and stop, by pid) their own servers, so forbid service starts during this
  # install (Debian's policy-rc.d protocol: exit 101 = action not allowed) instead of stopping
  # anything afterwards: a Prometheus already running on this machine is never ours to stop.
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy"
    trap 'rm -f "$policy"' EXIT
  fi
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "system deps: dockerd=$(command -v dockerd) prometheus=$(command -v prometheus) chromium=$(command -v chromium)"
