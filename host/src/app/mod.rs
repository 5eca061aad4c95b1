//! The composition root: settings read once, the host's services built once,
//! the ops endpoints, the worker's jobs. Only `cli` imports this.

pub mod bot;
pub mod config;
pub mod console;
pub mod mcp;
pub mod ops;
pub mod root;
mod serving;
pub mod worker;
