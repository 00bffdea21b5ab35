//! The settings of tenancy: clients with their keys, scopes, account and redirect hosts;
//! the merchant's named IVPAY accounts; and the embedded sandbox's opt-in on a shared
//! address.

use std::collections::BTreeMap;
use std::fmt;

use ivpay_api::{HostPattern, Scope, Scopes};
use ivpay_domain::AccountId;
use secrecy::SecretString;
use serde::Deserialize;
use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

/// `[clients.<name>]`: a client, given as its one key (`shop = "key"`: scopes create and
/// read, the default account, any redirect host) or as a table.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    /// Its keys (several, to rotate one without downtime), each with its scopes.
    pub keys: Vec<KeySettings>,
    /// The IVPAY account its payments are made through. Default `default` (`ivpay.api_key`).
    pub account: AccountId,
    /// The hosts `url_success` and `url_failed` may name (`shop.example`, or
    /// `*.shop.example` for its subdomains); empty allows any.
    pub redirect_hosts: Vec<HostPattern>,
}

/// One key of a client.
#[derive(Debug, Clone)]
pub struct KeySettings {
    /// The key, or its SHA-256 digest as `sha256:<64 hex digits>`.
    pub key: SecretString,
    /// What it may do. Default create and read.
    pub scopes: Scopes,
}

/// The table form of a client.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientTable {
    /// One key (with `scopes`), for clients with a single key and for the environment.
    key: Option<SecretString>,
    scopes: Option<ScopeList>,
    #[serde(default)]
    keys: Vec<KeySettings>,
    #[serde(default)]
    account: Option<AccountId>,
    #[serde(default)]
    redirect_hosts: Option<List<HostPattern>>,
}

