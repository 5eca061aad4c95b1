//! `wasmbot-sdk`: everything a wasmbot plugin needs.
//!
//! A plugin is a handler function, one macro and a manifest. The handler is
//! handed one event (a command, plain text, a button press, or the answer
//! to a question it asked) and answers with actions: messages to send (with
//! buttons), edits, deletions, reactions, "typing…", a notice for a button
//! press, or a question whose answer comes back to it.
//!
//! ```ignore
//! use serde::{Deserialize, Serialize};
//! use wasmbot_sdk::prelude::*;
//!
//! /// What `/todo` remembers while it waits for the user's answer.
//! #[derive(Serialize, Deserialize)]
//! struct Adding {
//!     list: String,
//! }
//!
//! fn handle(event: Event) -> EventResult {
//!     // The answer to our question: the user's next message in this chat.
//!     if let Some(adding) = event.prompt_state::<Adding>()? {
//!         return match event.text_input() {
//!             Some(item) if !item.trim().is_empty() => {
//!                 state::set(&format!("{}:{}", adding.list, event.chat_id), item.trim())?;
//!                 Ok(Reply::text(format!("Added to {}.", adding.list))
//!                     .reply_to(event.message_ref())
//!                     .into())
//!             }
//!             _ => Ok(ask("Please type the item (or /cancel).").state(&adding).into()),
//!         };
//!     }
//!     // A press on one of our buttons: edit that message, answer the press.
//!     if let Some(press) = event.press() {
//!         return Ok(actions![
//!             edit(press.message(), Reply::text(format!("You chose {}.", press.data))),
//!             notice("Saved"),
//!         ]);
//!     }
//!     match event.command().map(|c| c.args.as_str()) {
//!         Some("") => Ok(ask("What should I add?")
//!             .state(&Adding { list: "todo".into() })
//!             .timeout_secs(600)
//!             .into()),
//!         _ => Ok(Reply::text(format!("Hello, {}! Pick one:", event.display_name()))
//!             .button("🍎 Apple", "apple")
//!             .button("🍐 Pear", "pear")
//!             .row()
//!             .button("Neither", "none")
//!             .into()),
//!     }
//! }
//!
//! wasmbot_sdk::handler!(handle);
//! ```
//!
//! The handler's argument is anything [`FromEvent`]: the whole [`Event`], or
//! the simpler [`Message`] (a command: `command`, `args`, `text`...). It
//! returns `Result<T, E>` where `T` is anything [`IntoActions`] ([`Reply`],
//! [`Ask`], [`Action`], [`Actions`], `Vec<Action>`, `Option<_>`, `()`) and
//! `E` turns into a `String` shown to the user (every capability error
//! does, so `?` works). The handlers of the first SDK still compile as
//! they were:
//!
//! ```ignore
//! use wasmbot_sdk::prelude::*;
//!
//! fn handle(msg: Message) -> HandlerResult {
//!     Ok(Reply::text(format!("Hello, {}!", msg.display_name())))
//! }
//!
//! wasmbot_sdk::handler!(handle);
//! ```
//!
//! Actions: [`Reply`] (send; `Reply::text(..).button(label, data).row()
//! .reply_to(r)`), [`ask()`] (a question; `.state(&value)`,
//! `.timeout_secs(n)`), [`edit()`], [`edit_buttons()`], [`clear_buttons()`],
//! [`delete()`], [`react()`], [`typing()`], [`notice()`], [`alert()`].
//! A [`MessageRef`] names a message: [`sent(n)`](sent) for the n-th message
//! sent by the same action list, or an id (`MessageRef::from(id)`,
//! [`Event::message_ref`], [`ButtonPress::message`]). The host refuses more
//! than [`MAX_ACTIONS`] actions, button data over [`MAX_BUTTON_DATA_BYTES`],
//! labels over [`MAX_BUTTON_LABEL_CHARS`], more than [`MAX_BUTTONS`]
//! buttons on one message (or [`MAX_BUTTONS_PER_ROW`] in a row), and more
//! than one `ask` or one notice in a list; [`Actions::check`] tells you
//! before it does.
//!
//! Files: an event's [`Event::attachments`] (a photo, a voice note, a
//! document, with the caption as its text) are fetched with
//! [`media::fetch`]; a [`File`] (`File::document(name, bytes)`,
//! `File::photo(..)`) is an action that uploads one.
//!
//! Capabilities are modules: [`log`], [`state`], [`secrets`], [`audit`],
//! [`llm`] (also vision and answers streamed into the chat:
//! [`llm::Conversation`]), [`health`], [`cache`], [`vectors`], [`media`],
//! [`config`] (the plugin's settings) and [`http`] (outbound requests to
//! the hosts its manifest lists); each needs its grant in the manifest. A plugin granted `files`
//! reads and writes its own folder, `/data`, with `std::fs`.
//!
//! The component targets the WIT world `wasmbot:plugin/conversation@0.2.0`.
//! Build it with `cargo build --release --target wasm32-wasip2` (or
//! `just build-plugins`) and grant what it imports in its `plugin.toml`
//! (`free_text = true` to receive plain text as the operator's default
//! plugin).

