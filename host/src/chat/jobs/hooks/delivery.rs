//! What a hook delivery is, as the receiver checks it and the job runner
//! hands it on: the signature header, the signing secret's name, the kept
//! delivery.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// GitHub's header: `sha256=` and the hex HMAC of the body.
pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";

/// The vault credential holding a hook's signing secret.
pub fn hook_secret_name(plugin: &str, name: &str) -> String {
    format!("hook:{plugin}/{name}")
}

/// A kept delivery (`scheduled_jobs.payload` of a `webhook` row).
#[derive(Debug, Serialize, Deserialize)]
pub struct WebhookDelivery {
    pub name: String,
    pub headers: Vec<(String, String)>,
    /// The body, base64.
    pub body: String,
}

impl WebhookDelivery {
    pub fn body(&self) -> Result<Vec<u8>, String> {
        base64::engine::general_purpose::STANDARD
            .decode(&self.body)
            .map_err(|error| format!("the kept body is not base64: {error}"))
    }
}
