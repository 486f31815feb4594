#!/usr/bin/env bash
# Start a Docker engine for the integration stage, idempotently, and wait (bounded) until it answers.
#
# No bridge and no iptables (this machine has neither a registry nor outside networking; every
# container runs with host networking on 127.0.0.1). Safe to call when dockerd already runs: then it
# only checks that `docker info` answers.
#
# Environment:
#   DOCKERD_LOG        where dockerd's output goes (default /tmp/dockerd.log)
#   DOCKERD_WAIT_S     how long to wait for the engine to answer (default 60)
#   DOCKERD_PID_FILE   where the pid of a dockerd this script starts is written (default
#                      /tmp/neuro-dockerd.pid); it keeps running after the tests: kill "$(cat FILE)"
set -euo pipefail

log="${DOCKERD_LOG:-/tmp/dockerd.log}"
pid_file="${DOCKERD_PID_FILE:-/tmp/neuro-dockerd.pid}"
wait_s="${DOCKERD_WAIT_S:-60}"

if docker info >/dev/null 2>&1; then
    echo "start_dockerd: engine already answers ($(docker info --format '{{.ServerVersion}}'))"
    exit 0
fi

if ! command -v dockerd >/dev/null 2>&1; then
    echo "start_dockerd: dockerd not installed (apt-get install -y docker.io)" >&2
    exit 1
fi

if pgrep -x dockerd >/dev/null 2>&1; then
    echo "start_dockerd: dockerd process exists but does not answer yet; waiting"
else
    echo "start_dockerd: starting dockerd --bridge=none --iptables=false (log: $log)"
    nohup dockerd --bridge=none --iptables=false >"$log" 2>&1 &
    echo "$!" >"$pid_file"
    echo "start_dockerd: dockerd pid $! (in $pid_file); it stays up: stop it with kill \"\$(cat $pid_file)\""
fi

deadline=$((SECONDS + wait_s))
until docker info >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
        echo "start_dockerd: engine did not answer within ${wait_s}s; last log lines:" >&2
        tail -n 20 "$log" >&2 || true
        exit 1
    fi
    sleep 0.5
done
echo "start_dockerd: engine answers ($(docker info --format '{{.ServerVersion}}')) after $((SECONDS))s"
