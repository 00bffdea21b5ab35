//! Tolerance for the JSON IVPAY is known to write: a trailing comma before `}` or `]`.
//!
//! IVPAY's own documentation shows a create response with a trailing comma, so a real
//! client must expect bodies like it. Strict JSON is tried first; only a body that fails
//! is rewritten, and only commas outside strings that are followed (after whitespace) by a
//! closing bracket are removed. Nothing inside a string is ever touched.

use std::borrow::Cow;

/// Removes every comma that stands, outside a string, right before a closing `}` or `]`
/// (whitespace between them allowed). Returns the input unchanged (borrowed) when there is
/// no such comma.
pub(crate) fn strip_trailing_commas(input: &[u8]) -> Cow<'_, [u8]> {
    let mut out: Option<Vec<u8>> = None;
    let mut in_string = false;
    let mut escaped = false;
    for (i, &b) in input.iter().enumerate() {
        let drop = if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            false
        } else if b == b'"' {
            in_string = true;
            false
        } else if b == b',' {
            let next = input[i + 1..]
                .iter()
                .find(|c| !matches!(c, b' ' | b'\t' | b'\n' | b'\r'));
            matches!(next, Some(b'}' | b']'))
        } else {
            false
        };
        match (&mut out, drop) {
            (None, true) => out = Some(input[..i].to_vec()),
            (Some(buf), false) => buf.push(b),
            _ => {}
        }
    }
    match out {
        Some(buf) => Cow::Owned(buf),
        None => Cow::Borrowed(input),
    }
}

/// Parses JSON strictly, and on failure once more with trailing commas removed. The error
/// returned is the strict parser's, which points at the real position in the body.
pub(crate) fn from_slice<T: serde::de::DeserializeOwned>(
    body: &[u8],
) -> Result<T, serde_json::Error> {
    match serde_json::from_slice(body) {
        Ok(v) => Ok(v),
        Err(strict) => match strip_trailing_commas(body) {
            Cow::Borrowed(_) => Err(strict),
            Cow::Owned(fixed) => serde_json::from_slice(&fixed).map_err(|_| strict),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strip(s: &str) -> String {
        String::from_utf8(strip_trailing_commas(s.as_bytes()).into_owned()).expect("utf-8 kept")
    }

    #[test]
    fn removes_commas_before_closing_brackets() {
        assert_eq!(strip(r#"{"a": 1,}"#), r#"{"a": 1}"#);
        assert_eq!(strip("[1, 2 ,\n ]"), "[1, 2 \n ]");
        assert_eq!(
            strip("{\n  \"d\": {\n    \"x\": \"y\",\n  }\n}"),
            "{\n  \"d\": {\n    \"x\": \"y\"\n  }\n}"
        );
    }

    #[test]
    fn never_touches_string_contents() {
        let text = r#"{"a": ",}", "b": "x,]", "c": "q\",}",}"#;
        assert_eq!(strip(text), r#"{"a": ",}", "b": "x,]", "c": "q\",}"}"#);
        let escaped_backslash = r#"{"a": "\\",}"#;
        assert_eq!(strip(escaped_backslash), r#"{"a": "\\"}"#);
    }

    #[test]
    fn leaves_valid_json_borrowed_and_unchanged() {
        let valid = br#"{"a": [1, 2], "b": "c,}"}"#;
        assert!(matches!(strip_trailing_commas(valid), Cow::Borrowed(_)));
    }

    #[test]
    fn does_not_repair_other_mistakes() {
        assert_eq!(strip("[1,,]"), "[1,]");
        assert!(from_slice::<serde_json::Value>(b"[1,,]").is_err());
        assert!(from_slice::<serde_json::Value>(b"{\"a\":1").is_err());
    }

    #[test]
    fn parses_a_body_with_a_trailing_comma() {
        let v: serde_json::Value = from_slice(br#"{"a": "b",}"#).expect("tolerated");
        assert_eq!(v["a"], "b");
    }
}
