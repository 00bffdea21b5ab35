//! Endpoint signing secrets sealed at rest.
//!
//! Whoever reads a database dump or a backup should not be able to sign notices a
//! merchant would trust. With keys given ([`SecretsKeys`]), an endpoint's secrets are
//! stored as `sealed:v1:<base64 of nonce, ciphertext and tag>`: ChaCha20-Poly1305 under
//! the first key, a random 96-bit nonce per write, and the endpoint's id as associated
//! data (a sealed value copied onto another endpoint's row does not open). Every key
//! given opens, so a new key can be put first while the old one still reads the rows it
//! sealed; [`crate::SeaOrmRepository::seal_endpoint_secrets`] then seals them all again
//! under the first. Without keys, secrets are stored in clear, as before sealing existed.

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

/// The prefix of a sealed value: the scheme and its version.
const SEALED: &str = "sealed:v1:";

/// The keys that seal and open endpoint secrets: the first seals, each opens. The key
/// material never appears in `Debug` output.
#[derive(Clone)]
pub struct SecretsKeys(Arc<Vec<LessSafeKey>>);

impl fmt::Debug for SecretsKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretsKeys({} keys, redacted)", self.0.len())
    }
}

/// Why a key was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    /// No key was given.
    #[error("no key given")]
    Empty,
    /// Not standard base64.
    #[error("key {0} is not base64 (make one with `openssl rand -base64 32`)")]
    NotBase64(usize),
    /// Not 32 bytes once decoded.
    #[error("key {0} has {1} bytes, not 32 (make one with `openssl rand -base64 32`)")]
    Length(usize, usize),
}

/// Why a stored value did not open.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OpenError {
    /// Sealed, and no key was given.
    #[error("the secrets are sealed and no key to open them is set (notify.secrets_keys)")]
    NoKey,
    /// Sealed, and none of the keys opens it (another key, or a damaged value).
    #[error("the secrets are sealed and none of the keys set opens them")]
    WrongKey,
}

impl SecretsKeys {
    /// Keys from their base64 texts (32 bytes each), the sealing key first.
    ///
    /// # Errors
    ///
    /// [`KeyError`], naming the key by its place (from 1).
    pub fn from_base64<S: AsRef<str>>(texts: &[S]) -> Result<Self, KeyError> {
        if texts.is_empty() {
            return Err(KeyError::Empty);
        }
        let mut keys = Vec::with_capacity(texts.len());
        for (i, text) in texts.iter().enumerate() {
            let place = i + 1;
            let bytes = STANDARD
                .decode(text.as_ref().trim())
                .map_err(|_| KeyError::NotBase64(place))?;
            let unbound = UnboundKey::new(&CHACHA20_POLY1305, &bytes)
                .map_err(|_| KeyError::Length(place, bytes.len()))?;
            keys.push(LessSafeKey::new(unbound));
        }
        Ok(Self(Arc::new(keys)))
    }

    /// `clear` sealed under the first key, bound to `endpoint`.
    pub(crate) fn seal(&self, endpoint: &str, clear: &str) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .expect("the system's random source works");
        let mut sealed = clear.as_bytes().to_vec();
        self.0[0]
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(endpoint.as_bytes()),
                &mut sealed,
            )
            .expect("a secret fits ChaCha20-Poly1305's limits");
        let mut whole = nonce.to_vec();
        whole.extend_from_slice(&sealed);
        format!("{SEALED}{}", STANDARD.encode(whole))
    }

    /// Opens a sealed value with whichever key opens it.
    fn open(&self, endpoint: &str, encoded: &str) -> Result<String, OpenError> {
        self.open_with(self.0.iter(), endpoint, encoded)
    }

    /// Whether `stored` is sealed under the first key (so sealing it anew changes nothing).
    pub(crate) fn sealed_by_first(&self, endpoint: &str, stored: &str) -> bool {
        stored.strip_prefix(SEALED).is_some_and(|encoded| {
            self.open_with(self.0.iter().take(1), endpoint, encoded)
                .is_ok()
        })
    }

    fn open_with<'k>(
        &self,
        keys: impl Iterator<Item = &'k LessSafeKey>,
        endpoint: &str,
        encoded: &str,
    ) -> Result<String, OpenError> {
        let whole = STANDARD.decode(encoded).map_err(|_| OpenError::WrongKey)?;
        if whole.len() < NONCE_LEN {
            return Err(OpenError::WrongKey);
        }
        let (nonce, sealed) = whole.split_at(NONCE_LEN);
        for key in keys {
            let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| OpenError::WrongKey)?;
            let mut buffer = sealed.to_vec();
            if let Ok(clear) = key.open_in_place(nonce, Aad::from(endpoint.as_bytes()), &mut buffer)
            {
                return String::from_utf8(clear.to_vec()).map_err(|_| OpenError::WrongKey);
            }
        }
        Err(OpenError::WrongKey)
    }
}

