#!/usr/bin/env bash
# Installs the pinned toolchains that build Python and JavaScript plugins into
# .tools/ (project-local: nothing global, nothing a fresh machine lacks but
# python3 and npm). Usage: scripts/guest-tools.sh python|js
# Prints the folder holding the tool's executables.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tools="$root/.tools"
COMPONENTIZE_PY_VERSION=0.25.1

case "${1:?usage: guest-tools.sh python|js}" in
  python)
    env="$tools/py"
    if [ "$(cat "$env/.pinned" 2>/dev/null)" != "componentize-py==$COMPONENTIZE_PY_VERSION" ]; then
      echo "installing componentize-py $COMPONENTIZE_PY_VERSION into $env (once)" >&2
      rm -rf "$env"
      python3 -m venv "$env" >&2
      "$env/bin/pip" install --quiet --disable-pip-version-check "componentize-py==$COMPONENTIZE_PY_VERSION" >&2
      echo "componentize-py==$COMPONENTIZE_PY_VERSION" > "$env/.pinned"
    fi
    echo "$env/bin"
    ;;
  js)
    env="$tools/js"
    pins="$root/scripts/guest"
    wanted=$(cat "$pins/package.json" "$pins/package-lock.json" | sha256sum | cut -c1-16)
    if [ "$(cat "$env/.pinned" 2>/dev/null)" != "$wanted" ]; then
      echo "installing componentize-js and esbuild (scripts/guest/package-lock.json) into $env (once)" >&2
      rm -rf "$env"
      mkdir -p "$env"
      cp "$pins/package.json" "$pins/package-lock.json" "$env/"
      (cd "$env" && npm ci --silent --no-audit --no-fund >&2)
      echo "$wanted" > "$env/.pinned"
    fi
    echo "$env/node_modules/.bin"
    ;;
  *)
    echo "guest-tools: unknown language $1 (python or js)" >&2
    exit 1
    ;;
esac
