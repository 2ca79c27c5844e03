#!/usr/bin/env bash
# `make run`: a one-node Berth cluster on this machine — a manager, a private
# containerd (scripts/containerd.sh) with the base image berth/base:latest,
# and an agent — with state under .berth-dev/ (kept across runs). Prints the
# URL and the superadmin's credentials (the password only on the first start:
# it is kept in .berth-dev/manager/bootstrap-admin.txt), then runs until
# Ctrl-C, which stops all of it (containers included). The agent offers two fake GPUs
# (BERTH_FAKE_GPUS, 0 for none) so the manual's fGPU walkthrough works on a
# machine without NVIDIA, and manager and agent share the storage folder host
# "local" (.berth-dev/folders), which the default policy allows on first start.
set -euo pipefail
cd "$(dirname "$0")/.."

http=${BERTH_HTTP_ADDR:-127.0.0.1:8080}
agent_http=${BERTH_AGENT_HTTP_ADDR:-127.0.0.1:6001}
# Sessions' web apps: each session at SESSION.localhost on this port
# (browsers and curl send every name under localhost to the loopback).
apps=${BERTH_APPS_ADDR:-127.0.0.1:8081}
dev=${BERTH_DEV_DIR:-.berth-dev}
data=$dev/manager
mkdir -p "$data" "$dev/agent" "$dev/folders"
dev_abs=$(cd "$dev" && pwd)
folders="local=$dev_abs/folders"

