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

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
cores=$(nproc)
mem=$(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)
section=$(cat <<MD
<!-- bench:begin (written by make bench; edit the script, not this) -->
## Latest \`make bench\` run

$(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown): ${cpu}, ${cores} cores, ${mem},
$(go version | awk '{print $3}'), $(grep -m1 '^PRETTY_NAME' /etc/os-release | cut -d'"' -f2). Admission with
${sessions} sessions, API load with ${requests} requests; everything else \`-benchtime ${benchtime}\`.
Leader failover (\`scripts/failover.sh\`, kill -9 of the leader to the next acknowledged write): ${failover:-not measured (needs bc)}.

| package | benchmark | figures |
|---|---|---|
${table}
<!-- bench:end -->
MD
)
doc=docs/BENCHMARKS.md
if grep -q 'bench:begin' "$doc"; then
  awk -v s="$section" '
    /bench:begin/ { print s; skip = 1; next }
    /bench:end/ { skip = 0; next }
    !skip { print }' "$doc" >"$doc.tmp" && mv "$doc.tmp" "$doc"
else
  printf '\n%s\n' "$section" >>"$doc"
fi
echo "wrote the table to $doc (raw output: $out)" >&2
