//! IVPAY's JSON dialect: JSON, plus a trailing comma before `}` or `]`.
//!
//! **Role.** The one tolerant JSON rule of the workspace. IVPAY's documentation shows its
//! answers with trailing commas, and clients copy its examples; the HTTP adapter (IVPAY's
//! answers) and the API (webhooks, client bodies) read them through this crate, so both
//! tolerate exactly the same thing.
//!
//! **May depend on:** `serde`, `serde_json`, `serde_json_lenient`. Nothing of ivpay's.
//!
//! **How.** A body that is strict JSON is returned as it is. Any other is read by
//! `serde_json_lenient` (serde_json's fork whose leniencies are switched one by one) with
//! trailing commas allowed and every other leniency off (comments, `\v` and `\x` escapes,
//! control characters in strings), and written back as strict JSON with numbers exactly
//! as written (its `arbitrary_precision`), for `serde_json` to read. Deserializing
//! straight from `serde_json_lenient` would be shorter but wrong: its code that skips a
//! value (unknown fields, `RawValue`) ignores the trailing-comma switch
//! (google/serde_json_lenient#34), so `{"a": {"b": 1,}, "c": 2}` would fail for a type
//! without `a`.
//!
//! ```
//! let v: serde_json::Value = ivpay_json::from_slice(br#"{"data": {"id": "6b57", "n": 10.50,},}"#)?;
//! assert_eq!(v["data"]["id"], "6b57");
//! assert!(ivpay_json::from_slice::<serde_json::Value>(b"{} // comment").is_err());
//! # Ok::<(), serde_json::Error>(())
//! ```

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::{DeserializeOwned, Error as _, IgnoredAny};

/// Why a body is not JSON even with trailing commas tolerated.
pub use serde_json_lenient::Error as SyntaxError;

/// The body as strict JSON: borrowed when it already is, else re-written (compact, keys
/// in the order written, numbers and strings exactly as written).
///
/// # Errors
///
/// [`SyntaxError`] when the body is not JSON even with trailing commas tolerated.
pub fn to_strict(body: &[u8]) -> Result<Cow<'_, [u8]>, SyntaxError> {
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

/// Reads IVPAY's JSON into `T` with `serde_json`.
///
/// # Errors
///
/// When the body is not JSON even with trailing commas tolerated (the message says
/// where), or not `T`'s shape.
pub fn from_slice<T: DeserializeOwned>(body: &[u8]) -> Result<T, serde_json::Error> {
    // Strict JSON, the common case, is read once. Only a syntax error sends the body
    // through the lenient rewrite: a type error found first would be found there too.
    match serde_json::from_slice(body) {
        Err(e) if e.is_syntax() || e.is_eof() => {
            let strict = to_strict(body).map_err(serde_json::Error::custom)?;
            serde_json::from_slice(&strict)
        }
        read => read,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn rewritten(body: &str) -> String {
        String::from_utf8(to_strict(body.as_bytes()).expect("tolerated").into_owned())
            .expect("utf-8")
    }

    #[test]
    fn a_rewritten_body_keeps_its_keys_in_the_order_written() {
        assert_eq!(
            rewritten(r#"{"status": "PAID", "payment_id": "p1", "network": "TRON",}"#),
            r#"{"status":"PAID","payment_id":"p1","network":"TRON"}"#
        );
    }

    #[test]
    fn reads_trailing_commas_in_objects_and_arrays() {
        let v: Value = from_slice(b"{\n  \"d\": {\"x\": [1, 2,],\n  },\n}").expect("tolerated");
        assert_eq!(v["d"]["x"][1], 2);
    }

    #[test]
    fn reads_trailing_commas_even_inside_values_the_type_skips() {
        #[derive(Deserialize)]
        struct OnlyC {
            c: u8,
        }
        let v: OnlyC = from_slice(br#"{"a": {"b": [1,], }, "c": 2,}"#).expect("tolerated");
        assert_eq!(v.c, 2);
    }

    #[test]
    fn keeps_numbers_and_strings_exactly() {
        assert_eq!(
            rewritten(r#"{"a": ",}", "n": 10.50, "big": 123456789012345678901234567890,}"#),
            r#"{"a":",}","n":10.50,"big":123456789012345678901234567890}"#
        );
        assert_eq!(rewritten(r#"{"q": "q\",]",}"#), r#"{"q":"q\",]"}"#);
    }

    #[test]
    fn leaves_strict_json_untouched() {
        let body = b"{ \"a\" : [1, 2] }";
        assert!(matches!(to_strict(body), Ok(Cow::Borrowed(b)) if b == body));
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
            "{\"a\":\"\\x41\"}",
            "{\"a\":1,} trailing",
            "",
        ] {
            assert!(to_strict(bad.as_bytes()).is_err(), "{bad}");
        }
    }
}
