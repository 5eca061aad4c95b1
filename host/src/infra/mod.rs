//! The host's own services: what the host itself uses (de-duplication,
//! alerts, health) and what capabilities lend to plugins. Nothing here knows
//! about the runtime, capabilities or chat.

pub mod alert;
pub mod audit;
pub mod cache;
pub mod health;
pub mod http;
pub mod llm;
pub mod logging;
pub mod metrics;
pub mod oauth;
pub mod outbound;
pub mod schedule;
pub mod services;
pub mod store;
pub mod sync;
pub mod vault;
pub mod vectors;
