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
