//! API keys: our clients' keys, IVPAY's key echoed on webhooks, and the operators' key. Only SHA-256 digests
//! are kept, and compared in constant time.

use std::fmt;

use axum::http::HeaderMap;
use ivpay_domain::ClientId;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The header IVPAY and our clients put the key in.
pub const API_KEY_HEADER: &str = "x-api-key";

fn digest(key: &[u8]) -> [u8; 32] {
    Sha256::digest(key).into()
}

/// The clients allowed to call the API, each known by the digest of its key.
#[derive(Clone, Default)]
pub struct ClientKeys {
    entries: Vec<([u8; 32], ClientId)>,
}

impl fmt::Debug for ClientKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientKeys")
            .field(
                "clients",
                &self
                    .entries
                    .iter()
                    .map(|(_, c)| c.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl ClientKeys {
    /// No clients: every request is refused.
    pub fn new() -> Self {
        Self::default()
    }

    /// Allows `client` with `key`. The key itself is not kept.
    pub fn with(mut self, client: ClientId, key: &SecretString) -> Self {
        self.entries
            .push((digest(key.expose_secret().as_bytes()), client));
        self
    }

    /// Allows a client known only by the SHA-256 digest of its key (as stored in config).
    pub fn with_digest(mut self, client: ClientId, sha256: [u8; 32]) -> Self {
        self.entries.push((sha256, client));
        self
    }

    /// How many clients are configured.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no client is configured.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The client whose key is in the headers, if any. Every configured digest is compared,
    /// so the time taken does not tell which one matched.
    pub fn authenticate(&self, headers: &HeaderMap) -> Option<ClientId> {
        let presented = digest(headers.get(API_KEY_HEADER)?.as_bytes());
        let mut found = None;
        for (stored, client) in &self.entries {
            if bool::from(stored.ct_eq(&presented)) && found.is_none() {
                found = Some(client.clone());
            }
        }
        found
    }
}

/// IVPAY's API key, as it comes back on webhooks.
#[derive(Clone)]
pub struct WebhookKey([u8; 32]);

impl fmt::Debug for WebhookKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookKey([REDACTED])")
    }
}

impl WebhookKey {
    /// Keeps the digest of IVPAY's key.
    pub fn new(key: &SecretString) -> Self {
        Self(digest(key.expose_secret().as_bytes()))
    }

    /// Whether the headers carry the key.
    pub fn verify(&self, headers: &HeaderMap) -> bool {
        headers
            .get(API_KEY_HEADER)
            .is_some_and(|v| bool::from(self.0.ct_eq(&digest(v.as_bytes()))))
    }
}

/// The operators' key for the `/admin` routes.
#[derive(Clone)]
pub struct AdminKey(WebhookKey);

impl fmt::Debug for AdminKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminKey([REDACTED])")
    }
}

impl AdminKey {
    /// Keeps the digest of the operators' key.
    pub fn new(key: &SecretString) -> Self {
        Self(WebhookKey::new(key))
    }

    /// Whether the headers carry the key (compared in constant time).
    pub fn verify(&self, headers: &HeaderMap) -> bool {
        self.0.verify(headers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(key: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(API_KEY_HEADER, HeaderValue::from_str(key).expect("ascii"));
        h
    }

    #[test]
    fn finds_the_client_by_key_and_refuses_others() {
        let keys = ClientKeys::new()
            .with("a".parse().expect("id"), &SecretString::from("key-a"))
            .with("b".parse().expect("id"), &SecretString::from("key-b"));
        assert_eq!(
            keys.authenticate(&headers("key-b")).map(|c| c.to_string()),
            Some("b".into())
        );
        assert_eq!(keys.authenticate(&headers("key-")), None);
        assert_eq!(keys.authenticate(&HeaderMap::new()), None);
        assert!(!format!("{keys:?}").contains("key-a"));
    }

    #[test]
    fn webhook_key_matches_exactly_and_hides_itself() {
        let k = WebhookKey::new(&SecretString::from("ivpay-secret"));
        assert!(k.verify(&headers("ivpay-secret")));
        assert!(!k.verify(&headers("ivpay-secre")));
        assert!(!format!("{k:?}").contains("ivpay"));
    }
}
