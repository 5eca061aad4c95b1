#!/usr/bin/env bash
# Builds every plugin under SRC (folders with a plugin.toml) and installs
# NAME.wasm + NAME.toml into OUT: Rust crates (Cargo.toml) for wasm32-wasip2
# in release, Python plugins (app.py) with componentize-py and JavaScript
# plugins (index.js) with componentize-js (scripts/build-guest-plugin.sh).
# Usage: scripts/build-plugins.sh SRC OUT
set -euo pipefail
src=${1:?usage: build-plugins.sh SRC OUT}
out=${2:?usage: build-plugins.sh SRC OUT}
target_dir=${CARGO_TARGET_DIR:-target}

if ! rustup target list --installed | grep -qx wasm32-wasip2; then
  rustup target add wasm32-wasip2
fi

packages=()
guests=()
guest_plugins=()
declare -A plugin_of
for manifest in "$src"/*/plugin.toml; do
  [ -e "$manifest" ] || continue
  dir=$(dirname "$manifest")
  if [ ! -f "$dir/Cargo.toml" ]; then
    if [ -f "$dir/app.py" ]; then
      guests+=("$dir python")
    elif [ -f "$dir/index.js" ]; then
      guests+=("$dir js")
    else
      echo "build-plugins: $dir has a plugin.toml but no Cargo.toml, app.py or index.js" >&2
      exit 1
    fi
    plugin=$(sed -n 's/^name *= *"\(.*\)"/\1/p' "$manifest" | head -n1)
    guest_plugins+=("$plugin")
    # Not a crate: cargo's `plugins/*` members must not look for a Cargo.toml.
    if ! grep -q "^exclude = .*\"$dir\"" Cargo.toml; then
      sed -i "s|^exclude = \[\(.*\)\]|exclude = [\1, \"$dir\"]|" Cargo.toml
      echo "build-plugins: added $dir to the workspace's exclude in Cargo.toml (it has no Cargo.toml)"
    fi
    continue
  fi
  package=$(sed -n 's/^name *= *"\(.*\)"/\1/p' "$dir/Cargo.toml" | head -n1)
  plugin=$(sed -n 's/^name *= *"\(.*\)"/\1/p' "$manifest" | head -n1)
  if [ -z "$package" ] || [ -z "$plugin" ]; then
    echo "build-plugins: $dir: cannot read the package name or the plugin name" >&2
    exit 1
  fi
  packages+=(-p "$package")
  plugin_of[$package]=$plugin
done
if [ ${#packages[@]} -eq 0 ] && [ ${#guests[@]} -eq 0 ]; then
  echo "build-plugins: no plugin.toml under $src" >&2
  exit 1
fi

if [ ${#packages[@]} -gt 0 ]; then
  cargo build --quiet --release --target wasm32-wasip2 "${packages[@]}"
fi

mkdir -p "$out"
# A plugin whose source is gone (renamed, merged) must not stay installed:
# remove what this script installed last time and no longer builds.
# (Before that list existed, everything in OUT was installed by this script.)
if [ ! -f "$out/.installed" ]; then
  for manifest in "$out"/*.toml; do
    [ -e "$manifest" ] && basename "$manifest" .toml
  done > "$out/.installed"
fi
if [ -f "$out/.installed" ]; then
  while read -r old; do
    keep=false
    for plugin in "${plugin_of[@]}" "${guest_plugins[@]}"; do [ "$plugin" = "$old" ] && keep=true; done
    if ! $keep && [ -n "$old" ]; then
      rm -f "$out/$old.wasm" "$out/$old.toml"
      echo "removed $out/$old.wasm (no source under $src any more)"
    fi
  done < "$out/.installed"
fi
printf '%s\n' "${plugin_of[@]}" "${guest_plugins[@]}" | sed '/^$/d' | sort > "$out/.installed"
for package in "${!plugin_of[@]}"; do
  plugin=${plugin_of[$package]}
  built="$target_dir/wasm32-wasip2/release/${package//-/_}.wasm"
  dir=$(dirname "$(grep -l "^name *= *\"$package\"" "$src"/*/Cargo.toml | head -n1)")
  # Write beside, then rename: a watching host never sees a half-written file.
  cp "$built" "$out/.$plugin.wasm.tmp" && mv "$out/.$plugin.wasm.tmp" "$out/$plugin.wasm"
  cp "$dir/plugin.toml" "$out/.$plugin.toml.tmp" && mv "$out/.$plugin.toml.tmp" "$out/$plugin.toml"
  echo "built $out/$plugin.wasm ($(wc -c < "$out/$plugin.wasm") bytes)"
done
for guest in "${guests[@]}"; do
  # shellcheck disable=SC2086 # "DIR LANGUAGE"
  "$(dirname "$0")/build-guest-plugin.sh" $guest "$out"
done
