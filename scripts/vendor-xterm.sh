#!/usr/bin/env bash
# Vendors xterm.js, the console's terminal, into the console's assets:
#
#   scripts/vendor-xterm.sh
#
# It fetches the pinned packages from the npm registry with npm (npm pack:
# no install, no scripts run), checks each tarball against the integrity
# pinned here, and copies the ES module builds, the stylesheet and the
# licences to manager/console/web/assets/vendor/xterm/. The result is
# committed: building Berth, its tests and CI need neither npm nor the
# network, and the console loads nothing from another origin (its
# Content-Security-Policy allows its own files only).
#
# To move to another version: change a version below, run the script with
# the new integrity left empty (it prints what it fetched), check the
# release notes, pin the printed integrity, run it again and commit.
set -euo pipefail

# name version integrity (npm's dist.integrity, sha512 in base64)
packages=(
  "@xterm/xterm 6.0.0 sha512-TQwDdQGtwwDt+2cgKDLn0IRaSxYu1tSUjgKarSDkUM0ZNiSRXFpjxEsvc/Zgc5kq5omJ+V0a8/kIM2WD3sMOYg=="
  "@xterm/addon-fit 0.11.0 sha512-jYcgT6xtVYhnhgxh3QgYDnnNMYTcf8ElbxxFzX0IZo+vabQqSPAjC3c1wJrKB5E19VwQei89QCiZZP86DCPF7g=="
)

root=$(cd "$(dirname "$0")/.." && pwd)
dest="$root/manager/console/web/assets/vendor/xterm"
command -v npm >/dev/null || { echo "vendor-xterm: npm is needed (Debian package npm)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for entry in "${packages[@]}"; do
  read -r name version integrity <<<"$entry"
  (cd "$work" && npm pack --silent "$name@$version" >/dev/null)
  tarball=$(ls "$work"/*.tgz)
  got="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
  if [ "$got" != "$integrity" ]; then
    echo "vendor-xterm: $name@$version is $got, not the pinned $integrity" >&2
    exit 1
  fi
  mkdir -p "$work/$version"
  tar -xzf "$tarball" -C "$work/$version"
  rm "$tarball"
  pkg="$work/$version/package"
  case "$name" in
    @xterm/xterm)
      xterm_dir=$pkg
      xterm_version=$version
      ;;
    @xterm/addon-fit)
      fit_dir=$pkg
      fit_version=$version
      ;;
  esac
done

rm -rf "$dest"
mkdir -p "$dest"
# The source map comment would make browsers ask for maps that are not
# shipped.
sed '/^\/\/# sourceMappingURL=/d' "$xterm_dir/lib/xterm.mjs" >"$dest/xterm.mjs"
cp "$xterm_dir/css/xterm.css" "$dest/xterm.css"
cp "$xterm_dir/LICENSE" "$dest/LICENSE.xterm"
sed '/^\/\/# sourceMappingURL=/d' "$fit_dir/lib/addon-fit.mjs" >"$dest/addon-fit.mjs"
cp "$fit_dir/LICENSE" "$dest/LICENSE.addon-fit"
cat >"$dest/VERSIONS" <<EOF
@xterm/xterm $xterm_version (MIT, LICENSE.xterm): xterm.mjs is lib/xterm.mjs, xterm.css is css/xterm.css
@xterm/addon-fit $fit_version (MIT, LICENSE.addon-fit): addon-fit.mjs is lib/addon-fit.mjs
Fetched and checked by scripts/vendor-xterm.sh; source map comments removed.
EOF
echo "vendored into ${dest#"$root"/}:"
ls -l "$dest"
