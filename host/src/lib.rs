//! wasmbot host: a chat assistant whose command handlers are sandboxed
//! WebAssembly components. One message travels
//! adapter (`chat::console`, `chat::telegram`) -> `chat::Dispatcher` ->
//! `runtime::PluginRegistry` -> `runtime::LoadedPlugin::invoke` -> reply.
//!
//! Layers, from the bottom; each imports only from those below it
//! (`tests/architecture.rs` keeps it so):
//! - `env`: reading settings, `ConfigError`, `SecretString`;
//! - `infra`: the host's own services (database, vault, audit writer,
//!   alerts, cache, Claude, vectors, health, metrics, HTTP serving);
//! - `runtime`: loading and calling components; it knows no capability;
//! - `capabilities`: one module per WIT interface lent to plugins, and the
//!   table the runtime links from;
//! - `chat`: the dispatcher and the adapters (console, Telegram);
//! - `app`: the composition root (settings, services, ops endpoints, worker);
//! - `cli`: parses the command line and calls `app`.

pub mod app;
pub mod capabilities;
pub mod chat;
pub mod cli;
pub mod env;
pub mod infra;
pub mod runtime;
