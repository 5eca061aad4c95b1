#!/usr/bin/env bash
# Scaffolds plugins/NAME: a handler and a manifest, in Rust (templates/plugin),
# Python (templates/python) or JavaScript (templates/js).
# Usage: scripts/new-plugin.sh NAME [rust|python|js]
set -euo pipefail
name=${1:?usage: just new-plugin NAME [rust|python|js]}
language=${2:-rust}
if ! [[ $name =~ ^[a-z][a-z0-9_]{0,31}$ ]]; then
  echo "new-plugin: NAME must be 1-32 characters a-z, 0-9 or '_', starting with a letter (it is also the command)" >&2
  exit 1
fi
case "$language" in
  rust) files=(Cargo.toml plugin.toml src/lib.rs) handler=src/lib.rs ;;
  python|py) language=python files=(plugin.toml app.py) handler=app.py ;;
  js|javascript) language=js files=(plugin.toml index.js) handler=index.js ;;
  *)
    echo "new-plugin: the language must be rust, python or js, not '$language'" >&2
    exit 1
    ;;
esac
dir="plugins/$name"
if [ -e "$dir" ]; then
  echo "new-plugin: $dir already exists" >&2
  exit 1
fi
mkdir -p "$dir/src"
for file in "${files[@]}"; do
  template="templates/plugin/$file.tmpl"
  [ -f "$template" ] || template="templates/$language/$file.tmpl"
  sed -e "s/__NAME__/$name/g" -e "s/__COMMAND__/$name/g" "$template" > "$dir/$file"
done
if [ "$language" != rust ]; then
  rmdir "$dir/src"
  # Not a crate: keep cargo's `plugins/*` members from looking for a Cargo.toml.
  sed -i "s|^exclude = \[\(.*\)\]|exclude = [\1, \"$dir\"]|" Cargo.toml
fi
echo "created $dir ($language): edit $dir/$handler, then \`just build-plugins\` (or keep \`just watch\` running)"
