//! Host bindings for the two worlds a plugin may target: `handler`
//! (`wasmbot:plugin@0.1.0`, one command in, one reply out) and
//! `conversation` (`wasmbot:plugin@0.2.0`, events in, actions out). Both
//! import the same capability interfaces, so one module per interface
//! (`bindings::state`, `bindings::llm`, ...) serves both.

wasmtime::component::bindgen!({
    world: "wasmbot:plugin/handler@0.1.0",
    path: "../wit",
    imports: { default: async },
    exports: { default: async },
});

pub use self::wasmbot::plugin::*;

/// The 0.2.0 world: events and actions (`wit/v0.2`).
pub mod conversation {
    wasmtime::component::bindgen!({
        world: "wasmbot:plugin/conversation@0.2.0",
        path: ["../wit", "../wit/v0.2"],
        additional_derives: [PartialEq, Eq],
        imports: { default: async },
        exports: { default: async },
        with: {
            "wasmbot:plugin/log@0.1.0": super::log,
            "wasmbot:plugin/state@0.1.0": super::state,
            "wasmbot:plugin/secrets@0.1.0": super::secrets,
            "wasmbot:plugin/audit@0.1.0": super::audit,
            "wasmbot:plugin/llm@0.1.0": super::llm,
            "wasmbot:plugin/health@0.1.0": super::health,
            "wasmbot:plugin/cache@0.1.0": super::cache,
            "wasmbot:plugin/vectors@0.1.0": super::vectors,
        },
    });

    pub use self::wasmbot::plugin0_2_0::{config, events, media};
}

/// The 0.2.0 world of plugins that also act on their own: `conversation`
/// plus `schedule` and the `on-event` export (`wit/v0.2/world.wit`).
pub mod proactive {
    wasmtime::component::bindgen!({
        world: "wasmbot:plugin/proactive@0.2.0",
        path: ["../wit", "../wit/v0.2"],
        additional_derives: [PartialEq, Eq],
        imports: { default: async },
        exports: { default: async },
        with: {
            "wasmbot:plugin/log@0.1.0": super::log,
            "wasmbot:plugin/state@0.1.0": super::state,
            "wasmbot:plugin/secrets@0.1.0": super::secrets,
            "wasmbot:plugin/audit@0.1.0": super::audit,
            "wasmbot:plugin/llm@0.1.0": super::llm,
            "wasmbot:plugin/health@0.1.0": super::health,
            "wasmbot:plugin/cache@0.1.0": super::cache,
            "wasmbot:plugin/vectors@0.1.0": super::vectors,
            "wasmbot:plugin/config@0.2.0": super::conversation::config,
            "wasmbot:plugin/events@0.2.0": super::conversation::events,
            "wasmbot:plugin/media@0.2.0": super::conversation::media,
        },
    });

    pub use self::wasmbot::plugin0_2_0::{happenings, schedule};
}

pub use self::conversation::{config, media};
pub use self::proactive::schedule;

/// The 0.3.0 additions (`wit/v0.3`): the `tools` export a plugin answers
/// tool calls through, and the `agent` interface the assistant hands a
/// turn to. The 0.3.0 worlds include those of 0.2.0, so a 0.3.0 component
/// is called through the 0.2.0 bindings above; only its tools are reached
/// through `toolbox`.
pub mod toolbox {
    wasmtime::component::bindgen!({
        world: "wasmbot:plugin/toolbox@0.3.0",
        path: ["../wit", "../wit/v0.2", "../wit/v0.3"],
        imports: { default: async },
        exports: { default: async },
        with: {
            "wasmbot:plugin/events@0.2.0": super::conversation::events,
        },
    });

    pub use self::exports::wasmbot::plugin0_3_0::tools::{ToolCall, ToolOutput};
}

/// The `agent` interface (0.3.0), imported by the assistant.
pub mod agent_world {
    wasmtime::component::bindgen!({
        world: "wasmbot:plugin/conversation@0.3.0",
        path: ["../wit", "../wit/v0.2", "../wit/v0.3"],
        imports: { default: async },
        exports: { default: async },
        with: {
            "wasmbot:plugin/log@0.1.0": super::log,
            "wasmbot:plugin/state@0.1.0": super::state,
            "wasmbot:plugin/secrets@0.1.0": super::secrets,
            "wasmbot:plugin/audit@0.1.0": super::audit,
            "wasmbot:plugin/llm@0.1.0": super::llm,
            "wasmbot:plugin/health@0.1.0": super::health,
            "wasmbot:plugin/cache@0.1.0": super::cache,
            "wasmbot:plugin/vectors@0.1.0": super::vectors,
            "wasmbot:plugin/config@0.2.0": super::conversation::config,
            "wasmbot:plugin/events@0.2.0": super::conversation::events,
            "wasmbot:plugin/media@0.2.0": super::conversation::media,
        },
    });
}

pub use self::agent_world::wasmbot::plugin0_3_0::agent;
