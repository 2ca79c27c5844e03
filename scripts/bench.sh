#!/usr/bin/env bash
# make bench: runs every Go benchmark of the module and the failover
# measurement with the real binaries, and writes the figures as a table into
# docs/BENCHMARKS.md between the "bench:begin" and "bench:end" markers, with
# the machine and the date. The hand-written sections of that file (what each
# figure means, earlier runs) are left as they are.
#   BENCHTIME   go test -benchtime (default 1s); admission and API load use
#               fixed counts (BENCH_SESSIONS, default 20000; BENCH_REQUESTS,
#               default 5000) so runs compare.
#   BENCH_OUT   where the raw output goes (default .berth-dev/bench.txt)
#   BENCH_REUSE=1  write the table from an earlier run's raw output only
#   BENCH_GO=0  skip the Go benchmarks and the failover measurement
#   BENCH_SIM=0 skip the simulated-agent runs (scripts/bench-sim.sh): a dev
#               manager with BENCH_SIM_AGENTS (default 1000) simulated
#               agents, berth bench sessions -n BENCH_SIM_SESSIONS (20000)
#               -c BENCH_SIM_CONC (64) to RUNNING and to SCHEDULED, and the
#               manager's CPU for the heartbeats of BENCH_SIM_HB_AGENTS
#               (5000) agents over 60 s; and the churn of issue 22:
#               BENCH_SIM_CHURN (100000; 0 skips it) batch sessions of 2 s
#               through the API on 100 simulated agents with
#               -session-retention 1m, the sessions held and the heap
#               sampled as they come and go
#   BENCH_DOC   the file the table goes into (default docs/BENCHMARKS.md)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin:/usr/sbin:/sbin"
tags=no_dynamic_plugins
benchtime=${BENCHTIME:-1s}
sessions=${BENCH_SESSIONS:-20000}
requests=${BENCH_REQUESTS:-5000}
out=${BENCH_OUT:-.berth-dev/bench.txt}
mkdir -p "$(dirname "$out")"
if [ -z "${BENCH_REUSE:-}" ]; then
: >"$out"
if [ "${BENCH_GO:-1}" != 0 ]; then

run() { # run PKG REGEX BENCHTIME
  echo "== go test -bench '$2' -benchtime $3 $1" | tee -a "$out" >&2
  go test -tags "$tags" -run '^$' -bench "$2" -benchtime "$3" -benchmem -timeout 30m "$1" 2>&1 | tee -a "$out" >&2
}
for pkg in $(go list ./...); do
  case $pkg in
  */manager/server)
    run "$pkg" '^Benchmark(CreateUser|WhoAmI|People100k|SessionCreateLatency)$' "$benchtime"
    run "$pkg" '^BenchmarkAdmission(OneManager)?$' "${sessions}x"
    run "$pkg" '^BenchmarkAPILatencyUnderLoad$' "${requests}x"
    ;;
  *)
    if grep -qs '^func Benchmark' "$(go list -f '{{.Dir}}' "$pkg")"/*_test.go; then
      run "$pkg" . "$benchtime"
    fi
    ;;
  esac
done

if command -v bc >/dev/null && make build >/dev/null 2>&1; then
  for i in 1 2 3; do
    BERTH_CLUSTER_DIR=$(mktemp -d) scripts/failover.sh 2>/dev/null | grep '^failover:' >>"$out" || true
  done
fi
fi # BENCH_GO

# Simulated agents through the real binaries (make build above, or now).
if [ "${BENCH_SIM:-1}" != 0 ] && command -v bc >/dev/null && command -v curl >/dev/null && make build >/dev/null 2>&1; then
  sim_agents=${BENCH_SIM_AGENTS:-1000}
  for wait in running scheduled; do
    echo "== scripts/bench-sim.sh sessions $sim_agents ${BENCH_SIM_SESSIONS:-20000} ${BENCH_SIM_CONC:-64} $wait" >&2
    scripts/bench-sim.sh sessions "$sim_agents" "${BENCH_SIM_SESSIONS:-20000}" "${BENCH_SIM_CONC:-64}" "$wait" 2>&1 |
      tee /dev/stderr | grep '^bench-sim:' >>"$out" || true
  done
  echo "== scripts/bench-sim.sh heartbeats ${BENCH_SIM_HB_AGENTS:-5000} 60" >&2
  scripts/bench-sim.sh heartbeats "${BENCH_SIM_HB_AGENTS:-5000}" 60 2>&1 | tee /dev/stderr | grep '^bench-sim:' >>"$out" || true
  if [ "${BENCH_SIM_CHURN:-100000}" != 0 ]; then
    echo "== scripts/bench-sim.sh churn 100 ${BENCH_SIM_CHURN:-100000} 64 1m" >&2
    scripts/bench-sim.sh churn 100 "${BENCH_SIM_CHURN:-100000}" 64 1m 2>&1 | tee /dev/stderr | grep '^bench-sim:' >>"$out" || true
  fi
fi
fi # BENCH_REUSE
failover=$(sed -n 's/^failover: .*acknowledged \([0-9.]*\) s after.*/\1/p' "$out" | awk '{printf "%s%.2f s", (NR > 1 ? ", " : ""), $1}')