impl<'de> Deserialize<'de> for ClientSettings {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ClientSettings;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key, or a table with `keys`, `account`, `redirect_hosts`")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<ClientSettings, E> {
                Ok(ClientSettings::from(s))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ClientSettings, A::Error> {
                let t = ClientTable::deserialize(MapAccessDeserializer::new(map))?;
                let mut keys = t.keys;
                match (t.key, t.scopes) {
                    (Some(key), scopes) => keys.insert(
                        0,
                        KeySettings {
                            key,
                            scopes: scopes.map_or(Scopes::CLIENT, |s| s.0),
                        },
                    ),
                    (None, Some(_)) => {
                        return Err(de::Error::custom("`scopes` goes with `key`"));
                    }
                    (None, None) => {}
                }
                if keys.is_empty() {
                    return Err(de::Error::custom("needs a `key` or `keys`"));
                }
                Ok(ClientSettings {
                    keys,
                    account: t.account.unwrap_or_default(),
                    redirect_hosts: t.redirect_hosts.map(|l| l.0).unwrap_or_default(),
                })
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// A client with one key (scopes create and read), the default account, any redirect
/// host: what `shop = "key"` gives.
impl From<&str> for ClientSettings {
    fn from(key: &str) -> Self {
        Self {
            keys: vec![KeySettings::client(key)],
            account: AccountId::default(),
            redirect_hosts: Vec::new(),
        }
    }
}

impl KeySettings {
    fn client(key: &str) -> Self {
        Self {
            key: SecretString::from(key.to_owned()),
            scopes: Scopes::CLIENT,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyTable {
    key: SecretString,
    scopes: Option<ScopeList>,
}

impl<'de> Deserialize<'de> for KeySettings {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = KeySettings;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key, or a table with `key` and `scopes`")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<KeySettings, E> {
                Ok(KeySettings::client(s))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<KeySettings, A::Error> {
                let t = KeyTable::deserialize(MapAccessDeserializer::new(map))?;
                Ok(KeySettings {
                    key: t.key,
                    scopes: t.scopes.map_or(Scopes::CLIENT, |s| s.0),
                })
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// A list, in a file as an array, in the environment as text separated by commas.
pub(super) struct List<T>(pub(super) Vec<T>);

impl<'de, T> Deserialize<'de> for List<T>
where
    T: std::str::FromStr<Err = String>,
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: std::str::FromStr<Err = String>> Visitor<'de> for V<T> {
            type Value = List<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list, or text separated by commas")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<List<T>, E> {
                s.split(',')
                    .map(str::trim)
                    .filter(|item| !item.is_empty())
                    .map(|item| item.parse().map_err(E::custom))
                    .collect::<Result<_, _>>()
                    .map(List)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<List<T>, A::Error> {
                let items = Vec::<String>::deserialize(SeqAccessDeserializer::new(seq))?;
                items
                    .iter()
                    .map(|item| item.parse().map_err(de::Error::custom))
                    .collect::<Result<_, _>>()
                    .map(List)
            }
        }
        deserializer.deserialize_any(V(std::marker::PhantomData))
    }
}

/// Scopes: at least one of `create`, `read`, `admin`.
struct ScopeList(Scopes);

impl<'de> Deserialize<'de> for ScopeList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let List(scopes) = List::<Scope>::deserialize(deserializer)?;
        let scopes: Scopes = scopes.into_iter().collect();
        if scopes.is_empty() {
            return Err(de::Error::custom(
                "needs at least one scope: create, read or admin",
            ));
        }
        Ok(Self(scopes))
    }
}

/// `[ivpay.accounts.<name>]`: another of the merchant's IVPAY accounts (a point of sale
/// with its own key). The account named `default` is `ivpay.api_key`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountSettings {
    /// The account's IVPAY API key; not empty.
    pub api_key: SecretString,
}

/// The named accounts.
pub type Accounts = BTreeMap<AccountId, AccountSettings>;

/// `[sandbox]`: the embedded IVPAY sandbox, which runs when `ivpay.api_key` is unset.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct SandboxSettings {
    /// Allow the embedded sandbox when `server.bind` is not a loopback address. Without
    /// it, a service reachable from other machines and without an IVPAY key refuses to
    /// start: it would hand customers payment pages that take no money. Default false.
    pub allow_shared_address: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn client(toml_value: &str) -> Result<ClientSettings, String> {
        #[derive(Deserialize)]
        struct Wrap {
            c: ClientSettings,
        }
        config::Config::builder()
            .add_source(config::File::from_str(
                &format!("c = {toml_value}"),
                config::FileFormat::Toml,
            ))
            .build()
            .and_then(config::Config::try_deserialize::<Wrap>)
            .map(|w| w.c)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_client_is_a_key_or_a_table() {
        let plain = client(r#""k1""#).expect("plain");
        assert_eq!(plain.keys.len(), 1);
        assert_eq!(plain.keys[0].scopes, Scopes::CLIENT);
        assert_eq!(plain.account, AccountId::default());

        let full = client(
            r#"{ keys = ["old", { key = "ops", scopes = ["read", "admin"] }], account = "pos-2", redirect_hosts = ["shop.example", "*.shop.example"] }"#,
        )
        .expect("table");
        assert_eq!(full.keys.len(), 2);
        assert_eq!(full.keys[1].key.expose_secret(), "ops");
        assert!(full.keys[1].scopes.allows(Scope::Admin));
        assert!(!full.keys[1].scopes.allows(Scope::Create));
        assert_eq!(full.account.as_str(), "pos-2");
        assert_eq!(full.redirect_hosts.len(), 2);

        // As the environment gives it: one key, lists as text.
        let env =
            client(r#"{ key = "k", scopes = "read", redirect_hosts = "a.example, b.example" }"#)
                .expect("env form");
        assert_eq!(env.keys[0].scopes, [Scope::Read].into_iter().collect());
        assert_eq!(env.redirect_hosts.len(), 2);
    }

    #[test]
    fn mistakes_are_named() {
        let cases = [
            (r#"{ account = "x" }"#, "needs a `key` or `keys`"),
            (r#"{ key = "k", scopes = [] }"#, "at least one scope"),
            (
                r#"{ key = "k", scopes = ["write"] }"#,
                "unknown scope \"write\"",
            ),
            (
                r#"{ keys = ["k"], scopes = ["read"] }"#,
                "`scopes` goes with `key`",
            ),
            (
                r#"{ key = "k", redirect_hosts = ["https://x"] }"#,
                "is not a host name",
            ),
            (r#"{ key = "k", colour = "red" }"#, "unknown field `colour`"),
        ];
        for (value, expected) in cases {
            let err = client(value).expect_err(value);
            assert!(err.contains(expected), "{value}: {err}");
        }
    }
}
