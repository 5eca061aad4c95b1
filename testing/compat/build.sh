#!/usr/bin/env bash
# Rebuilds the committed compatibility components into testing/compat/dist.
# Run by hand, only to add a component for a newly released world: the
# point of dist/ is that it was built once, from the WIT of its day, and
# today's host must still load it. Records what each was built from.
set -euo pipefail
cd "$(dirname "$0")"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-../../target/compat}
cargo build --quiet --release --target wasm32-wasip2
mkdir -p dist
{
  echo "# What dist/ was built from (testing/compat/build.sh)."
  echo "commit = \"$(git rev-parse HEAD)\""
  echo "rustc = \"$(rustc --version)\""
  echo "wit-bindgen = \"$(sed -n '/^name = "wit-bindgen"$/{n;s/^version = "\(.*\)"/\1/p}' Cargo.lock)\""
  echo "# compat_first was built from wit/ as first released (a81ec77), kept in first/wit."
  echo "built = \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\""
} > dist/BUILT.toml
for crate in */Cargo.toml; do
  dir=$(dirname "$crate")
  plugin=$(sed -n 's/^name *= *"\(.*\)"/\1/p' "$dir/plugin.toml" | head -n1)
  cp "$CARGO_TARGET_DIR/wasm32-wasip2/release/compat_$dir.wasm" "dist/$plugin.wasm"
  cp "$dir/plugin.toml" "dist/$plugin.toml"
  echo "built dist/$plugin.wasm ($(wc -c < "dist/$plugin.wasm") bytes)"
done