# The table: one row per benchmark, ns/op as ms plus every custom metric.
table=$(awk '
  /^pkg: / { pkg = $2; sub(/.*berth\//, "", pkg) }
  /^Benchmark/ {
    name = $1; sub(/-[0-9]+$/, "", name)
    extra = ""
    for (i = 3; i + 1 <= NF; i += 2) {
      v = $i; u = $(i + 1)
      if (u == "ns/op") {
        if (v < 1e3) extra = extra sprintf("%.1f ns/op", v)
        else if (v < 1e6) extra = extra sprintf("%.1f µs/op", v / 1e3)
        else extra = extra sprintf("%.1f ms/op", v / 1e6)
      }
      else if (u == "B/op" || u == "allocs/op") { continue }
      else { extra = extra sprintf("%s %s", v, u) }
      extra = extra "; "
    }
    sub(/; $/, "", extra)
    printf "| %s | %s | %s |\n", pkg, name, extra
  }' "$out")

# One row per simulated-agent run: what was run, then its figures.
simrows=$(awk '
  /^bench-sim: / {
    delete f
    for (i = 3; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
    if ($2 == "sessions") {
      what = sprintf("%s simulated agents, %s sessions by %s callers, to %s", f["agents"], f["n"], f["conc"], toupper(f["wait"]))
      figs = sprintf("%s sessions/s (%s reached, %s failed); create → state p50 %s / p90 %s / p99 %s ms; manager %s cores, agents %s cores; heartbeats %s/s, desired queries %s/s, Raft entries %s/s; load %s",
        f["sessions_per_s"], f["reached"], f["failed"], f["p50_ms"], f["p90_ms"], f["p99_ms"], f["manager_cores"], f["agents_cores"],
        f["heartbeats_per_s"], f["desired_per_s"], f["raft_entries_per_s"], f["load"])
    } else if ($2 == "churn") {
      what = sprintf("%s simulated agents, %s batch sessions of 2 s by %s callers, -session-retention %s", f["agents"], f["n"], f["conc"], f["retention"])
      figs = sprintf("%s sessions/s (%s created, %s refused) in %s s; sessions held %s at the middle, at most %s, %s at the end; heap %s MiB at the start, %s at the middle, at most %s, %s at the end; snapshot %s MiB; manager %s cores; load %s",
        f["sessions_per_s"], f["created"], f["create_errors"], f["wall_s"], f["held_half"], f["held_max"], f["held_end"], f["heap_mib_start"], f["heap_mib_half"], f["heap_mib_max"], f["heap_mib_end"],
        f["snapshot_mib"], f["manager_cores"], f["load"])
    } else {
      what = sprintf("%s simulated agents heartbeating every 3 s, no sessions, %s s", f["agents"], f["seconds"])
      figs = sprintf("manager %s cores, agents %s cores; heartbeats %s/s, desired queries %s/s, Raft entries %s/s; load %s",
        f["manager_cores"], f["agents_cores"], f["heartbeats_per_s"], f["desired_per_s"], f["raft_entries_per_s"], f["load"])
    }
    printf "| scripts/bench-sim.sh | %s | %s |\n", what, figs
  }' "$out")
if [ -z "$table" ]; then
  table=$simrows
elif [ -n "$simrows" ]; then
  table=$(printf '%s\n%s' "$table" "$simrows")
fi

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
cores=$(nproc)
mem=$(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)
section=$(cat <<MD
<!-- bench:begin (written by make bench; edit the script, not this) -->
## Latest \`make bench\` run

$(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown): ${cpu}, ${cores} cores, ${mem},
$(go version | awk '{print $3}'), $(grep -m1 '^PRETTY_NAME' /etc/os-release | cut -d'"' -f2). Admission with
${sessions} sessions, API load with ${requests} requests; everything else \`-benchtime ${benchtime}\`.
Leader failover (\`scripts/failover.sh\`, kill -9 of the leader to the next acknowledged write): ${failover:-not measured (needs bc; BENCH_GO=0 skips it)}.

| package | benchmark | figures |
|---|---|---|
${table}
<!-- bench:end -->
MD
)
doc=${BENCH_DOC:-docs/BENCHMARKS.md}
if grep -q 'bench:begin' "$doc"; then
  awk -v s="$section" '
    /bench:begin/ { print s; skip = 1; next }
    /bench:end/ { skip = 0; next }
    !skip { print }' "$doc" >"$doc.tmp" && mv "$doc.tmp" "$doc"
else
  printf '\n%s\n' "$section" >>"$doc"
fi
echo "wrote the table to $doc (raw output: $out)" >&2