# The agents' join token is made once and kept with the dev state. Both
# daemons read it from the file: a token on a command line is in ps for
# every local account to see.
token_file=$dev_abs/agent-token
if [ ! -s "$token_file" ]; then
  (umask 077 && head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$token_file")
fi
chmod 600 "$token_file"
# The key that seals registry passwords in the replicated state, kept the
# same way (every manager of a real cluster needs the same one).
secrets_key=$dev_abs/secrets.key
if [ ! -s "$secrets_key" ]; then
  (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$secrets_key")
fi
chmod 600 "$secrets_key"

# The daemons run in sessions of their own (setsid), so Ctrl-C reaches this
# script alone and cleanup stops them in order: agent, manager, then
# containerd with the sessions' containers. A containerd interrupted together
# with the rest would be half-way down when cleanup asks it for its tasks,
# and that question hangs for 10 s.
pids=()
names=()
containerd_dir=""
cleanup() {
  local what="" i
  for ((i = ${#names[@]} - 1; i >= 0; i--)); do what+="${what:+, }${names[$i]}"; done
  [ -z "$containerd_dir" ] || what+="${what:+ and }containerd (with every container it runs)"
  [ -z "$what" ] || printf '\nStopping %s\n' "$what"
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[$i]}" 2>/dev/null || true
    wait "${pids[$i]}" 2>/dev/null || true
  done
  if [ -n "$containerd_dir" ]; then
    scripts/containerd.sh stop "$containerd_dir" >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

wait_for() { # URL what pid
  for _ in $(seq 1 150); do
    curl -fsS "$1" >/dev/null 2>&1 && return 0
    kill -0 "$3" 2>/dev/null || { echo "$2 exited; see its log" >&2; return 1; }
    sleep 0.2
  done
  echo "$2 did not become ready at $1" >&2
  return 1
}

# Folders belong to the sessions' user 1000; a manager that is not root (and
# then runs without an agent) cannot give them away and keeps them its own.
folder_owner=()
[ "$(id -u)" = 0 ] || folder_owner=(-folder-uid "$(id -u)" -folder-gid "$(id -g)")
# The first start is the one that creates the superadmin's credentials file;
# only then are they printed.
creds=$data/bootstrap-admin.txt
had_creds=""
[ -e "$creds" ] && had_creds=1
first_start=""
[ -e "$data/raft" ] || first_start=1
echo "Starting berth-manager on http://$http, sessions' apps on http://SESSION.localhost:${apps##*:} (state in $data)"
# -dev keeps Raft in memory: the manager opens no Raft port.
setsid bin/berth-manager -dev -node-id dev -http-addr "$http" -apps-addr "$apps" -apps-domain localhost -data-dir "$data" \
  -agent-token-file "$token_file" -secrets-key-file "$secrets_key" -folder-host "$folders" "${folder_owner[@]}" -log-level "${BERTH_LOG_LEVEL:-warn}" >"$data/stdout.log" 2>"$data/manager.log" &
pids+=($!)
names+=(berth-manager)
wait_for "http://$http/readyz" berth-manager "${pids[0]}" || { tail -n 20 "$data/manager.log" >&2; exit 1; }
# The manager writes the file before it creates the first-start objects that
# readyz waits for; only a first start waits for it, briefly.
for _ in $(seq 1 50); do
  [ -z "$first_start" ] || [ -n "${BERTH_BOOTSTRAP_ADMIN_PASSWORD:-}" ] || [ -s "$creds" ] && break
  sleep 0.2
done
# First start: let the default policy use the dev folder host (an admin may
# change it later; it is not touched again).
if [ ! -e "$dev/.folder-host-allowed" ] && [ -s "$creds" ]; then
  ak=$(sed -n 's/^access_key: //p' "$creds")
  sk=$(sed -n 's/^secret_key: //p' "$creds")
  BERTH_ADDR="http://$http" BERTH_ACCESS_KEY=$ak BERTH_SECRET_KEY=$sk \
    bin/berth policy update default --allowed-vfolder-hosts local >/dev/null && touch "$dev/.folder-host-allowed"
fi

# The agent needs root and containerd + runc (scripts/install-deps.sh).
agent_note=""
if [ "$(id -u)" != 0 ] || ! command -v containerd >/dev/null || ! command -v runc >/dev/null; then
  agent_note="no agent: it needs root and containerd + runc (run scripts/install-deps.sh as root)"
else
  # A short path: containerd's socket path is limited to 107 bytes.
  containerd_dir=/tmp/berth-dev-$(printf %s "$dev_abs" | sha256sum | cut -c1-8)
  echo "Starting a private containerd in $containerd_dir"
  setsid scripts/containerd.sh start "$containerd_dir" >/dev/null
  sock=$containerd_dir/containerd.sock
  if [ ! -s "$dev/base.tar" ]; then
    echo "Building the base image berth/base:latest from busybox-static (first start only)"
    scripts/build-base-image.sh "$dev/base.tar" >/dev/null
  fi
  bin/berth-agent image import -containerd "$sock" "$dev/base.tar" >/dev/null
  echo "Starting berth-agent on http://$agent_http"
  setsid bin/berth-agent -manager "http://$http" -token-file "$token_file" -state-dir "$dev/agent" -containerd "$sock" \
    -runc-root "$containerd_dir/runc" -reserved-cpu "${BERTH_RESERVED_CPU:-0}" -reserved-mem "${BERTH_RESERVED_MEM:-512MiB}" -http-addr "$agent_http" \
    -folder-host "$folders" -fake-gpus "${BERTH_FAKE_GPUS:-2}" -gpu-mps-dir "$dev_abs/mps" \
    -log-level "${BERTH_LOG_LEVEL:-warn}" >"$dev/agent/stdout.log" 2>"$dev/agent/agent.log" &
  pids+=($!)
  names+=(berth-agent)
  wait_for "http://$agent_http/healthz" berth-agent "${pids[1]}" || { tail -n 20 "$dev/agent/agent.log" >&2; exit 1; }
fi

echo
echo "Berth is running: http://$http   (logs: $data/manager.log, $dev/agent/agent.log)"
if [ -n "${BERTH_BOOTSTRAP_ADMIN_PASSWORD:-}" ]; then
  echo "Superadmin: admin@berth.local with the password in BERTH_BOOTSTRAP_ADMIN_PASSWORD"
elif [ -z "$had_creds" ] && [ -s "$creds" ]; then
  echo "Superadmin created; its credentials, shown only now, are kept in $creds (mode 0600):"
  sed 's/^/  /' "$creds"
elif [ -s "$creds" ]; then
  echo "Superadmin: admin@berth.local; its password is in $creds (mode 0600)"
else
  echo "Superadmin: admin@berth.local with the password it was given on the first start (BERTH_BOOTSTRAP_ADMIN_PASSWORD)"
fi
if [ -n "$agent_note" ]; then
  echo "$agent_note"
else
  echo "Agent: http://$agent_http on a private containerd ($containerd_dir), image berth/base:latest, ${BERTH_FAKE_GPUS:-2} fake GPUs"
  echo "Storage folder host: local ($dev_abs/folders)"
fi
cat <<HELP

Try it:
  export BERTH_ADDR=http://$http
  bin/berth login -e admin@berth.local
  bin/berth agent list
  bin/berth user list

Ctrl-C stops everything; the state stays in ${dev} (make clean removes it).
HELP
wait "${pids[0]}"