// The conversation world's export refers to the types below by this name.
extern crate self as wasmbot_sdk;

/// The `proactive` world (every capability, `handle` and `on-event`): its
/// types are the SDK's.
#[doc(hidden)]
// Generated: `schedule.add`'s record flattens into many parameters.
#[allow(clippy::too_many_arguments)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "wasmbot:plugin/proactive@0.3.0",
        path: ["../wit", "../wit/v0.2", "../wit/v0.3"],
        pub_export_macro: true,
        export_macro_name: "__export_proactive_world",
        default_bindings_module: "wasmbot_sdk::bindings",
        // The capability interfaces are 0.1.0's (`wasmbot::plugin0_1_0`),
        // `config`, `schedule` and the event types 0.2.0's (`wasmbot::plugin0_2_0`).
        generate_all,
        // So plugins can keep WIT values (e.g. a conversation) in `state`.
        additional_derives: [serde::Serialize, serde::Deserialize, PartialEq],
    });
}

/// The `conversation` world (`handle` only), for plugins that take no
/// events; its types are those of [`bindings`].
#[doc(hidden)]
pub mod conversation_bindings {
    wit_bindgen::generate!({
        world: "wasmbot:plugin/conversation@0.2.0",
        path: ["../wit", "../wit/v0.2"],
        pub_export_macro: true,
        export_macro_name: "__export_conversation_world",
        default_bindings_module: "wasmbot_sdk::conversation_bindings",
        with: {
            "wasmbot:plugin/log@0.1.0": ::wasmbot_sdk::bindings::wasmbot::plugin0_1_0::log,
            "wasmbot:plugin/state@0.1.0": ::wasmbot_sdk::bindings::wasmbot::plugin0_1_0::state,
            "wasmbot:plugin/secrets@0.1.0": ::wasmbot_sdk::bindings::wasmbot::plugin0_1_0::secrets,
            "wasmbot:plugin/audit@0.1.0": ::wasmbot_sdk::bindings::wasmbot::plugin0_1_0::audit,
            "wasmbot:plugin/llm@0.1.0": ::wasmbot_sdk::bindings::wasmbot::plugin0_1_0::llm,
            "wasmbot:plugin/health@0.1.0": ::wasmbot_sdk::bindings::wasmbot::plugin0_1_0::health,
            "wasmbot:plugin/cache@0.1.0": ::wasmbot_sdk::bindings::wasmbot::plugin0_1_0::cache,
            "wasmbot:plugin/vectors@0.1.0": ::wasmbot_sdk::bindings::wasmbot::plugin0_1_0::vectors,
            "wasmbot:plugin/config@0.2.0": ::wasmbot_sdk::bindings::wasmbot::plugin0_2_0::config,
            "wasmbot:plugin/events@0.2.0": ::wasmbot_sdk::bindings::wasmbot::plugin0_2_0::events,
            "wasmbot:plugin/media@0.2.0": ::wasmbot_sdk::bindings::wasmbot::plugin0_2_0::media,
        },
    });
}

mod action_list;
pub mod audit;
pub mod cache;
pub mod config;
mod event;
mod file;
pub mod health;
pub mod http;
pub mod llm;
pub mod log;
pub mod media;
mod message;
mod reply;
pub mod schedule;
pub mod secrets;
pub mod state;
mod tool;
pub mod vectors;

