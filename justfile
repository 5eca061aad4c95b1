# wasmbot — `just chat` to talk to the bot, `just test` to run every test.

set shell := ["bash", "-euo", "pipefail", "-c"]

# List the recipes.
default:
    @just --list

# Build the bundled plugins into plugins/dist (NAME.wasm + NAME.toml): Rust,
# Python (componentize-py) and JavaScript (componentize-js), the last two
# installed into .tools/ on first use.
build-plugins:
    scripts/build-plugins.sh plugins plugins/dist

# Build the containment-test plugins into target/test-plugins (never installed).
build-test-plugins:
    scripts/build-plugins.sh testing target/test-plugins

# Chat with the bot in this terminal: the zero-setup default.
chat: build-plugins
    cargo run --quiet --bin wasmbot -- chat

# Run the Telegram bot (TELEGRAM_BOT_TOKEN in .env or the environment).
run: build-plugins
    cargo run --quiet --release --bin wasmbot -- run

# Run the scheduled jobs (audit retention, heartbeat, health checks).
worker:
    cargo run --quiet --release --bin wasmbot -- worker

# Measure the runtime (release build) into docs/benchmarks.md and target/bench.json.
bench: build-plugins build-test-plugins
    cargo bench -p wasmbot --bench runtime

# Scaffold plugins/NAME (a handler and a manifest): LANGUAGE is rust, python or js.
new-plugin NAME LANGUAGE="rust":
    scripts/new-plugin.sh {{ NAME }} {{ LANGUAGE }}

# Rebuild plugins into plugins/dist on every source change (a running bot reloads them).
watch:
    scripts/watch-plugins.sh

# Build every plugin and run every test.
test: build-plugins build-test-plugins
    cargo test --workspace --exclude wasmbot-sdk {{ plugin_excludes }}
    # The SDK's builders and the plugins' logic, natively.
    cargo test -p wasmbot-sdk -p notes -p weather -p github -p remind -p agenda --lib

plugin_excludes := `for f in plugins/*/Cargo.toml testing/*/Cargo.toml; do sed -n 's/^name *= *"\(.*\)"/--exclude \1/p' "$f" | head -n1; done | tr '\n' ' '`
