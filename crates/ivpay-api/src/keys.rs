//! API keys: our clients' keys with their scopes, and IVPAY's keys (one per account)
//! echoed on webhooks. Only SHA-256 digests are kept, and every configured digest is
//! compared in constant time, so neither the answer nor its timing tells which matched.

use std::fmt;
use std::str::FromStr;

use axum::http::HeaderMap;
use ivpay_domain::{AccountId, ClientId};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The header IVPAY and our clients put the key in.
pub const API_KEY_HEADER: &str = "x-api-key";

/// The prefix of a key given as its SHA-256 digest (`sha256:` and 64 hex digits).
pub const DIGEST_PREFIX: &str = "sha256:";

/// The SHA-256 digest of a key: all that is kept of it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct KeyDigest([u8; 32]);

impl fmt::Debug for KeyDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyDigest([REDACTED])")
    }
}

impl KeyDigest {
    /// The digest of a plaintext key.
    pub fn of(key: &[u8]) -> Self {
        Self(Sha256::digest(key).into())
    }

    /// A key as configured: `sha256:<64 hex digits>` is the digest itself (so no plaintext
    /// secret need sit in a file); anything else is the plaintext key.
    ///
    /// # Errors
    ///
    /// What is wrong with a `sha256:` value that is not 64 hex digits.
    pub fn from_config(key: &SecretString) -> Result<Self, String> {
        let text = key.expose_secret();
        match text.strip_prefix(DIGEST_PREFIX) {
            Some(hex) => hex.parse(),
            None => Ok(Self::of(text.as_bytes())),
        }
    }

    fn matches(&self, presented: &Self) -> bool {
        bool::from(self.0.ct_eq(&presented.0))
    }

    fn of_header(headers: &HeaderMap) -> Option<Self> {
        headers.get(API_KEY_HEADER).map(|v| Self::of(v.as_bytes()))
    }
}

/// 64 hex digits (either case).
impl FromStr for KeyDigest {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(text, &mut out)
            .map_err(|_| format!("{DIGEST_PREFIX} must be followed by 64 hex digits"))?;
        Ok(Self(out))
    }
}

/// What a key may do.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Scope {
    /// `POST /payment/create`.
    Create,
    /// Read the client's own payments: one, the listing, the history, refreshes.
    Read,
    /// The operators' `/admin` routes.
    Admin,
}

impl Scope {
    /// Every scope, in the order they are written.
    pub const ALL: [Scope; 3] = [Scope::Create, Scope::Read, Scope::Admin];

    /// The name in configuration and in error messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Read => "read",
            Self::Admin => "admin",
        }
    }

    fn bit(self) -> u8 {
        match self {
            Self::Create => 1,
            Self::Read => 2,
            Self::Admin => 4,
        }
    }
}

impl FromStr for Scope {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s)
            .ok_or_else(|| format!("unknown scope {s:?}: expected create, read or admin"))
    }
}

/// A set of scopes.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Scopes(u8);

impl Scopes {
    /// What a client's key may do unless told otherwise: create and read.
    pub const CLIENT: Scopes = Scopes(1 | 2);
    /// The operators' routes only.
    pub const ADMIN: Scopes = Scopes(4);

    /// Whether `scope` is in the set.
    pub fn allows(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl FromIterator<Scope> for Scopes {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        Self(iter.into_iter().fold(0, |bits, s| bits | s.bit()))
    }
}

impl fmt::Debug for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(
                Scope::ALL
                    .into_iter()
                    .filter(|s| self.allows(*s))
                    .map(Scope::as_str),
            )
            .finish()
    }
}

/// Who presented a known key, and what that key may do.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Caller {
    /// The client the key belongs to.
    pub client: ClientId,
    /// The key's scopes.
    pub scopes: Scopes,
}

/// The clients allowed to call the API: each key's digest, its client and its scopes. A
/// client may have several keys (to rotate one without downtime: add the new key, move
/// the callers, remove the old).
#[derive(Clone, Default)]
pub struct ClientKeys {
    entries: Vec<(KeyDigest, Caller)>,
}

impl fmt::Debug for ClientKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientKeys")
            .field(
                "keys",
                &self
                    .entries
                    .iter()
                    .map(|(_, c)| (c.client.as_str(), c.scopes))
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

    /// Allows `client` with `key` and the client scopes (create, read). The key itself is
    /// not kept.
    #[must_use]
    pub fn with(self, client: ClientId, key: &SecretString) -> Self {
        self.with_digest(
            client,
            KeyDigest::of(key.expose_secret().as_bytes()),
            Scopes::CLIENT,
        )
    }

    /// Allows `client` with the key whose digest is `digest`, for `scopes`.
    #[must_use]
    pub fn with_digest(mut self, client: ClientId, digest: KeyDigest, scopes: Scopes) -> Self {
        self.entries.push((digest, Caller { client, scopes }));
        self
    }

    /// How many keys are configured.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no key is configured.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether `client` has a key.
    pub fn knows(&self, client: &ClientId) -> bool {
        self.entries.iter().any(|(_, c)| &c.client == client)
    }

    /// Whether some key may use `scope`.
    pub fn any_allows(&self, scope: Scope) -> bool {
        self.entries.iter().any(|(_, c)| c.scopes.allows(scope))
    }

    /// The caller whose key is in the headers, if any. Every configured digest is
    /// compared, so the time taken does not tell which one matched.
    pub fn authenticate(&self, headers: &HeaderMap) -> Option<Caller> {
        let presented = KeyDigest::of_header(headers)?;
        let mut found = None;
        for (stored, caller) in &self.entries {
            if stored.matches(&presented) && found.is_none() {
                found = Some(caller.clone());
            }
        }
        found
    }
}