pub use action_list::{Actions, IntoActions};
pub use bindings::wasmbot::plugin0_2_0::events::{
    Action, Attachment, AttachmentKind, Button, ButtonPress, ChatType, Command, Edit, Event,
    EventKind, FileKind, Format, Keyboard, MessageRef, Notice, Outgoing, OutgoingFile, Question,
    Quoted, Reaction,
};
pub use bindings::wasmbot::plugin0_2_0::happenings::{DueJob, Happening, HappeningKind, Webhook};
pub use event::FromEvent;
pub use file::File;
pub use message::{Message, escape_html, escape_markdown};
pub use reply::{
    Ask, Buttons, DEFAULT_ASK_TIMEOUT_SECS, Reply, alert, ask, clear_buttons, delete, edit,
    edit_buttons, named, notice, react, send, sent, typing,
};
pub use tool::{ToolCall, ToolOutput, ToolResult};

/// The first SDK's name for [`Format`].
pub type ReplyFormat = Format;

/// What a [`Message`] handler returns: one reply, or an error text for the user.
pub type HandlerResult = Result<Reply, String>;

/// What an [`Event`] handler usually returns.
pub type EventResult = Result<Actions, String>;

/// The host refuses a longer action list.
pub const MAX_ACTIONS: usize = 20;
/// The host refuses button data longer than this (bytes).
pub const MAX_BUTTON_DATA_BYTES: usize = 1024;
/// The host refuses longer button labels (characters).
pub const MAX_BUTTON_LABEL_CHARS: usize = 64;
/// The host refuses more buttons on one message.
pub const MAX_BUTTONS: usize = 100;
/// The host refuses more buttons in one row.
pub const MAX_BUTTONS_PER_ROW: usize = 8;
/// The host keeps at most this much question state (bytes).
pub const MAX_PROMPT_STATE_BYTES: usize = 16 * 1024;
/// The longest a question may wait for its answer (a day, in seconds).
pub const MAX_ASK_TIMEOUT_SECS: u32 = 24 * 60 * 60;

/// Everything a handler usually needs, in one `use`.
pub mod prelude {
    pub use crate::{
        Action, Actions, Ask, Attachment, AttachmentKind, Button, ButtonPress, Buttons, ChatType,
        Command, DueJob, Event, EventKind, EventResult, File, FileKind, Format, FromEvent,
        HandlerResult, Happening, HappeningKind, IntoActions, Message, MessageRef, Reply,
        ReplyFormat, ToolCall, ToolOutput, ToolResult, Webhook, actions, alert, ask, audit, cache,
        clear_buttons, config, delete, edit, edit_buttons, escape_html, escape_markdown, health,
        http, llm, log, media, named, notice, react, schedule, secrets, send, sent, state, typing,
        vectors,
    };
    pub use serde_json::json;
}

#[doc(hidden)]
pub mod __private {
    use crate::{Action, Event, FromEvent, IntoActions};

    /// Runs a handler on one event: converts its argument and its answer.
    pub fn run<I, O, E>(
        event: Event,
        handler: impl FnOnce(I) -> Result<O, E>,
    ) -> Result<Vec<Action>, String>
    where
        I: FromEvent,
        O: IntoActions,
        E: Into<String>,
    {
        let input = I::from_event(event)?;
        handler(input)
            .map(IntoActions::into_actions)
            .map_err(Into::into)
    }

    /// Runs a tool handler on one call.
    pub fn run_tool<E: Into<String>>(
        call: crate::ToolCall,
        handler: impl FnOnce(crate::ToolCall) -> Result<crate::ToolOutput, E>,
    ) -> Result<crate::ToolOutput, String> {
        handler(call).map_err(Into::into)
    }

    /// The tool handler of a plugin that declares none.
    pub fn no_tools(call: crate::ToolCall) -> crate::ToolResult {
        Err(format!("this plugin has no tool called {:?}", call.name))
    }

    /// The `on-event` of a plugin that takes no due jobs and no webhooks.
    pub fn no_events(_: crate::Happening) -> crate::EventResult {
        Err("this plugin takes no due jobs and no webhooks".into())
    }

    /// Runs an event handler on a due job or a webhook delivery.
    pub fn run_happening<O, E>(
        happening: crate::Happening,
        handler: impl FnOnce(crate::Happening) -> Result<O, E>,
    ) -> Result<Vec<Action>, String>
    where
        O: IntoActions,
        E: Into<String>,
    {
        handler(happening)
            .map(IntoActions::into_actions)
            .map_err(Into::into)
    }
}

