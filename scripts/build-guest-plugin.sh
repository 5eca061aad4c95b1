#!/usr/bin/env bash
# Builds one Python (app.py) or JavaScript (index.js) plugin folder into
# OUT/NAME.wasm + OUT/NAME.toml, against a world holding only the imports its
# manifest grants (scripts/guest_world.py). Skips the build when nothing it
# depends on changed since the last one.
# Usage: scripts/build-guest-plugin.sh DIR python|js OUT
set -euo pipefail
dir=${1:?usage: build-guest-plugin.sh DIR python|js OUT}
language=${2:?usage: build-guest-plugin.sh DIR python|js OUT}
out=${3:?usage: build-guest-plugin.sh DIR python|js OUT}
root=$(cd "$(dirname "$0")/.." && pwd)
target_dir=${CARGO_TARGET_DIR:-$root/target}
plugin=$(sed -n 's/^name *= *"\(.*\)"/\1/p' "$dir/plugin.toml" | head -n1)
if [ -z "$plugin" ]; then
  echo "build-plugins: $dir/plugin.toml: cannot read the plugin name" >&2
  exit 1
fi
work="$target_dir/guest/$plugin"
mkdir -p "$work" "$out"

case "$language" in
  python) sdk="$root/sdk/python" pins="$root/scripts/guest-tools.sh" ;;
  js) sdk="$root/sdk/js" pins="$root/scripts/guest/package-lock.json" ;;
esac
# Everything the component is made from: the plugin's files, the SDK, the WIT,
# the generator and the pinned toolchain.
fingerprint=$(find "$dir" "$sdk" "$root/wit" "$root/scripts/guest_world.py" "$root/scripts/guest/wasi" "$pins" \
    -type f ! -path '*/__pycache__/*' ! -path '*/node_modules/*' -print0 \
  | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-32)
if [ -f "$out/$plugin.wasm" ] && [ "$(cat "$work/.fingerprint" 2>/dev/null)" = "$fingerprint" ] \
  && cmp -s "$dir/plugin.toml" "$out/$plugin.toml"; then
  exit 0
fi

bin=$("$root/scripts/guest-tools.sh" "$language")
mapfile -t extra < <(python3 "$root/scripts/guest_world.py" "$dir" "$language" "$work")
started=$SECONDS
case "$language" in
  python)
    "$bin/componentize-py" -d "$work/wit" -w granted componentize \
      -p "$work/py" -p "$dir" -p "$sdk" wasmbot_entry -o "$work/$plugin.wasm" >/dev/null
    ;;
  js)
    "$bin/esbuild" "$work/entry.js" --bundle --format=esm --platform=neutral --log-level=warning \
      --external:'wasmbot:*' --alias:wasmbot="$sdk/index.js" --alias:wasmbot-granted="$work/granted.js" \
      --outfile="$work/bundle.js"
    # componentize-js maps its working directory into the component: keep it to $work.
    (cd "$work" && "$bin/componentize-js" bundle.js --wit wit --world-name granted \
      "${extra[@]}" -o "$plugin.wasm" >/dev/null)
    ;;
esac
# Write beside, then rename: a watching host never sees a half-written file.
cp "$work/$plugin.wasm" "$out/.$plugin.wasm.tmp" && mv "$out/.$plugin.wasm.tmp" "$out/$plugin.wasm"
cp "$dir/plugin.toml" "$out/.$plugin.toml.tmp" && mv "$out/.$plugin.toml.tmp" "$out/$plugin.toml"
echo "$fingerprint" > "$work/.fingerprint"
echo "built $out/$plugin.wasm ($(wc -c < "$out/$plugin.wasm") bytes, $language, $((SECONDS - started)) s)"
