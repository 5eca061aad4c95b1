#!/usr/bin/env bash
# Scaffolds plugins/NAME from templates/plugin. Usage: scripts/new-plugin.sh NAME
set -euo pipefail
name=${1:?usage: just new-plugin NAME}
if ! [[ $name =~ ^[a-z][a-z0-9_]{0,31}$ ]]; then
  echo "new-plugin: NAME must be 1-32 characters a-z, 0-9 or '_', starting with a letter (it is also the command)" >&2
  exit 1
fi
dir="plugins/$name"
if [ -e "$dir" ]; then
  echo "new-plugin: $dir already exists" >&2
  exit 1
fi
mkdir -p "$dir/src"
for template in Cargo.toml plugin.toml src/lib.rs; do
  sed -e "s/__NAME__/$name/g" -e "s/__COMMAND__/$name/g" "templates/plugin/$template.tmpl" > "$dir/$template"
done
echo "created $dir: edit src/lib.rs, then \`just build-plugins\` (or keep \`just watch\` running)"
