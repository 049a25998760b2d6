#!/usr/bin/env bash
# Re-creates the vendored Data Docs assets of this folder from the npm registry, as manifest.json lists them:
# each file lands at <name>@<version>/<path in the npm package>, beside the package's license file.
# Run it after a change of manifest.json (e.g. a GX upgrade whose templates load other versions):
#   bash gx/data_docs_assets/vendor.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python3 - "$here/manifest.json" > "$work/list" <<'PY'
import json, sys
for package in json.load(open(sys.argv[1]))["packages"]:
    files = list(package["files"]) + ([package["license_file"]] if package["license_file"] else [])
    print(package["name"], package["version"], *files)
PY
while read -r name version files; do
  unpacked="$work/$name@$version"
  mkdir -p "$unpacked"
  tarball="$(cd "$work" && npm pack --silent "$name@$version")"
  tar -xzf "$work/$tarball" -C "$unpacked"
  rm -rf "${here:?}/$name@$version"
  for file in $files; do
    mkdir -p "$(dirname "$here/$name@$version/$file")"
    cp "$unpacked/package/$file" "$here/$name@$version/$file"
  done
  echo "$name@$version: $files"
done < "$work/list"
