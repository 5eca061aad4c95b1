//! Credentials (needs `capabilities = ["secrets"]` and the name under
//! `secrets = [...]` in the manifest). The host masks the value if the
//! plugin logs it or puts it in a reply.

use crate::bindings::wasmbot::plugin0_1_0::secrets as wit;
pub use crate::bindings::wasmbot::plugin0_1_0::secrets::SecretError;

impl SecretError {
    /// A sentence for a user or a log line.
    pub fn message(&self) -> String {
        match self {
            SecretError::Denied => "this plugin may not read that secret".to_string(),
            SecretError::NotFound => "no such secret is stored".to_string(),
            SecretError::Unavailable(why) => format!("secrets unavailable: {why}"),
            SecretError::OverBudget(why) => why.clone(),
        }
    }
}

impl From<SecretError> for String {
    fn from(error: SecretError) -> Self {
        error.message()
    }
}

pub fn get(name: &str) -> Result<String, SecretError> {
    wit::get(name)
}
