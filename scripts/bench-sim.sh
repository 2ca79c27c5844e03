#!/usr/bin/env bash
# Scale figures with simulated agents, through the real binaries and the
# public API: a dev manager started with -allow-simulated-agents, one
# berth-agent process running AGENTS simulated agents (-runtime sim
# -sim-count AGENTS), and then
#
#   scripts/bench-sim.sh sessions AGENTS N CONC [running|scheduled]
#       berth bench sessions -n N -c CONC: sessions/s and create → state
#       percentiles, with the manager's CPU over the run;
#   scripts/bench-sim.sh heartbeats AGENTS SECONDS
#       no sessions: the manager's CPU over SECONDS while the agents
#       heartbeat every 3 s (and hold their desired-state queries open);
#   scripts/bench-sim.sh churn AGENTS N CONC [RETENTION]
#       a manager with -session-retention RETENTION (minutes, default 1m)
#       and berth bench sessions -n N -c CONC --wait scheduled --keep of batch sessions
#       that run `sleep 2`: every 10 s the sessions the manager holds (the
#       sum of berth_sessions) and its heap, at the middle, the most and the last
#       of each (the last once the retention and a collection round have
#       passed after the run), and then the size of a snapshot (berth
#       operator snapshot save). The bench's reached and failed are not
#       reported: most sessions are collected before it reads them back.
#
# The manager's CPU is read from /proc/PID/stat (user + system time) over
# the measured span, in cores. Each run ends with one line starting
# "bench-sim:" (what make bench records); everything lives in a temporary
# directory (BENCH_SIM_DIR to choose one), removed at the end unless
# BENCH_SIM_KEEP=1. BENCH_SIM_PROFILE=DIR runs a manager built with -tags
# pprof and saves a CPU profile of it over (at most 30 s of) the measured
# span: go tool pprof -top DIR/manager-MODE-AGENTS.pprof (churn: a heap
# profile at the end, DIR/manager-churn-heap.pprof).
# Needs bin/ (make build), curl, bc.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:?usage: scripts/bench-sim.sh sessions AGENTS N CONC [running|scheduled] | heartbeats AGENTS SECONDS | churn AGENTS N CONC [RETENTION]}
agents=${2:?how many simulated agents}
http=${BENCH_SIM_HTTP:-127.0.0.1:18080}
dir=${BENCH_SIM_DIR:-$(mktemp -d /tmp/berth-bench-sim.XXXXXX)}
mkdir -p "$dir/manager" "$dir/agents"
pids=()
cleanup() {
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[$i]}" 2>/dev/null || true
    wait "${pids[$i]}" 2>/dev/null || true
  done
  [ -n "${BENCH_SIM_KEEP:-}" ] || rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

