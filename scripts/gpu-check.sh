#!/usr/bin/env bash
# Proves fractional GPUs on a real NVIDIA machine: a one-node Berth (manager,
# agent, a private containerd) starts two sessions of 0.5 GPU each and a CUDA
# probe in each shows that it sees its half: the memory CUDA reports free is
# at most its cap, memory within the cap can be allocated and memory beyond it
# cannot. The GPU machine needs an NVIDIA driver (nvidia-smi, libcuda.so.1) and
# root; it needs no Go, containerd, busybox or network. Two steps:
#
#   scripts/gpu-check.sh bundle OUT_DIR     (on a build machine, e.g. this one)
#       builds bin/berth-manager, bin/berth-agent, bin/berth and the probe
#       (tools/cudaprobe), copies containerd, containerd-shim-runc-v2, runc and
#       ctr from this machine's PATH, builds the image berth/gpu-probe:latest
#       (the base image plus the probe and the C library it and libcuda need,
#       from this machine) and copies this script and scripts/containerd.sh.
#   OUT_DIR/scripts/gpu-check.sh run OUT_DIR     (as root on the GPU machine)
#
# Binaries can also be named one by one (run mode): BERTH_MANAGER,
# BERTH_AGENT, BERTH_CLI, PROBE_IMAGE (the image tarball), CONTAINERD_BIN_DIR
# (containerd, containerd-shim-runc-v2, runc, ctr). Other settings:
#   GPU_CHECK_PORT   manager HTTP port (default 18480; the agent uses +1, Raft +2)
#   GPU_CHECK_KEEP=1 leave everything running at the end (for a look around)
#   GPU_CHECK_FAKE=1 no NVIDIA needed: the agent runs with -fake-gpus 1 and
#                    the check stops after the sessions' environments (tests
#                    the script's plumbing only)
# The verdict is the last line: "gpu-check: PASS" (exit 0) or
# "gpu-check: FAIL: ..." (exit 1). Work files stay in the printed directory.
set -euo pipefail
export LC_ALL=C

usage() {
  sed -n '2,27p' "$0" >&2
  exit 2
}
[ $# -eq 2 ] || usage
mode=$1
dir=$(cd "$2" 2>/dev/null && pwd || { mkdir -p "$2" && cd "$2" && pwd; })
here=$(cd "$(dirname "$0")" && pwd)

bundle() {
  local repo=$here/..
  command -v go >/dev/null || { echo "bundle needs Go" >&2; exit 1; }
  mkdir -p "$dir/bin" "$dir/scripts"
  (
    cd "$repo"
    make build >/dev/null
    cp bin/berth-manager bin/berth-agent bin/berth "$dir/bin/"
    CGO_ENABLED=1 go build -o "$dir/bin/cudaprobe" ./tools/cudaprobe
  )
  local c
  for c in containerd containerd-shim-runc-v2 runc ctr; do
    cp "$(command -v "$c")" "$dir/bin/" || { echo "$c is not installed here" >&2; exit 1; }
  done
  cp "$repo/scripts/gpu-check.sh" "$repo/scripts/containerd.sh" "$dir/scripts/"

  # The probe image: the probe, and the dynamic loader and C library of this
  # machine (the probe was linked against them; libcuda.so.1, mounted from
  # the GPU machine by the agent, needs no newer ones).
  local extra lib libdir
  extra=$(mktemp -d)
  trap 'rm -rf "$extra"' RETURN
  mkdir -p "$extra/usr/local/bin"
  cp "$dir/bin/cudaprobe" "$extra/usr/local/bin/cudaprobe"
  libdir=""
  for lib in $(ldd "$dir/bin/cudaprobe" | grep -o '/[^ ]*'); do
    mkdir -p "$extra$(dirname "$lib")"
    cp -L "$lib" "$extra$lib"
    case "$lib" in */libc.so.*) libdir=$(dirname "$lib") ;; esac
  done
  [ -n "$libdir" ] || { echo "ldd names no libc for the probe" >&2; exit 1; }
  for lib in libm.so.6 libdl.so.2 libpthread.so.0 librt.so.1; do
    [ -e "$libdir/$lib" ] && cp -L "$libdir/$lib" "$extra$libdir/$lib"
  done
  BERTH_IMAGE_NAME=berth/gpu-probe:latest BERTH_IMAGE_EXTRA=$extra "$repo/scripts/build-base-image.sh" "$dir/gpu-probe.tar"
  echo "bundle ready in $dir; on the GPU machine, as root: $dir/scripts/gpu-check.sh run $dir"
}

# ---- run mode ---------------------------------------------------------------

fail() {
  echo "gpu-check: FAIL: $*"
  exit 1
}

