#!/usr/bin/env bash
# Installs what building and testing Berth needs on a fresh Debian bookworm
# machine, from Debian's packages. Idempotent: installs only what is missing.
set -euo pipefail

# runc is in /usr/sbin, which a non-login PATH may lack.
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

# command:package pairs the build and the test suite use.
need=(
  "gcc:gcc"
  "make:make"
  "git:git"
  "curl:curl"
  # The agent's tests run a private containerd (scripts/containerd.sh,
  # docs/CONTAINERD.md); the system's, if any, is never used.
  "containerd:containerd"
  "containerd-shim-runc-v2:containerd"
  "ctr:containerd"
  "runc:runc"
  # The reliability suite puts each manager in a network namespace of its
  # own (manager/chaos).
  "ip:iproute2"
  # The web console's browser tests (manager/console) drive Debian's
  # chromium headless.
  "chromium:chromium"
  # The agent's project quota tests label folders on a loop-mounted XFS
  # (agent/fsquota).
  "mkfs.xfs:xfsprogs"
  # Session networks keep sessions apart with the agent's own iptables
  # chains (agent/network); nf_tables or legacy, whichever iptables is.
  "iptables:iptables"
  "iptables-restore:iptables"
  "nsenter:util-linux"
  # The image pull tests run a real registry on a loopback port
  # (shared/registrytest: the CNCF distribution registry 2.8); its htpasswd
  # files are made in Go (bcrypt), so apache2-utils is not needed.
  "docker-registry:docker-registry"
  # Nothing for the console's terminal: xterm.js is vendored and committed
  # (scripts/vendor-xterm.sh, which alone needs npm and openssl).
)

missing=()
add() { [[ " ${missing[*]} " == *" $1 "* ]] || missing+=("$1"); }
for pair in "${need[@]}"; do
  cmd=${pair%%:*}
  pkg=${pair#*:}
  command -v "$cmd" >/dev/null 2>&1 || add "$pkg"
done
# busybox-static provides /bin/busybox, the only program of the base image
# (scripts/build-base-image.sh). It must be statically linked: Debian's
# "busybox" package (dynamic) provides the same path, and busybox-static
# replaces it.
if [ ! -x /bin/busybox ] || ldd /bin/busybox >/dev/null 2>&1; then
  add busybox-static
fi

# The CNI plugins of session networks (bridge, host-local, loopback, ...)
# live in /usr/lib/cni, outside PATH: the agent's -cni-bin-dir default.
for plugin in bridge host-local loopback; do
  [ -x "/usr/lib/cni/$plugin" ] || add containernetworking-plugins
done

if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if ! command -v go >/dev/null 2>&1; then
  if [ -x /usr/local/go/bin/go ]; then
    echo "go is at /usr/local/go/bin; add it to PATH" >&2
  else
    echo "Go 1.26 is required (https://go.dev/dl); it is not a Debian bookworm package" >&2
  fi
  exit 1
fi
