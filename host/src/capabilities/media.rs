//! `wasmbot:plugin/media`: the bytes of a file that came with the event,
//! downloaded only when a plugin granted `media` asks (Telegram `getFile`,
//! or the console's local file), within the operator's `MEDIA_MAX_MB`.
//! Only the event's own attachments can be fetched: an id from another
//! chat's message is not found. Each fetch is audited (`media_fetch`).

use std::time::Instant;

use crate::runtime::bindings::media::{self as wit, MediaError};
use crate::runtime::{Budget, CallState, FetchFailure};

/// Counted per call; `limits.media_fetches` in the manifest, `PLUGIN_MEDIA_FETCHES` for the operator.
pub static MEDIA_FETCHES: Budget = Budget::new("media_fetches", "media fetches", 5, 50);

impl wit::Host for CallState {
    async fn fetch(&mut self, id: String) -> Result<Vec<u8>, MediaError> {
        self.spend(&MEDIA_FETCHES)?;
        let ctx = self.context();
        let Some(attachment) = ctx.attachments.iter().find(|a| a.id == id).cloned() else {
            return Err(MediaError::NotFound(
                "no file of this event has that id (only the event's own attachments can be fetched)"
                    .into(),
            ));
        };
        let (link, cap) = (ctx.link.clone(), ctx.services.media.max_bytes);
        let started = Instant::now();
        let outcome = match (link, attachment.size) {
            (_, Some(size)) if size > cap => Err(FetchFailure::TooLarge { cap }),
            (Some(link), _) => link.fetch(&attachment, cap).await,
            (None, _) => Err(FetchFailure::Unavailable(
                "this event came from no chat that can hand over files".into(),
            )),
        };
        let status = match &outcome {
            Ok(_) => "ok",
            Err(FetchFailure::TooLarge { .. }) => "too_large",
            Err(FetchFailure::Unavailable(_)) => "unavailable",
        };
        let bytes = outcome.as_ref().map_or(0, Vec::len);
        let mut entry =
            self.audit_entry("media_fetch", if outcome.is_ok() { "ok" } else { "error" });
        entry.duration_ms = Some(started.elapsed().as_secs_f64() * 1000.0);
        entry.error = outcome.as_ref().err().map(ToString::to_string);
        entry.metadata = sqlx::types::Json(serde_json::json!({
            "kind": format!("{:?}", attachment.kind).to_lowercase(),
            "mime_type": attachment.mime_type,
            "bytes": bytes,
        }));
        self.record_audit(entry);
        tracing::info!(plugin = self.plugin(), status, bytes, "media_fetch");
        outcome.map_err(|failure| match failure {
            FetchFailure::TooLarge { cap } => MediaError::TooLarge(cap),
            FetchFailure::Unavailable(why) => MediaError::Unavailable(why),
        })
    }
}

over_budget_is!(MediaError);
