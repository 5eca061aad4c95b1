//! `/health`: one line per service the host depends on, ✅/❌ and latency.
//! `/health now` checks again instead of showing the last results, with a
//! "Check again" button: a press re-checks and updates that message in place.

use wasmbot_sdk::health::{Service, Status};
use wasmbot_sdk::prelude::*;

/// The data of the "Check again" button.
const RECHECK: &str = "recheck";

fn handle(event: Event) -> EventResult {
    if let Some(press) = event.press() {
        if press.data != RECHECK {
            return Ok(notice("This button no longer works. Send /health now.").into());
        }
        // No `typing()`: actions run once the checks are done, so it would
        // only linger after the edit.
        let report = report(health::check_now());
        return Ok(actions![
            edit(press.message(), with_button(report)),
            notice("Checked"),
        ]);
    }
    if event.args() == "now" {
        return Ok(with_button(report(health::check_now())).into());
    }
    let mut services = health::latest();
    if services.is_empty() {
        services = health::check_now();
    }
    Ok(report(services).into())
}

fn with_button(report: Reply) -> Reply {
    report.button("Check again", RECHECK)
}

fn report(services: Vec<Service>) -> Reply {
    if services.is_empty() {
        return Reply::text("No health information is available on this host.");
    }
    let lines: Vec<String> = services.iter().map(line).collect();
    Reply::text(lines.join("\n"))
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
