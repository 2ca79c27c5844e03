#!/usr/bin/env bash
# `make run`: a one-node Berth cluster on this machine, data under .berth-dev/
# (kept across runs). Prints the URL and the superadmin's credentials, then
# runs in the foreground until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."

http=${BERTH_HTTP_ADDR:-127.0.0.1:8080}
raft=${BERTH_RAFT_ADDR:-127.0.0.1:8300}
data=${BERTH_DEV_DIR:-.berth-dev}/manager
mkdir -p "$data"

bin/berth-manager -dev -node-id dev -http-addr "$http" -raft-addr "$raft" -data-dir "$data" \
  -log-level "${BERTH_LOG_LEVEL:-warn}" >"$data/stdout.log" 2>"$data/manager.log" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null' INT TERM EXIT

for _ in $(seq 1 100); do
  if curl -fsS "http://$http/readyz" >/dev/null 2>&1 && { [ -n "${BERTH_BOOTSTRAP_ADMIN_PASSWORD:-}" ] || [ -s "$data/bootstrap-admin.txt" ]; }; then
    break
  fi
  if ! kill -0 $pid 2>/dev/null; then
    echo "berth-manager exited; its log:" >&2
    tail -n 20 "$data/manager.log" >&2
    exit 1
  fi
  sleep 0.2
done
if ! curl -fsS "http://$http/readyz" >/dev/null 2>&1; then
  echo "berth-manager did not become ready on $http; see $data/manager.log" >&2
  exit 1
fi

echo
echo "Berth manager is running: http://$http   (log: $data/manager.log)"
if [ -n "${BERTH_BOOTSTRAP_ADMIN_PASSWORD:-}" ]; then
  echo "Superadmin: admin@berth.local with the password in BERTH_BOOTSTRAP_ADMIN_PASSWORD"
else
  echo "Superadmin credentials ($data/bootstrap-admin.txt):"
  sed 's/^/  /' "$data/bootstrap-admin.txt"
fi
cat <<HELP

Try it:
  export BERTH_ADDR=http://$http
  bin/berth login -e admin@berth.local
  bin/berth info
  bin/berth user list

Ctrl-C stops the manager; its state stays in ${data} (make clean removes it).
HELP
wait $pid
