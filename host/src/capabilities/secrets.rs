//! `wasmbot:plugin/secrets`: a plugin reads a credential only when its
//! manifest lists the name. A denied read is an error for the plugin and an
//! audit entry; a value handed out is masked in that call's logs and reply.

use crate::runtime::CallState;
use crate::runtime::HOST_CALLS;
use crate::runtime::bindings::secrets::{self as wit, SecretError};

impl wit::Host for CallState {
    async fn get(&mut self, name: String) -> Result<String, SecretError> {
        self.spend(&HOST_CALLS)?;
        if !self.may_read_secret(&name) {
            // The first denial of the call in full; later ones are counted
            // in the call's summary line.
            if self.first_refusal("secret_denied") {
                tracing::warn!(secret = %name, "secret read denied: not in the manifest's `secrets`");
                self.audit_host_action(
                    "secret_denied",
                    "denied",
                    serde_json::json!({ "secret": name }),
                );
            }
            return Err(SecretError::Denied);
        }
        let services = self.services();
        let (Some(store), Some(vault)) = (services.store.clone(), services.vault.clone()) else {
            return Err(SecretError::Unavailable(
                "no ENCRYPTION_KEY is configured, so no secrets can be read".into(),
            ));
        };
        let stored = match store.get_credential(&name).await {
            Ok(Some(stored)) => stored,
            Ok(None) => return Err(SecretError::NotFound),
            Err(error) => {
                tracing::warn!(%error, secret = %name, "secret read failed");
                return Err(SecretError::Unavailable(
                    "the database is not available".into(),
                ));
            }
        };
        let plaintext = vault.decrypt(&stored).map_err(|error| {
            tracing::error!(%error, "secret cannot be decrypted");
            SecretError::Unavailable(error.to_string())
        })?;
        let value = String::from_utf8(plaintext.to_vec())
            .map_err(|_| SecretError::Unavailable(format!("secret `{name}` is not UTF-8 text")))?;
        self.remember_secret(&value);
        self.audit_host_action("secret_read", "ok", serde_json::json!({ "secret": name }));
        Ok(value)
    }
}

over_budget_is!(SecretError);
