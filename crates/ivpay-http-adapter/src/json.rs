//! The one tolerance IVPAY's JSON needs: a trailing comma before `}` or `]`.
//!
//! IVPAY's own documentation shows a create response with a trailing comma, so a real
//! client must expect bodies like it. A body that is strict JSON is read as it is. Any
//! other is read by `serde_json_lenient` (serde_json's fork whose leniencies are switched
//! one by one) with trailing commas allowed and every other leniency off (comments, `\v`
//! and `\x` escapes, control characters in strings), and written back as strict JSON with
//! numbers exactly as IVPAY wrote them; `serde_json` then reads that.
//!
//! Why the round trip rather than deserializing straight from `serde_json_lenient`: its
//! code that skips a value (unknown fields, `RawValue`) does not honour the trailing-comma
//! switch (google/serde_json_lenient#34), and IVPAY's documented answer has its trailing
//! comma inside `data`, which is kept raw.

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::{DeserializeOwned, Error as _, IgnoredAny};

/// The body as strict JSON: borrowed when it already is, else re-written.
fn strict(body: &[u8]) -> Result<Cow<'_, [u8]>, serde_json_lenient::Error> {
    if serde_json::from_slice::<IgnoredAny>(body).is_ok() {
        return Ok(Cow::Borrowed(body));
    }
    let mut de = serde_json_lenient::Deserializer::from_slice(body);
    de.set_ignore_trailing_commas(true);
    de.set_allow_comments(false);
    let value = serde_json_lenient::Value::deserialize(&mut de)?;
    de.end()?;
    serde_json_lenient::to_vec(&value).map(Cow::Owned)
}

/// Parses JSON that may have trailing commas, and nothing else non-standard.
pub(crate) fn from_slice<T: DeserializeOwned>(body: &[u8]) -> Result<T, serde_json::Error> {
    let strict = strict(body).map_err(serde_json::Error::custom)?;
    serde_json::from_slice(&strict)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn text(body: &str) -> String {
        String::from_utf8(strict(body.as_bytes()).expect("tolerated").into_owned()).expect("utf-8")
    }

    #[test]
    fn reads_trailing_commas_in_objects_and_arrays() {
        let v: Value = from_slice(b"{\n  \"d\": {\"x\": [1, 2,],\n  },\n}").expect("tolerated");
        assert_eq!(v["d"]["x"][1], 2);
    }

    #[test]
    fn keeps_numbers_and_strings_exactly() {
        assert_eq!(
            text(r#"{"a": ",}", "n": 10.50, "big": 123456789012345678901234567890,}"#),
            r#"{"a":",}","big":123456789012345678901234567890,"n":10.50}"#
        );
        assert_eq!(text(r#"{"q": "q\",]",}"#), r#"{"q":"q\",]"}"#);
    }

    #[test]
    fn leaves_strict_json_untouched() {
        let body = b"{ \"a\" : [1, 2] }";
        assert!(matches!(strict(body), Ok(Cow::Borrowed(b)) if b == body));
    }

    #[test]
    fn refuses_every_other_departure_from_json() {
        for bad in [
            "[1,,]",
            "{\"a\":1",
            "{\"a\":1} // comment",
            "/* c */ {\"a\":1}",
            "{,}",
            "{\"a\":\"\\v\"}",
            "{\"a\":1,} trailing",
            "",
        ] {
            assert!(from_slice::<Value>(bad.as_bytes()).is_err(), "{bad}");
        }
    }
}
