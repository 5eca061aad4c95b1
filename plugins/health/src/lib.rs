//! `/health`: one line per service the host depends on, ✅/❌ and latency.
//! `/health now` checks again instead of showing the last results.

use wasmbot_sdk::health::{Service, Status};
use wasmbot_sdk::prelude::*;

fn handle(msg: Message) -> HandlerResult {
    let mut services = if msg.args == "now" {
        Vec::new()
    } else {
        health::latest()
    };
    if services.is_empty() {
        services = health::check_now();
    }
    if services.is_empty() {
        return Ok(Reply::text(
            "No health information is available on this host.",
        ));
    }
    let lines: Vec<String> = services.iter().map(line).collect();
    Ok(Reply::text(lines.join("\n")))
}

fn line(service: &Service) -> String {
    let latency = service
        .latency_ms
        .map(|ms| format!(" {ms} ms"))
        .unwrap_or_default();
    let detail = service
        .detail
        .as_deref()
        .map(|d| format!(" ({d})"))
        .unwrap_or_default();
    match service.status {
        Status::Healthy => format!("✅ {}{latency}{detail}", service.name),
        Status::Unhealthy => format!(
            "❌ {}{latency}: {}",
            service.name,
            service.detail.as_deref().unwrap_or("down")
        ),
        Status::NotConfigured => format!("➖ {}: not configured", service.name),
    }
}

wasmbot_sdk::handler!(handle);