run() {
  local fake=${GPU_CHECK_FAKE:-}
  local manager=${BERTH_MANAGER:-$dir/bin/berth-manager} agent=${BERTH_AGENT:-$dir/bin/berth-agent} cli=${BERTH_CLI:-$dir/bin/berth}
  local image=${PROBE_IMAGE:-$dir/gpu-probe.tar} cbin=${CONTAINERD_BIN_DIR:-$dir/bin}
  local port=${GPU_CHECK_PORT:-18480}
  [ "$(id -u)" = 0 ] || fail "run needs root (containerd, device nodes, MPS)"
  local f
  for f in "$manager" "$agent" "$cli" "$cbin/containerd" "$cbin/containerd-shim-runc-v2" "$cbin/runc" "$cbin/ctr"; do
    [ -x "$f" ] || fail "$f is missing (scripts/gpu-check.sh bundle DIR makes it)"
  done
  [ -s "$image" ] || fail "$image is missing (scripts/gpu-check.sh bundle DIR makes it)"
  export PATH="$cbin:$PATH"
  local gpu_mem_mib=40960
  if [ -z "$fake" ]; then
    command -v nvidia-smi >/dev/null || fail "nvidia-smi not found: is the NVIDIA driver installed?"
    nvidia-smi -L || fail "nvidia-smi sees no GPU"
    gpu_mem_mib=$(nvidia-smi --query-gpu=memory.total --format=csv,noheader,nounits -i 0 | tr -d ' ')
    nvidia-smi --query-gpu=driver_version,compute_mode --format=csv -i 0 || true
  fi

  # Short paths: containerd's and MPS's sockets live under them.
  work=$(mktemp -d /tmp/bgcXXXX)
  echo "gpu-check: work files in $work"
  mkdir -p "$work/manager" "$work/agent" "$work/mps"
  export BERTH_CONFIG=$work/credentials.json
  export BERTH_ADDR=http://127.0.0.1:$port
  local password=Gpu-check-1 token_file=$work/agent-token
  # The agents' token goes by file: ps shows command lines to everyone.
  (umask 077 && head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$token_file")
  trap cleanup EXIT

  "$here/containerd.sh" start "$work/ctrd" || fail "containerd did not start"
  sock=$work/ctrd/containerd.sock
  "$agent" image import -containerd "$sock" "$image" || fail "image import"

  BERTH_BOOTSTRAP_ADMIN_PASSWORD=$password "$manager" -dev -node-id gpucheck -http-addr "127.0.0.1:$port" \
    -data-dir "$work/manager" -agent-token-file "$token_file" -log-level info \
    >"$work/manager/stdout.log" 2>"$work/manager/manager.log" &
  manager_pid=$!
  local fake_flag=()
  [ -z "$fake" ] || fake_flag=(-fake-gpus 1)
  # -cni-bin-dir '': the GPU machine needs no CNI plugins or iptables; the
  # check is about GPUs, and its sessions need no network.
  "$agent" -manager "$BERTH_ADDR" -token-file "$token_file" -state-dir "$work/agent" -containerd "$sock" -runc-root "$work/ctrd/runc" -cni-bin-dir '' \
    -http-addr "127.0.0.1:$((port + 1))" -reserved-cpu 0 -reserved-mem 256MiB -gpu-mps-dir "$work/mps" -log-level debug \
    "${fake_flag[@]}" >"$work/agent/stdout.log" 2>"$work/agent/agent.log" &
  agent_pid=$!

  local i
  for i in $(seq 1 150); do
    "$cli" login -e admin@berth.local -p "$password" >/dev/null 2>&1 && break
    kill -0 "$manager_pid" 2>/dev/null || { tail -n 20 "$work/manager/manager.log"; fail "the manager exited"; }
    sleep 0.2
  done
  for i in $(seq 1 150); do
    "$cli" -o json agent list 2>/dev/null | grep -q '"ALIVE"' && break
    kill -0 "$agent_pid" 2>/dev/null || { tail -n 20 "$work/agent/agent.log"; fail "the agent exited"; }
    sleep 0.2
    [ "$i" != 150 ] || fail "the agent did not become ALIVE; see $work/agent/agent.log"
  done
  grep -m1 '"msg":"GPUs"' "$work/agent/agent.log" || fail "the agent found no GPUs; see $work/agent/agent.log"
  "$cli" agent list || true

  # Two sessions of half a GPU each.
  local ids=() id
  for i in 1 2; do
    id=$("$cli" -o json session start --name "gpu-check-$i" --image berth/gpu-probe:latest --cpu 0.5 --mem 256MiB --fgpu 0.5 \
      --env LD_LIBRARY_PATH=/usr/local/nvidia/lib64:/usr/lib/x86_64-linux-gnu:/usr/lib64:/usr/lib/aarch64-linux-gnu \
      -- sleep 3600 | sed -n 's/^  "id": "\([^"]*\)".*/\1/p' | head -n1)
    [ -n "$id" ] || fail "session $i was not created"
    ids+=("$id")
  done
  for id in "${ids[@]}"; do
    for i in $(seq 1 300); do
      status=$("$cli" -o json session get "$id" | sed -n 's/^  "status": "\([^"]*\)".*/\1/p' | head -n1)
      [ "$status" = RUNNING ] && break
      case "$status" in ERROR | TERMINATED | CANCELLED) "$cli" session get "$id"; fail "session $id is $status" ;; esac
      sleep 0.2
    done
    [ "$status" = RUNNING ] || { "$cli" session get "$id"; fail "session $id is $status, not RUNNING"; }
  done

  local cap=$((gpu_mem_mib / 2 * 1048576)) verdict="" uuids=()
  for id in "${ids[@]}"; do
    echo "--- session $id"
    env_out=$("$cli" session exec "$id" -- env) || fail "exec env in $id"
    echo "$env_out" | grep -E '^(NVIDIA_VISIBLE_DEVICES|CUDA_VISIBLE_DEVICES|CUDA_MPS_[A-Z_]*|BERTH_FAKE_GPUS)='
    uuids+=("$(echo "$env_out" | sed -n 's/^CUDA_VISIBLE_DEVICES=//p')")
    echo "$env_out" | grep -q '^CUDA_MPS_ACTIVE_THREAD_PERCENTAGE=50$' || verdict+=" $id: no 50% thread limit;"
    echo "$env_out" | grep -q "^CUDA_MPS_PINNED_DEVICE_MEM_LIMIT=0=$((gpu_mem_mib / 2))M$" || verdict+=" $id: no memory limit of $((gpu_mem_mib / 2))M;"
    [ -n "$fake" ] && continue
    # Within the cap: half of it. Beyond: the cap and 512 MiB more.
    within=$("$cli" session exec "$id" -- /usr/local/bin/cudaprobe -alloc $((cap / 2))) || { echo "$within"; verdict+=" $id: the probe failed;"; continue; }
    beyond=$("$cli" session exec "$id" -- /usr/local/bin/cudaprobe -alloc $((cap + 536870912))) || { echo "$beyond"; verdict+=" $id: the probe failed;"; continue; }
    echo "$within"
    echo "$beyond" | grep '^alloc'
    # Under MPS, CUDA reports the device's total; the pinned limit shows in
    # what it reports free (measured on an H200, driver 580).
    free=$(echo "$within" | sed -n 's/^free_bytes=//p')
    [ -n "$free" ] && [ "$free" -le $((cap + 67108864)) ] || verdict+=" $id: CUDA reports $free bytes free, more than its cap of $cap;"
    echo "$within" | grep -q ' alloc=ok$' || verdict+=" $id: could not allocate half of its cap;"
    echo "$beyond" | grep -q ' alloc=failed' || verdict+=" $id: allocated beyond its cap;"
  done
  [ "${uuids[0]}" = "${uuids[1]}" ] || echo "note: the sessions are on different GPUs (${uuids[0]}, ${uuids[1]}); each cap is still checked"
  if [ -z "$fake" ]; then
    echo "--- nvidia-smi (the MPS server and its clients)"
    nvidia-smi || true
  fi
  echo "--- agent GPU metrics"
  curl -fsS "http://127.0.0.1:$((port + 1))/metrics" 2>/dev/null | grep '^berth_agent_gpu\|^berth_agent_used_gpu' || true
  [ -z "$verdict" ] || fail "$verdict"
  echo "gpu-check: PASS"
}

cleanup() {
  local rc=$?
  if [ -n "${GPU_CHECK_KEEP:-}" ]; then
    echo "GPU_CHECK_KEEP: left running (manager $manager_pid, agent $agent_pid, containerd in $work/ctrd)"
    return $rc
  fi
  [ -z "${agent_pid:-}" ] || { kill "$agent_pid" 2>/dev/null || true; wait "$agent_pid" 2>/dev/null || true; }
  [ -z "${manager_pid:-}" ] || { kill "$manager_pid" 2>/dev/null || true; wait "$manager_pid" 2>/dev/null || true; }
  "$here/containerd.sh" stop "$work/ctrd" >/dev/null 2>&1 || true
  # The agent leaves MPS daemons running for its containers; none is left.
  local pipe
  for pipe in "$work"/mps/*/pipe; do
    [ -d "$pipe" ] || continue
    echo quit | CUDA_MPS_PIPE_DIRECTORY=$pipe nvidia-cuda-mps-control >/dev/null 2>&1 || true
  done
  return $rc
}

case "$mode" in
  bundle) bundle ;;
  run) run ;;
  *) usage ;;
esac