(umask 077 && head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$dir/agent-token")
password="Bench-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export BERTH_BOOTSTRAP_ADMIN_PASSWORD=$password
manager_bin=bin/berth-manager
pprof_addr=${BENCH_SIM_PPROF:-127.0.0.1:18081}
if [ -n "${BENCH_SIM_PROFILE:-}" ]; then
  manager_bin=$dir/berth-manager-pprof
  go build -tags no_dynamic_plugins,pprof -o "$manager_bin" ./manager/cmd/berth-manager
  export BERTH_PPROF_ADDR=$pprof_addr
fi
manager_flags=()
if [ "$mode" = churn ]; then
  manager_flags+=(-session-retention "${5:-1m}")
fi
"$manager_bin" -dev -node-id dev -http-addr "$http" -data-dir "$dir/manager" -agent-token-file "$dir/agent-token" \
  -allow-simulated-agents -log-level warn "${manager_flags[@]}" >"$dir/manager/stdout.log" 2>"$dir/manager/manager.log" &
manager=$!
pids+=("$manager")
for _ in $(seq 1 150); do
  curl -fsS "http://$http/readyz" >/dev/null 2>&1 && break
  kill -0 "$manager" 2>/dev/null || { tail -n 20 "$dir/manager/manager.log" >&2; exit 1; }
  sleep 0.2
done
export BERTH_ADDR=http://$http BERTH_CONFIG=$dir/credentials.json BERTH_PASSWORD=$password
bin/berth login -e admin@berth.local >/dev/null
token=$(sed -n 's/.*"token": *"\([^"]*\)".*/\1/p' "$dir/credentials.json")

bin/berth-agent -runtime sim -sim-count "$agents" -manager "http://$http" -token-file "$dir/agent-token" \
  -state-dir "$dir/agents" -http-addr 127.0.0.1:0 -log-level warn >"$dir/agents/stdout.log" 2>"$dir/agents/agents.log" &
agents_pid=$!
pids+=("$agents_pid")
started=$(date +%s.%N)
alive=0
for _ in $(seq 1 600); do
  alive=$(curl -fsS -H "Authorization: Bearer $token" "http://$http/v1/info" | sed -n 's/.*"alive": *\([0-9]*\).*/\1/p')
  [ "${alive:-0}" -ge "$agents" ] && break
  sleep 0.5
done
if [ "${alive:-0}" -lt "$agents" ]; then
  echo "only ${alive:-0} of $agents simulated agents became ALIVE; see $dir/agents/agents.log" >&2
  exit 1
fi
joined=$(echo "$(date +%s.%N) - $started" | bc)
# Let the registrations' writes and the first round of heartbeats settle.
sleep "${BENCH_SIM_SETTLE:-10}"

# What the manager served and applied: requests of the agents' two routes
# (as counted by its /metrics) and the Raft index, read before and after.
counts() { # → "heartbeats desired raft_index"
  local m hb ds idx
  m=$(curl -fsS "http://$http/metrics")
  hb=$(printf '%s\n' "$m" | awk '/^berth_http_requests_total\{.*route="\/v1\/agents\/\{id\}\/heartbeat"/ {s += $NF} END {printf "%d", s}')
  ds=$(printf '%s\n' "$m" | awk '/^berth_http_requests_total\{.*route="\/v1\/agents\/\{id\}\/desired"/ {s += $NF} END {printf "%d", s}')
  idx=$(curl -fsS -H "Authorization: Bearer $token" "http://$http/v1/info" | sed -n 's/.*"raft_index": *\([0-9]*\).*/\1/p')
  echo "$hb $ds ${idx:-0}"
}
rates() { # BEFORE AFTER SECONDS → "heartbeats_per_s=… desired_per_s=… raft_entries_per_s=…"
  read -r h0 d0 i0 <<<"$1"
  read -r h1 d1 i1 <<<"$2"
  echo "heartbeats_per_s=$(echo "scale=1; ($h1 - $h0) / $3" | bc) desired_per_s=$(echo "scale=1; ($d1 - $d0) / $3" | bc)" \
    "raft_entries_per_s=$(echo "scale=1; ($i1 - $i0) / $3" | bc)"
}

ticks=$(getconf CLK_TCK)
cpu_of() { awk '{print $14 + $15}' "/proc/$1/stat"; }
profile() { # seconds
  [ -n "${BENCH_SIM_PROFILE:-}" ] || return 0
  mkdir -p "$BENCH_SIM_PROFILE"
  curl -fsS "http://$pprof_addr/debug/pprof/profile?seconds=$1" -o "$BENCH_SIM_PROFILE/manager-$mode-$agents.pprof" ||
    echo "no CPU profile of the manager" >&2
}

case $mode in
sessions)
  n=${3:?how many sessions}
  conc=${4:?how many concurrent callers}
  wait=${5:-running}
  profile 30 &
  prof=$!
  k0=$(counts)
  c0=$(cpu_of "$manager")
  a0=$(cpu_of "$agents_pid")
  t0=$(date +%s.%N)
  bin/berth bench sessions -n "$n" -c "$conc" --wait "$wait" -o json >"$dir/bench.json" 2>"$dir/bench.err" || {
    cat "$dir/bench.err" >&2
  }
  t1=$(date +%s.%N)
  c1=$(cpu_of "$manager")
  a1=$(cpu_of "$agents_pid")
  k1=$(counts)
  wait "$prof" 2>/dev/null || true
  cores=$(echo "scale=3; ($c1 - $c0) / $ticks / ($t1 - $t0)" | bc)
  agent_cores=$(echo "scale=3; ($a1 - $a0) / $ticks / ($t1 - $t0)" | bc)
  field() { sed -n "s/.*\"$1\": *\([0-9.e+-]*\).*/\1/p" "$dir/bench.json" | head -1; }
  p() { tr -d '\n ' <"$dir/bench.json" | sed -n "s/.*\"latency_ms\":{[^}]*\"$1\":\([0-9.]*\).*/\1/p"; }
  if grep -q '"first_error"' "$dir/bench.json"; then
    echo "first error: $(sed -n 's/.*"first_error": *"\(.*\)",*$/\1/p' "$dir/bench.json")" >&2
  fi
  echo "bench-sim: sessions agents=$agents n=$n conc=$conc wait=$wait reached=$(field reached) failed=$(field failed) create_errors=$(field create_errors)" \
    "sessions_per_s=$(field sessions_per_second) creates_per_s=$(field creates_per_second) wall_s=$(field wall_seconds)" \
    "p50_ms=$(p p50) p90_ms=$(p p90) p99_ms=$(p p99) max_ms=$(p max) manager_cores=$cores agents_cores=$agent_cores" \
    "$(rates "$k0" "$k1" "$(echo "$t1 - $t0" | bc)")" \
    "load=$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' /) joined_s=$joined"
  ;;
