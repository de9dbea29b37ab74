//! Encryption at rest for stored credentials: XChaCha20-Poly1305 with a random nonce per value and
//! the value's name as associated data, so a ciphertext cannot be moved to another row.

use std::{
    fmt,
    io::Write,
    path::{Path, PathBuf},
};

use base64::{engine::general_purpose::STANDARD, Engine};
use chacha20poly1305::{
    aead::{Aead, KeyInit, Payload},
    XChaCha20Poly1305, XNonce,
};

const FORMAT_PREFIX: &str = "v1:";
const NONCE_LEN: usize = 24;

#[derive(Debug, thiserror::Error)]
pub enum SecretBoxError {
    #[error("SECRET_KEY must be 32 random bytes written as base64 (e.g. `openssl rand -base64 32`) or 64 hex digits")]
    BadKey,
    #[error("cannot read or write the secret key file {path}: {source}")]
    KeyFile {
        path: String,
        source: std::io::Error,
    },
    #[error("a stored credential cannot be decrypted: the SECRET_KEY differs from the one it was saved with, or the value was altered")]
    Decrypt,
    #[error("randomness unavailable: {0}")]
    Random(String),
}

/// The key that seals stored credentials. It never prints.
#[derive(Clone)]
pub struct SecretBox {
    cipher: XChaCha20Poly1305,
}

impl fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretBox([REDACTED])")
    }
}

impl SecretBox {
    pub fn from_key_bytes(key: &[u8; 32]) -> Self {
        Self {
            cipher: XChaCha20Poly1305::new(key.into()),
        }
    }

    /// Parses a key given as base64 or hex text.
    pub fn from_key_text(text: &str) -> Result<Self, SecretBoxError> {
        let text = text.trim();
        let bytes = if text.len() == 64 && text.chars().all(|c| c.is_ascii_hexdigit()) {
            (0..32)
                .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16))
                .collect::<Result<Vec<u8>, _>>()
                .map_err(|_| SecretBoxError::BadKey)?
        } else {
            STANDARD
                .decode(text)
                .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(text))
                .map_err(|_| SecretBoxError::BadKey)?
        };
        let key: [u8; 32] = bytes.try_into().map_err(|_| SecretBoxError::BadKey)?;
        Ok(Self::from_key_bytes(&key))
    }

    /// Reads the key file, or creates it with a fresh random key and mode 0600 when it is absent.
    pub fn load_or_create(path: &Path) -> Result<Self, SecretBoxError> {
        let io_err = |source| SecretBoxError::KeyFile {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => Self::from_key_text(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(io_err)?;
                }
                let mut key = [0u8; 32];
                getrandom::getrandom(&mut key)
                    .map_err(|e| SecretBoxError::Random(e.to_string()))?;
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    options.mode(0o600);
                }
                let mut file = options.open(path).map_err(io_err)?;
                file.write_all(STANDARD.encode(key).as_bytes())
                    .and_then(|_| file.sync_all())
                    .map_err(io_err)?;
                Ok(Self::from_key_bytes(&key))
            }
            Err(e) => Err(io_err(e)),
        }
    }

    pub fn seal(&self, associated: &str, plaintext: &str) -> Result<String, SecretBoxError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::getrandom(&mut nonce).map_err(|e| SecretBoxError::Random(e.to_string()))?;
        let sealed = self
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: associated.as_bytes(),
                },
            )
            .map_err(|_| SecretBoxError::Decrypt)?;
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(format!("{FORMAT_PREFIX}{}", STANDARD.encode(out)))
    }

    pub fn open(&self, associated: &str, stored: &str) -> Result<String, SecretBoxError> {
        let raw = stored
            .strip_prefix(FORMAT_PREFIX)
            .and_then(|b| STANDARD.decode(b).ok())
            .filter(|raw| raw.len() > NONCE_LEN)
            .ok_or(SecretBoxError::Decrypt)?;
        let (nonce, sealed) = raw.split_at(NONCE_LEN);
        let plain = self
            .cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: associated.as_bytes(),
                },
            )
            .map_err(|_| SecretBoxError::Decrypt)?;
        String::from_utf8(plain).map_err(|_| SecretBoxError::Decrypt)
    }
}

/// Where the generated key lives when `SECRET_KEY` is not set: beside the database file.
pub fn default_key_path(database_file: &Path) -> PathBuf {
    database_file
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."))
        .join("secret.key")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_binds_the_name() {
        let b = SecretBox::from_key_bytes(&[7; 32]);
        let sealed = b.seal("hibob_token", "tok-123").unwrap();
        assert!(!sealed.contains("tok-123"));
        assert_eq!(b.open("hibob_token", &sealed).unwrap(), "tok-123");
        assert!(b.open("plugin_token", &sealed).is_err(), "moved ciphertext");
        assert_ne!(sealed, b.seal("hibob_token", "tok-123").unwrap(), "nonce");
    }

    #[test]
    fn a_different_key_or_tampering_fails_cleanly() {
        let a = SecretBox::from_key_bytes(&[1; 32]);
        let b = SecretBox::from_key_bytes(&[2; 32]);
        let sealed = a.seal("k", "v").unwrap();
        assert!(matches!(b.open("k", &sealed), Err(SecretBoxError::Decrypt)));
        let mut tampered = sealed.clone().into_bytes();
        let last = tampered.len() - 3;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert!(a.open("k", &tampered).is_err());
        assert!(a.open("k", "garbage").is_err());
    }

    #[test]
    fn key_text_forms() {
        assert!(SecretBox::from_key_text(&"ab".repeat(32)).is_ok());
        assert!(SecretBox::from_key_text(&STANDARD.encode([9u8; 32])).is_ok());
        assert!(matches!(
            SecretBox::from_key_text("short"),
            Err(SecretBoxError::BadKey)
        ));
    }

    #[test]
    fn key_file_is_created_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/secret.key");
        let first = SecretBox::load_or_create(&path).unwrap();
        let sealed = first.seal("k", "v").unwrap();
        let again = SecretBox::load_or_create(&path).unwrap();
        assert_eq!(again.open("k", &sealed).unwrap(), "v");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