/// Exports `handler_fn` as the component's `handle` function, and with a
/// second function `on_event_fn` as its `on-event` too (the `proactive`
/// world: due jobs and webhook deliveries reach it; needed to be granted
/// `schedule`). `tools = tool_fn` answers the tool calls of the tools the
/// manifest declares (`[[tools]]`), from Claude or an MCP client.
///
/// `handler_fn` takes anything [`FromEvent`] ([`Event`] or [`Message`]) and
/// returns `Result<T, E>` with `T: IntoActions` ([`Reply`], [`Actions`],
/// [`Ask`]...) and `E: Into<String>`. `on_event_fn` takes a [`Happening`]
/// and returns the same; its actions go to the job's chat. `tool_fn` takes
/// a [`ToolCall`] and returns a [`ToolResult`].
///
/// Returning `Err(text)` tells the user that the command failed with `text`
/// (from a tool: Claude reads it as the tool's error); a panic is contained
/// by the host and answered with a generic apology.
///
/// ```ignore
/// fn on_event(event: Happening) -> EventResult {
///     match event.kind {
///         HappeningKind::Job(job) => Ok(Reply::text(format!("⏰ {}", job.payload)).into()),
///         HappeningKind::Webhook(hook) => Ok(Reply::text(format!("{} bytes on {}", hook.body.len(), hook.name)).into()),
///     }
/// }
/// fn tool(call: ToolCall) -> ToolResult {
///     let input: Input = call.input()?;
///     Ok(format!("{} km is {} mi", input.km, input.km / 1.609).into())
/// }
/// wasmbot_sdk::handler!(handle, on_event, tools = tool);
/// ```
#[macro_export]
macro_rules! handler {
    ($handler_fn:path) => {
        $crate::handler!(@conversation $handler_fn);
    };
    // Only one world of the SDK can export `tools` (wit-bindgen names its
    // export glue after the interface): a plugin with tools is a
    // `proactive` one whose `on-event` says it takes no events.
    ($handler_fn:path, tools = $tool_fn:path) => {
        $crate::handler!(@proactive $handler_fn, $crate::__private::no_events, $tool_fn);
    };
    ($handler_fn:path, $on_event_fn:path) => {
        $crate::handler!(@proactive $handler_fn, $on_event_fn, $crate::__private::no_tools);
    };
    ($handler_fn:path, $on_event_fn:path, tools = $tool_fn:path) => {
        $crate::handler!(@proactive $handler_fn, $on_event_fn, $tool_fn);
    };
    (@conversation $handler_fn:path) => {
        #[doc(hidden)]
        struct __WasmbotHandler;

        impl $crate::conversation_bindings::Guest for __WasmbotHandler {
            fn handle(
                event: $crate::Event,
            ) -> ::core::result::Result<::std::vec::Vec<$crate::Action>, ::std::string::String>
            {
                $crate::__private::run(event, $handler_fn)
            }
        }

        $crate::conversation_bindings::__export_conversation_world!(
            __WasmbotHandler with_types_in $crate::conversation_bindings
        );
    };
    (@proactive $handler_fn:path, $on_event_fn:path, $tool_fn:path) => {
        #[doc(hidden)]
        struct __WasmbotHandler;

        impl $crate::bindings::Guest for __WasmbotHandler {
            fn handle(
                event: $crate::Event,
            ) -> ::core::result::Result<::std::vec::Vec<$crate::Action>, ::std::string::String>
            {
                $crate::__private::run(event, $handler_fn)
            }

            fn on_event(
                event: $crate::Happening,
            ) -> ::core::result::Result<::std::vec::Vec<$crate::Action>, ::std::string::String>
            {
                $crate::__private::run_happening(event, $on_event_fn)
            }
        }

        $crate::handler!(@tools [$crate::bindings], $tool_fn);

        $crate::bindings::__export_proactive_world!(
            __WasmbotHandler with_types_in $crate::bindings
        );
    };
    (@tools [$($world:tt)+], $tool_fn:path) => {
        impl $($world)+::exports::wasmbot::plugin0_3_0::tools::Guest for __WasmbotHandler {
            fn call(
                call: $($world)+::exports::wasmbot::plugin0_3_0::tools::ToolCall,
            ) -> ::core::result::Result<
                $($world)+::exports::wasmbot::plugin0_3_0::tools::ToolOutput,
                ::std::string::String,
            > {
                    let call = $crate::ToolCall::new(
                        call.name,
                        &call.input,
                        call.correlation_id,
                        call.chat_id,
                        call.user_id,
                    )?;
                    let output = $crate::__private::run_tool(call, $tool_fn)?;
                    Ok($($world)+::exports::wasmbot::plugin0_3_0::tools::ToolOutput {
                        text: output.text,
                        actions: output.actions,
                    })
            }
        }
    };
}
