#!/usr/bin/env bash
# A three-manager Berth cluster on this machine (the README's "cluster"
# section), over TLS: mutual-TLS Raft and an HTTPS API, with a CA and one
# certificate per manager made by `bin/berth tls` on the first start (in
# .berth-dev/cluster/tls/). Data under .berth-dev/cluster/, one log per manager.
#   scripts/cluster.sh start    start m1..m3 and wait for a leader
#   scripts/cluster.sh stop     stop them (kept data: start again resumes)
#   scripts/cluster.sh status   the Raft view of each manager
set -euo pipefail
cd "$(dirname "$0")/.."

dir=${BERTH_CLUSTER_DIR:-.berth-dev/cluster}
base=${BERTH_CLUSTER_PORT:-9080}
tls=$dir/tls
ca=$tls/ca.pem
export BERTH_BOOTSTRAP_ADMIN_PASSWORD=${BERTH_BOOTSTRAP_ADMIN_PASSWORD:-Cluster-admin-1}

peers=""
for i in 1 2 3; do
  peers+="${peers:+,}m$i=127.0.0.1:$((base + 100 + i))=127.0.0.1:$((base + i))"
done

certificates() {
  [ -f "$ca" ] || bin/berth tls ca create -dir "$tls" -common-name "Berth dev cluster CA"
  for i in 1 2 3; do
    [ -f "$tls/m$i.pem" ] || bin/berth tls cert create -manager -dir "$tls" -name "m$i"
  done
}

start() {
  mkdir -p "$dir"
  certificates
  for i in 1 2 3; do
    if [ -f "$dir/m$i.pid" ] && kill -0 "$(cat "$dir/m$i.pid")" 2>/dev/null; then
      echo "m$i is already running (pid $(cat "$dir/m$i.pid"))"
      continue
    fi
    bin/berth-manager -node-id "m$i" -http-addr "127.0.0.1:$((base + i))" -raft-addr "127.0.0.1:$((base + 100 + i))" \
      -data-dir "$dir/m$i" -bootstrap-expect 3 -peers "$peers" -log-level "${BERTH_LOG_LEVEL:-info}" \
      -tls-cert "$tls/m$i.pem" -tls-key "$tls/m$i-key.pem" -tls-ca "$ca" \
      >"$dir/m$i.stdout" 2>"$dir/m$i.log" &
    echo $! >"$dir/m$i.pid"
  done
  for _ in $(seq 1 150); do
    if curl -fsS --cacert "$ca" "https://127.0.0.1:$((base + 1))/readyz" >/dev/null 2>&1; then
      echo "cluster ready: BERTH_ADDR=https://127.0.0.1:$((base + 1)),https://127.0.0.1:$((base + 2)),https://127.0.0.1:$((base + 3))"
      echo "               BERTH_CA_CERT=$ca"
      echo "superadmin: admin@berth.local / \$BERTH_BOOTSTRAP_ADMIN_PASSWORD (default Cluster-admin-1)"
      return 0
    fi
    sleep 0.2
  done
  echo "no leader after 30 s; see $dir/m*.log" >&2
  return 1
}

stop() {
  for i in 1 2 3; do
    if [ -f "$dir/m$i.pid" ]; then
      kill "$(cat "$dir/m$i.pid")" 2>/dev/null || true
      rm -f "$dir/m$i.pid"
    fi
  done
}

status() {
  for i in 1 2 3; do
    printf 'm%s (https://127.0.0.1:%s): ' "$i" "$((base + i))"
    curl -fsS --cacert "$ca" "https://127.0.0.1:$((base + i))/healthz" 2>/dev/null || echo "down"
    echo
  done
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
