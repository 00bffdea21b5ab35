//! `docs/configuration.md` says what the code does: its table has one row per setting the
//! `Settings` type accepts, no other, each with the environment variable that reaches it
//! and the default the code uses.
//!
//! The keys come from the type itself (serde tells a deserializer the fields of each
//! struct), so a section or key added to the code without a row fails here.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::path::Path;

use ivpay_app::Settings;
use serde::Deserialize;
use serde::de::value::{Error, StrDeserializer};
use serde::de::{self, Deserializer, IntoDeserializer, MapAccess, Visitor};

/// A deserializer that records the keys a type asks for. Each struct it meets gives its
/// field names; it then answers with an empty map (every section defaults its fields), or
/// with one field whose value is probed in turn, to see one level further down.
struct Probe<'a> {
    path: String,
    descend: Option<usize>,
    keys: &'a RefCell<Vec<String>>,
}

impl Probe<'_> {
    fn key(&self, name: &str) -> String {
        if self.path.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{name}", self.path)
        }
    }
}

impl<'de> Deserializer<'de> for Probe<'_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Error> {
        Err(de::Error::custom(format!(
            "{} is a value, not a section",
            self.path
        )))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.keys
            .borrow_mut()
            .extend(fields.iter().map(|f| self.key(f)));
        let entry = self.descend.map(|i| {
            let probe = Probe {
                path: self.key(fields[i]),
                descend: None,
                keys: self.keys,
            };
            (fields[i], probe)
        });
        visitor.visit_map(OneEntry(entry))
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.keys.borrow_mut().push(self.key("<name>"));
        visitor.visit_map(OneEntry(None))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct enum identifier
        ignored_any
    }
}

struct OneEntry<'a>(Option<(&'static str, Probe<'a>)>);

impl<'de> MapAccess<'de> for OneEntry<'_> {
    type Error = Error;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        match &self.0 {
            Some((name, _)) => {
                let name: StrDeserializer<'_, Error> = name.into_deserializer();
                seed.deserialize(name).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let (_, probe) = self
            .0
            .take()
            .ok_or_else(|| <Error as de::Error>::custom("no value"))?;
        seed.deserialize(probe)
    }
}

fn probe(descend: Option<usize>, keys: &RefCell<Vec<String>>) -> Probe<'_> {
    Probe {
        path: String::new(),
        descend,
        keys,
    }
}

/// Every key `Settings` accepts: `server.bind`, ..., `clients.<name>`.
fn keys() -> BTreeSet<String> {
    let sections = RefCell::new(Vec::new());
    Settings::deserialize(probe(None, &sections)).expect("the sections");
    let sections = sections.into_inner();
    let mut keys = BTreeSet::new();
    for i in 0..sections.len() {
        let found = RefCell::new(Vec::new());
        Settings::deserialize(probe(Some(i), &found)).expect("a section's keys");
        // The first entries are the sections again.
        keys.extend(found.into_inner().into_iter().skip(sections.len()));
    }
    keys
}

/// A row of the settings table: key, environment variable, type and range, default.
struct Row {
    key: String,
    env: String,
    default: String,
}

fn rows() -> Vec<Row> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/configuration.md");
    let doc = std::fs::read_to_string(&path).expect("docs/configuration.md");
    let code = |cell: &str| {
        cell.split('`')
            .nth(1)
            .map(str::to_owned)
            .unwrap_or_default()
    };
    doc.lines()
        .filter(|line| line.starts_with("| `"))
        .map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            assert!(cells.len() >= 6, "a row with 5 columns: {line}");
            Row {
                key: code(cells[1]),
                env: code(cells[2]),
                default: cells[4].to_owned(),
            }
        })
        .collect()
}

#[test]
fn the_probe_sees_every_section_and_key() {
    let keys = keys();
    // Checked against the code by hand once, so a broken probe cannot pass silently.
    for key in [
        "server.bind",
        "database.url",
        "ivpay.api_key",
        "clients.<name>",
        "idempotency.wait_secs",
        "reconciler.inbox_lease_secs",
        "log.json",
    ] {
        assert!(keys.contains(key), "{key} in {keys:?}");
    }
    assert!(keys.len() > 20, "{keys:?}");
}

#[test]
fn the_configuration_doc_lists_exactly_the_settings() {
    let documented: BTreeSet<String> = rows().into_iter().map(|r| r.key).collect();
    let keys = keys();
    let missing: Vec<_> = keys.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&keys).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "not documented: {missing:?}; documented but not settings: {extra:?}"
    );
}

#[test]
fn each_documented_variable_is_the_one_that_reaches_its_key() {
    for row in rows() {
        let expected = format!("IVPAY_{}", row.key.to_uppercase().replace('.', "__"));
        assert_eq!(row.env, expected, "{}", row.key);
    }
}

#[test]
fn each_documented_default_is_the_code_default() {
    let defaults = format!("{:?}", Settings::default());
    let mut checked = 0;
    for row in rows() {
        // A default written as one value in backticks; "unset" and "none" rows have none.
        let Some(value) = row
            .default
            .strip_prefix('`')
            .and_then(|d| d.strip_suffix('`'))
        else {
            continue;
        };
        let loaded = Settings::load_with_env(
            Path::new("/nonexistent/ivpay.toml"),
            false,
            [(row.env.as_str(), value)],
        )
        .unwrap_or_else(|e| panic!("{}: documented default {value}: {e}", row.key));
        assert_eq!(
            format!("{loaded:?}"),
            defaults,
            "{}: documented default {value}",
            row.key
        );
        checked += 1;
    }
    assert!(checked > 20, "only {checked} defaults checked");
}