/// What to store for `clear`: sealed when there are keys.
pub(crate) fn stored(keys: Option<&SecretsKeys>, endpoint: &str, clear: String) -> String {
    match keys {
        Some(keys) => keys.seal(endpoint, &clear),
        None => clear,
    }
}

/// The clear text of a stored value (sealed or not).
pub(crate) fn opened(
    keys: Option<&SecretsKeys>,
    endpoint: &str,
    stored: String,
) -> Result<String, OpenError> {
    let Some(encoded) = stored.strip_prefix(SEALED) else {
        return Ok(stored);
    };
    keys.ok_or(OpenError::NoKey)?.open(endpoint, encoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
    const TWO: &str = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=";
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn keys(texts: &[&str]) -> SecretsKeys {
        SecretsKeys::from_base64(texts).expect("valid keys")
    }

    #[test]
    fn sealed_secrets_hide_the_text_and_open_only_for_their_endpoint() {
        let k = keys(&[ONE]);
        let a = stored(Some(&k), "orders", SECRET.to_owned());
        let b = stored(Some(&k), "orders", SECRET.to_owned());
        assert!(a.starts_with(SEALED) && !a.contains("MfKQ9r8"), "{a}");
        assert_ne!(a, b, "a fresh nonce per write");
        assert_eq!(opened(Some(&k), "orders", a.clone()).as_deref(), Ok(SECRET));
        assert_eq!(
            opened(Some(&k), "refunds", a.clone()),
            Err(OpenError::WrongKey),
            "copied onto another endpoint, it does not open"
        );
        assert_eq!(opened(None, "orders", a), Err(OpenError::NoKey));
    }

    #[test]
    fn every_key_opens_and_the_first_seals() {
        let old = stored(Some(&keys(&[ONE])), "orders", SECRET.to_owned());
        let rotated = keys(&[TWO, ONE]);
        assert_eq!(
            opened(Some(&rotated), "orders", old.clone()).as_deref(),
            Ok(SECRET)
        );
        assert!(!rotated.sealed_by_first("orders", &old));
        let new = stored(Some(&rotated), "orders", SECRET.to_owned());
        assert!(rotated.sealed_by_first("orders", &new));
        assert!(!rotated.sealed_by_first("orders", SECRET));
        assert_eq!(
            opened(Some(&keys(&[TWO])), "orders", new).as_deref(),
            Ok(SECRET)
        );
        assert_eq!(
            opened(Some(&keys(&[TWO])), "orders", old),
            Err(OpenError::WrongKey),
            "the old key gone, what it sealed no longer opens"
        );
    }

    #[test]
    fn clear_values_pass_through_and_damaged_ones_do_not_open() {
        let k = keys(&[ONE]);
        assert_eq!(
            opened(Some(&k), "orders", SECRET.to_owned()).as_deref(),
            Ok(SECRET)
        );
        assert_eq!(stored(None, "orders", SECRET.to_owned()), SECRET);
        // One character in the middle of the sealed text changed (the last one may only
        // carry base64 padding bits, and changing it can leave the bytes as they were).
        let mut damaged: Vec<char> = stored(Some(&k), "orders", SECRET.to_owned())
            .chars()
            .collect();
        let middle = SEALED.len() + (damaged.len() - SEALED.len()) / 2;
        damaged[middle] = if damaged[middle] == 'A' { 'B' } else { 'A' };
        let damaged: String = damaged.into_iter().collect();
        assert!(opened(Some(&k), "orders", damaged).is_err());
        assert!(opened(Some(&k), "orders", format!("{SEALED}AAAA")).is_err());
    }

    #[test]
    fn bad_keys_are_refused_by_place_and_keys_never_print() {
        assert_eq!(
            SecretsKeys::from_base64(&[ONE, "not base64!"]).err(),
            Some(KeyError::NotBase64(2))
        );
        assert_eq!(
            SecretsKeys::from_base64(&["c2hvcnQ="]).err(),
            Some(KeyError::Length(1, 5))
        );
        assert_eq!(
            SecretsKeys::from_base64::<&str>(&[]).err(),
            Some(KeyError::Empty)
        );
        let shown = format!("{:?}", keys(&[ONE, TWO]));
        assert_eq!(shown, "SecretsKeys(2 keys, redacted)");
    }
}
