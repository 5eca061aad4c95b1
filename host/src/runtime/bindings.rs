//! Host bindings for the `wasmbot:plugin/handler` world in `wit/`: one
//! module per interface (`bindings::state`, `bindings::llm`, ...), for the
//! capability that implements it.

wasmtime::component::bindgen!({
    world: "handler",
    path: "../wit",
    imports: { default: async },
    exports: { default: async },
});

pub use self::wasmbot::plugin::*;
