//! Host bindings for the `wasmbot:plugin/handler` world in `wit/`.

wasmtime::component::bindgen!({
    world: "handler",
    path: "../wit",
    imports: { default: async },
    exports: { default: async },
});
