#!/usr/bin/env bash
# Installs what building and testing Berth needs on a fresh Debian bookworm
# machine, from Debian's packages. Idempotent: installs only what is missing.
set -euo pipefail

# command:package pairs the build and the test suite use. Later parts of the
# system add theirs here (containerd, runc, busybox-static, chromium).
need=(
  "gcc:gcc"
  "make:make"
  "git:git"
  "curl:curl"
)

missing=()
for pair in "${need[@]}"; do
  cmd=${pair%%:*}
  pkg=${pair#*:}
  command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
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
