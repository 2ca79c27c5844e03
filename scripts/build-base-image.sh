#!/usr/bin/env bash
# Builds the OCI image berth/base:latest from Debian's busybox-static as an
# OCI image-layout tarball (docs/CONTAINERD.md):
#   scripts/build-base-image.sh OUT.tar
# No registry is needed: the image is one gzip layer holding /bin/busybox, a
# symlink per busybox applet in /bin, /usr/bin/env, /etc/passwd and /etc/group
# (root, work 1000, nobody), /root, /tmp (1777) and /home/work (the working directory).
# Config: no Entrypoint, Cmd ["/bin/sh"], Env PATH, WorkingDir /home/work.
# index.json names the manifest io.containerd.image.name=berth/base:latest
# (what containerd's importer, `ctr image import` and the Go client's Import,
# use as the image name) and org.opencontainers.image.ref.name=latest.
#
# The output is reproducible: fixed mtimes, owners and modes, sorted entries,
# `gzip -n`; the same busybox binary gives the same digest. Needs only bash,
# coreutils, tar, gzip and sha256sum. Environment:
#   BUSYBOX=/bin/busybox   the (static) busybox binary to use
#   SOURCE_DATE_EPOCH      the timestamp of every file and of the config (default 0)
#   BERTH_IMAGE_NAME       the image's name (default berth/base:latest)
#   BERTH_IMAGE_EXTRA      a directory whose contents are copied over the root
#                          filesystem (scripts/gpu-check.sh adds its probe so)
set -euo pipefail
export LC_ALL=C
umask 022

if [ $# -ne 1 ] || [ -z "$1" ]; then
  echo "usage: $0 OUT.tar" >&2
  exit 2
fi
out=$1
busybox=${BUSYBOX:-/bin/busybox}
epoch=${SOURCE_DATE_EPOCH:-0}
name=${BERTH_IMAGE_NAME:-berth/base:latest}
extra=${BERTH_IMAGE_EXTRA:-}

if [ ! -x "$busybox" ]; then
  echo "$busybox not found: install Debian's busybox-static (scripts/install-deps.sh)" >&2
  exit 1
fi
# A dynamically linked busybox (Debian's package "busybox") would not run in
# an image without a libc.
if ldd "$busybox" >/dev/null 2>&1; then
  echo "$busybox is dynamically linked: install Debian's busybox-static instead of busybox" >&2
  exit 1
fi

case "$(dpkg --print-architecture 2>/dev/null || uname -m)" in
  amd64 | x86_64) arch=amd64 ;;
  arm64 | aarch64) arch=arm64 ;;
  ppc64el | ppc64le) arch=ppc64le ;;
  s390x) arch=s390x ;;
  riscv64) arch=riscv64 ;;
  *) echo "unsupported architecture $(uname -m)" >&2; exit 1 ;;
esac
bbversion=""
if [ "$busybox" = /bin/busybox ]; then
  bbversion=$(dpkg-query -W -f='${Version}' busybox-static 2>/dev/null || true)
