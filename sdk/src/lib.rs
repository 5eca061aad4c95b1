//! `wasmbot-sdk`: everything a wasmbot command handler needs.
//!
//! A plugin is a function and a manifest:
//!
//! ```ignore
//! use wasmbot_sdk::prelude::*;
//!
//! fn handle(msg: Message) -> Result<Reply, String> {
//!     Ok(Reply::text(format!("Hello, {}!", msg.display_name())))
//! }
//!
//! wasmbot_sdk::handler!(handle);
//! ```
//!
//! Capabilities are modules: [`log`], [`state`], [`secrets`], [`audit`], [`llm`], [`health`],
//! [`cache`], [`vectors`];
//! each needs its grant in the manifest.
//!
//! Build it with `cargo build --release --target wasm32-wasip2` (or
//! `just build-plugins`) and grant what it imports in its `plugin.toml`.

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "handler",
        path: "../wit",
        pub_export_macro: true,
        export_macro_name: "__export_handler_world",
        default_bindings_module: "wasmbot_sdk::bindings",
        // So plugins can keep WIT values (e.g. a conversation) in `state`.
        additional_derives: [serde::Serialize, serde::Deserialize],
    });
}

pub mod audit;
pub mod cache;
pub mod health;
pub mod llm;
pub mod log;
mod message;
pub mod secrets;
pub mod state;
pub mod vectors;

pub use bindings::wasmbot::plugin::types::{Message, Reply, ReplyFormat};
pub use message::{escape_html, escape_markdown};

/// The handler signature every plugin implements.
pub type HandlerResult = Result<Reply, String>;

/// Everything a handler usually needs, in one `use`.
pub mod prelude {
    pub use crate::{
        HandlerResult, Message, Reply, ReplyFormat, audit, cache, escape_html, escape_markdown,
        health, llm, log, secrets, state, vectors,
    };
    pub use serde_json::json;
}

/// Exports `handler_fn` (a `fn(Message) -> Result<Reply, String>`) as the
/// component's `handle` function.
///
/// Returning `Err(text)` tells the user that the command failed with `text`;
/// a panic is contained by the host and answered with a generic apology.
#[macro_export]
macro_rules! handler {
    ($handler_fn:path) => {
        #[doc(hidden)]
        struct __WasmbotHandler;

        impl $crate::bindings::Guest for __WasmbotHandler {
            fn handle(msg: $crate::Message) -> ::core::result::Result<$crate::Reply, String> {
                $handler_fn(msg)
            }
        }

        $crate::bindings::__export_handler_world!(__WasmbotHandler with_types_in $crate::bindings);
    };
}
