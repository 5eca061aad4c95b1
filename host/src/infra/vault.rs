//! The vault: AES-256-GCM for credentials at rest. A fresh random 96-bit
//! nonce per encryption; the credential's name is the associated data, so a
//! ciphertext copied to another row does not decrypt. Keys and plaintexts
//! are zeroized when dropped.

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use zeroize::Zeroizing;

use crate::infra::store::StoredCredential;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VaultError {
    /// The key itself is never part of the message.
    #[error("{variable}: expected 64 hexadecimal characters (a 32-byte key), got {problem}")]
    BadKey { variable: String, problem: String },
    #[error(
        "credential `{0}` cannot be decrypted: wrong ENCRYPTION_KEY, or the stored data was altered"
    )]
    Decrypt(String),
    #[error("credential `{0}` cannot be encrypted")]
    Encrypt(String),
}

/// What names the operator's credentials take (`secrets set NAME`, `oauth
/// add NAME`): the host keeps its own under names outside this rule
/// (`hook:…`, `oauth:…`), which no manifest can list.
pub const CREDENTIAL_NAME_RULE: &str = "1-128 characters of A-Z, a-z, 0-9, '_', '-' or '.'";

pub fn is_credential_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

pub struct Vault {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Vault([redacted])")
    }
}

impl Vault {
    /// `variable` names where the key came from, for the error message.
    pub fn from_hex(variable: &str, key_hex: &str) -> Result<Self, VaultError> {
        let key_hex = key_hex.trim();
        let bad = |problem: String| VaultError::BadKey {
            variable: variable.to_string(),
            problem,
        };
        if key_hex.len() != 64 {
            return Err(bad(format!("{} characters", key_hex.len())));
        }
        let mut key = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(key_hex, key.as_mut_slice())
            .map_err(|_| bad("characters that are not hexadecimal".into()))?;
        let cipher = Aes256Gcm::new_from_slice(key.as_slice())
            .map_err(|_| bad("a key of the wrong length".into()))?;
        Ok(Self { cipher })
    }

    /// A new random key as 64 hex characters (for `.env`).
    pub fn generate_key_hex() -> Zeroizing<String> {
        let key = Aes256Gcm::generate_key(&mut OsRng);
        Zeroizing::new(hex::encode(key.as_slice()))
    }

    pub fn encrypt(
        &self,
        name: &str,
        plaintext: &[u8],
        key_version: i32,
    ) -> Result<StoredCredential, VaultError> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let ciphertext = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: name.as_bytes(),
                },
            )
            .map_err(|_| VaultError::Encrypt(name.to_string()))?;
        Ok(StoredCredential {
            name: name.to_string(),
            ciphertext,
            nonce: nonce.to_vec(),
            key_version,
        })
    }

    pub fn decrypt(&self, stored: &StoredCredential) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        if stored.nonce.len() != 12 {
            return Err(VaultError::Decrypt(stored.name.clone()));
        }
        self.cipher
            .decrypt(
                Nonce::from_slice(&stored.nonce),
                Payload {
                    msg: &stored.ciphertext,
                    aad: stored.name.as_bytes(),
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| VaultError::Decrypt(stored.name.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    fn vault() -> Vault {
        Vault::from_hex("ENCRYPTION_KEY", KEY).unwrap()
    }

    #[test]
    fn round_trip_and_fresh_nonces() {
        let vault = vault();
        let a = vault.encrypt("github", b"hunter2", 1).unwrap();
        let b = vault.encrypt("github", b"hunter2", 1).unwrap();
        assert_ne!(a.ciphertext, b.ciphertext);
        assert_ne!(a.nonce, b.nonce);
        assert_eq!(a.nonce.len(), 12);
        assert!(!a.ciphertext.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(vault.decrypt(&a).unwrap().as_slice(), b"hunter2");
    }

    #[test]
    fn any_flipped_byte_is_an_error_not_garbage() {
        let vault = vault();
        let good = vault.encrypt("github", b"hunter2", 1).unwrap();
        for i in 0..good.ciphertext.len() {
            let mut bad = good.clone();
            bad.ciphertext[i] ^= 0x01;
            assert_eq!(
                vault.decrypt(&bad).unwrap_err(),
                VaultError::Decrypt("github".into())
            );
        }
        for i in 0..good.nonce.len() {
            let mut bad = good.clone();
            bad.nonce[i] ^= 0x80;
            assert!(vault.decrypt(&bad).is_err());
        }
    }

    #[test]
    fn a_ciphertext_moved_to_another_name_fails() {
        let vault = vault();
        let mut moved = vault.encrypt("github", b"hunter2", 1).unwrap();
        moved.name = "gitlab".into();
        assert_eq!(
            vault.decrypt(&moved).unwrap_err(),
            VaultError::Decrypt("gitlab".into())
        );
    }

    #[test]
    fn a_wrong_key_is_a_clear_error() {
        let stored = vault().encrypt("github", b"hunter2", 1).unwrap();
        let other = Vault::from_hex("ENCRYPTION_KEY", &KEY.replace("1f", "ff")).unwrap();
        let error = other.decrypt(&stored).unwrap_err().to_string();
        assert!(error.contains("wrong ENCRYPTION_KEY"), "{error}");
    }

    #[test]
    fn malformed_keys_are_refused_without_echoing_them() {
        let short = Vault::from_hex("ENCRYPTION_KEY", "abcd")
            .err()
            .unwrap()
            .to_string();
        assert_eq!(
            short,
            "ENCRYPTION_KEY: expected 64 hexadecimal characters (a 32-byte key), got 4 characters"
        );
        let not_hex = "zz".repeat(32);
        let error = Vault::from_hex("ENCRYPTION_KEY", &not_hex)
            .err()
            .unwrap()
            .to_string();
        assert!(
            error.contains("not hexadecimal") && !error.contains("zz"),
            "{error}"
        );
        assert_eq!(Vault::generate_key_hex().len(), 64);
    }
}