fi
created=$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The root filesystem.
root=$work/rootfs
mkdir -p "$root"/{bin,dev,etc,home/work,proc,root,sys,tmp,usr/bin,var/tmp}
chmod 0755 "$root" "$root"/{bin,dev,etc,home,home/work,proc,sys,usr,usr/bin,var}
chmod 0700 "$root/root"
chmod 1777 "$root/tmp" "$root/var/tmp"
cp "$busybox" "$root/bin/busybox"
chmod 0755 "$root/bin/busybox"
# (run as "busybox": it picks the applet from its name)
[ -n "$bbversion" ] || bbversion=$({ "$root/bin/busybox" --help 2>&1 || true; } | sed -n '1s/^BusyBox v\([^ ]*\).*/\1/p')
# A symlink per applet: busybox makes them in one process (270 `ln -s` are
# slow on a busy machine), pointing at its absolute path here, which the
# layer's tar rewrites to "busybox"; `ln -s` makes any it did not.
"$root/bin/busybox" --install -s "$root/bin" 2>/dev/null || true
for applet in $("$root/bin/busybox" --list | sort -u); do
  case "$applet" in
    busybox | */* | "") continue ;;
  esac
  [ -L "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
done
for applet in sh echo sleep cat ls env; do
  [ -L "$root/bin/$applet" ] || { echo "$busybox does not list the applet $applet" >&2; exit 1; }
done
ln -s ../../bin/busybox "$root/usr/bin/env"
if [ -n "$extra" ]; then
  [ -d "$extra" ] || { echo "BERTH_IMAGE_EXTRA=$extra is not a directory" >&2; exit 1; }
  cp -a "$extra"/. "$root"/
fi
# work (1000) is the user sessions run as by default (the agent's -container-uid).
printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'work:x:1000:1000:work:/home/work:/bin/sh' \
  'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' >"$root/etc/passwd"
printf '%s\n' 'root:x:0:' 'work:x:1000:' 'nogroup:x:65534:' >"$root/etc/group"
chmod 0644 "$root/etc/passwd" "$root/etc/group"

# deterministic_tar DIR OUT [TAR OPTION...]: a tar of DIR's contents, entries
# sorted by name, without "./", owned by 0:0, every mtime $epoch.
deterministic_tar() {
  local from=$1 to=$2
  shift 2
  (cd "$from" && find . -mindepth 1 -printf '%P\n' | sort) >"$work/list"
  tar --create --file "$to" --directory "$from" --format=gnu --no-recursion --verbatim-files-from \
    --files-from "$work/list" --owner=0 --group=0 --numeric-owner --mtime="@$epoch" "$@"
}

layout=$work/layout
blobs=$layout/blobs/sha256
mkdir -p "$blobs"

# Only symlink targets (flags RH: not member names, not hard link targets);
# the path is a basic regular expression.
re=$(printf '%s' "$root/bin/busybox" | sed 's/[][\.*^$|]/\\&/g')
deterministic_tar "$root" "$work/layer.tar" --transform="s|^$re\$|busybox|RH"
if tar --list --verbose --file "$work/layer.tar" | grep -qF -- "-> $root"; then
  echo "the layer has symlinks to $root" >&2
  exit 1
fi
diff_id=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
gzip -n -9 -c "$work/layer.tar" >"$work/layer.tar.gz"
layer_digest=$(sha256sum "$work/layer.tar.gz" | cut -d' ' -f1)
layer_size=$(stat -c %s "$work/layer.tar.gz")
mv "$work/layer.tar.gz" "$blobs/$layer_digest"

# put_blob FILE: moves FILE into blobs/ and prints "DIGEST SIZE".
put_blob() {
  local d s
  d=$(sha256sum "$1" | cut -d' ' -f1)
  s=$(stat -c %s "$1")
  mv "$1" "$blobs/$d"
  echo "$d $s"
}

printf '%s' '{"created":"'"$created"'","architecture":"'"$arch"'","os":"linux",'\
'"config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],'\
'"Cmd":["/bin/sh"],"WorkingDir":"/home/work",'\
'"Labels":{"org.opencontainers.image.title":"'"${name%:*}"'","berth.busybox-static":"'"$bbversion"'"}},'\
'"rootfs":{"type":"layers","diff_ids":["sha256:'"$diff_id"'"]},'\
'"history":[{"created":"'"$created"'","created_by":"scripts/build-base-image.sh from Debian busybox-static '"$bbversion"'"}]}' \
  >"$work/config.json"
read -r config_digest config_size < <(put_blob "$work/config.json")

printf '%s' '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",'\
'"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:'"$config_digest"'","size":'"$config_size"'},'\
'"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:'"$layer_digest"'","size":'"$layer_size"'}]}' \
  >"$work/manifest.json"
read -r manifest_digest manifest_size < <(put_blob "$work/manifest.json")

printf '%s' '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json",'\
'"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:'"$manifest_digest"'","size":'"$manifest_size"','\
'"platform":{"architecture":"'"$arch"'","os":"linux"},'\
'"annotations":{"io.containerd.image.name":"'"$name"'","org.opencontainers.image.ref.name":"'"${name##*:}"'"}}]}' \
  >"$layout/index.json"
printf '%s' '{"imageLayoutVersion":"1.0.0"}' >"$layout/oci-layout"
chmod 0755 "$layout" "$layout/blobs" "$blobs"
chmod 0644 "$layout/index.json" "$layout/oci-layout" "$blobs"/*

mkdir -p "$(dirname "$out")"
deterministic_tar "$layout" "$work/image.tar"
mv "$work/image.tar" "$out"
echo "$name sha256:$manifest_digest ($arch, busybox-static $bbversion) -> $out"
