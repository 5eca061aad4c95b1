#!/usr/bin/env bash
# Rebuilds the plugins into plugins/dist whenever a plugin's source (Rust,
# Python or JavaScript), an SDK or the WIT changes, so a running
# `wasmbot chat`/`run` reloads them. Python and JavaScript plugins whose
# inputs did not change are not rebuilt.
# Polls once a second: no extra tool to install.
set -euo pipefail
fingerprint() {
  find plugins sdk wit \( -path plugins/dist -o -name node_modules -o -name __pycache__ \) -prune -o -type f \
    \( -name '*.rs' -o -name '*.toml' -o -name '*.wit' -o -name '*.py' -o -name '*.js' \) \
    -printf '%T@ %s %p\n' 2>/dev/null | sort | md5sum
}
echo "watching plugins/, sdk/ and wit/; building into plugins/dist (Ctrl-C to stop)"
last=""
while true; do
  now=$(fingerprint)
  if [ "$now" != "$last" ]; then
    last=$now
    if scripts/build-plugins.sh plugins plugins/dist; then
      echo "[$(date +%T)] plugins rebuilt"
    else
      echo "[$(date +%T)] build failed; the running bot keeps the previous plugins"
    fi
    last=$(fingerprint)
  fi
  sleep 1
done