heartbeats)
  seconds=${3:?for how many seconds}
  profile "$((seconds < 30 ? seconds : 30))" &
  prof=$!
  k0=$(counts)
  c0=$(cpu_of "$manager")
  a0=$(cpu_of "$agents_pid")
  t0=$(date +%s.%N)
  sleep "$seconds"
  t1=$(date +%s.%N)
  c1=$(cpu_of "$manager")
  a1=$(cpu_of "$agents_pid")
  k1=$(counts)
  wait "$prof" 2>/dev/null || true
  cores=$(echo "scale=3; ($c1 - $c0) / $ticks / ($t1 - $t0)" | bc)
  agent_cores=$(echo "scale=3; ($a1 - $a0) / $ticks / ($t1 - $t0)" | bc)
  echo "bench-sim: heartbeats agents=$agents seconds=$seconds manager_cores=$cores agents_cores=$agent_cores" \
    "$(rates "$k0" "$k1" "$(echo "$t1 - $t0" | bc)")" \
    "load=$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' /) joined_s=$joined"
  ;;
churn)
  n=${3:?how many sessions}
  conc=${4:?how many concurrent callers}
  retention=${5:-1m}
  case $retention in *m) ;; *)
    echo "churn: RETENTION in whole minutes, like 1m or 5m" >&2
    exit 2
    ;;
  esac
  # held: every session the manager holds (the sum of berth_sessions);
  # heap: the manager's heap objects, MiB (go_memstats_heap_alloc_bytes:
  # live objects and garbage not yet collected, so up to about twice the
  # live heap at GOGC=100).
  sample() {
    local m
    m=$(curl -fsS "http://$http/metrics")
    printf '%s\n' "$m" | awk '/^berth_sessions\{/ {h += $NF} /^go_memstats_heap_alloc_bytes / {b = $NF}
      END {printf "%d %.1f\n", h, b / 1048576}'
  }
  : >"$dir/samples"
  c0=$(cpu_of "$manager")
  t0=$(date +%s.%N)
  bin/berth bench sessions -n "$n" -c "$conc" --wait scheduled --type batch --keep --timeout 120m -o json -- sleep 2 \
    >"$dir/bench.json" 2>"$dir/bench.err" &
  bench=$!
  while kill -0 "$bench" 2>/dev/null; do
    sample >>"$dir/samples"
    sleep 10
  done
  wait "$bench" || cat "$dir/bench.err" >&2
  t1=$(date +%s.%N)
  # Past the retention and one collection round, what is held is what the
  # retention holds of the last sessions.
  sleep "$(( ${retention%m} * 60 + 70 ))"
  sample >>"$dir/samples"
  if [ -n "${BENCH_SIM_PROFILE:-}" ]; then
    # The live heap then (after a collection), by allocation site.
    mkdir -p "$BENCH_SIM_PROFILE"
    curl -fsS "http://$pprof_addr/debug/pprof/heap?gc=1" -o "$BENCH_SIM_PROFILE/manager-churn-heap.pprof" ||
      echo "no heap profile of the manager" >&2
  fi
  c1=$(cpu_of "$manager")
  bin/berth operator snapshot save "$dir/snapshot.bin" >/dev/null 2>&1 || true
  snap=$(stat -c %s "$dir/snapshot.bin" 2>/dev/null || echo 0)
  field() { sed -n "s/.*\"$1\": *\([0-9.e+-]*\).*/\1/p" "$dir/bench.json" | head -1; }
  read -r held_max heap_max <<<"$(awk '$1 > h {h = $1} $2 > b {b = $2} END {print h, b}' "$dir/samples")"
  read -r _ heap_start <<<"$(head -n 1 "$dir/samples")"
  # The middle of the run, to set beside its end: bounded means no higher.
  read -r held_half heap_half <<<"$(sed -n "$(( ($(wc -l <"$dir/samples") + 1) / 2 ))p" "$dir/samples")"
  read -r held_end heap_end <<<"$(tail -n 1 "$dir/samples")"
  wall=$(echo "scale=1; ($t1 - $t0) / 1" | bc)
  echo "bench-sim: churn agents=$agents n=$n conc=$conc retention=$retention created=$(field created) create_errors=$(field create_errors)" \
    "sessions_per_s=$(echo "scale=1; $(field created) / $wall" | bc) wall_s=$wall held_half=$held_half held_max=$held_max held_end=$held_end" \
    "heap_mib_start=$heap_start heap_mib_half=$heap_half heap_mib_max=$heap_max heap_mib_end=$heap_end snapshot_mib=$(echo "scale=1; $snap / 1048576" | bc)" \
    "manager_cores=$(echo "scale=3; ($c1 - $c0) / $ticks / ($(date +%s.%N) - $t0)" | bc) load=$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' /)"
  ;;
*)
  echo "unknown mode $mode" >&2
  exit 2
  ;;
esac