/// IVPAY's keys, one per account, as they come back on webhooks.
#[derive(Clone, Default)]
pub struct WebhookKeys {
    entries: Vec<(KeyDigest, AccountId)>,
}

impl fmt::Debug for WebhookKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookKeys")
            .field(
                "accounts",
                &self
                    .entries
                    .iter()
                    .map(|(_, a)| a.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl WebhookKeys {
    /// No account: every webhook is refused.
    pub fn new() -> Self {
        Self::default()
    }

    /// Accepts webhooks echoing `key`, IVPAY's key of `account`.
    #[must_use]
    pub fn with(mut self, account: AccountId, key: &SecretString) -> Self {
        self.entries
            .push((KeyDigest::of(key.expose_secret().as_bytes()), account));
        self
    }

    /// Whether no account is configured.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The accounts, each once, in the order they were added.
    pub fn accounts(&self) -> Vec<&AccountId> {
        let mut seen: Vec<&AccountId> = Vec::new();
        for (_, account) in &self.entries {
            if !seen.contains(&account) {
                seen.push(account);
            }
        }
        seen
    }

    /// The account whose key the headers carry, if any (every digest compared).
    pub fn verify(&self, headers: &HeaderMap) -> Option<AccountId> {
        let presented = KeyDigest::of_header(headers)?;
        let mut found = None;
        for (stored, account) in &self.entries {
            if stored.matches(&presented) && found.is_none() {
                found = Some(account.clone());
            }
        }
        found
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

    fn id<T: FromStr>(s: &str) -> T
    where
        T::Err: fmt::Debug,
    {
        s.parse().expect("valid")
    }

    #[test]
    fn finds_the_client_by_any_of_its_keys_and_refuses_others() {
        let keys = ClientKeys::new()
            .with(id("a"), &SecretString::from("key-a"))
            .with(id("b"), &SecretString::from("key-b"))
            .with(id("b"), &SecretString::from("key-b-next"));
        for (key, client) in [("key-b", "b"), ("key-b-next", "b"), ("key-a", "a")] {
            let caller = keys.authenticate(&headers(key)).expect("known");
            assert_eq!(caller.client.as_str(), client);
            assert_eq!(caller.scopes, Scopes::CLIENT);
        }
        assert_eq!(keys.authenticate(&headers("key-")), None);
        assert_eq!(keys.authenticate(&HeaderMap::new()), None);
        assert!(!format!("{keys:?}").contains("key-a"));
    }

    #[test]
    fn a_key_may_be_configured_as_its_digest() {
        // sha256("rotated-key")
        let hex = format!("{:x}", Sha256::digest(b"rotated-key"));
        let digest =
            KeyDigest::from_config(&SecretString::from(format!("sha256:{hex}"))).expect("digest");
        let upper = KeyDigest::from_config(&SecretString::from(format!(
            "sha256:{}",
            hex.to_uppercase()
        )))
        .expect("either case");
        assert_eq!(digest, upper);
        let keys = ClientKeys::new().with_digest(id("shop"), digest, Scopes::CLIENT);
        assert!(keys.authenticate(&headers("rotated-key")).is_some());
        assert!(
            keys.authenticate(&headers(&format!("sha256:{hex}")))
                .is_none()
        );
        for bad in ["sha256:abc", "sha256:zz", &format!("sha256:{hex}0")] {
            let err = KeyDigest::from_config(&SecretString::from(bad.to_owned())).expect_err(bad);
            assert!(err.contains("64 hex digits"), "{err}");
        }
        assert_eq!(
            KeyDigest::from_config(&SecretString::from("plain")).expect("plain"),
            KeyDigest::of(b"plain")
        );
    }

    #[test]
    fn scopes_parse_and_combine() {
        let scopes: Scopes = ["read", "admin"]
            .iter()
            .map(|s| s.parse::<Scope>().expect("scope"))
            .collect();
        assert!(scopes.allows(Scope::Read) && scopes.allows(Scope::Admin));
        assert!(!scopes.allows(Scope::Create));
        assert_eq!(format!("{scopes:?}"), r#"{"read", "admin"}"#);
        let unknown = "write".parse::<Scope>().expect_err("not a scope");
        assert!(unknown.contains("create, read or admin"), "{unknown}");
        assert!(Scopes::default().is_empty());
    }

    #[test]
    fn webhook_keys_name_the_account_and_hide_themselves() {
        let k = WebhookKeys::new()
            .with(AccountId::default(), &SecretString::from("ivpay-secret"))
            .with(id("pos-2"), &SecretString::from("ivpay-other"));
        assert_eq!(
            k.verify(&headers("ivpay-secret")),
            Some(AccountId::default())
        );
        assert_eq!(k.verify(&headers("ivpay-other")), Some(id("pos-2")));
        assert_eq!(k.verify(&headers("ivpay-secre")), None);
        assert_eq!(k.verify(&HeaderMap::new()), None);
        assert!(!format!("{k:?}").contains("ivpay-secret"));
    }
}
