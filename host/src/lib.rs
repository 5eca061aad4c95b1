//! wasmbot host: a chat assistant whose command handlers are sandboxed
//! WebAssembly components. One message travels
//! adapter (`chat::console`) -> `chat::Dispatcher` -> `runtime::PluginRegistry`
//! -> `runtime::LoadedPlugin::invoke` -> reply.

pub mod alert;
pub mod app;
pub mod audit;
pub mod capabilities;
pub mod chat;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod health;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod runtime;
pub mod services;
pub mod store;
pub mod worker;
