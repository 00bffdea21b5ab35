//! Standard Webhooks signatures for outgoing notices, through `ivpay-signing`.

use ivpay_domain::Timestamp;
use ivpay_signing::SigningSecret;

/// The three headers of a notice, signed with every secret held (newest first). A secret
/// that does not read (storage holds only checked ones) is left out and logged.
pub(super) fn headers(
    secrets: &[String],
    message_id: &str,
    at: Timestamp,
    body: &[u8],
) -> Vec<(&'static str, String)> {
    let secrets: Vec<SigningSecret> = secrets
        .iter()
        .filter_map(|s| match SigningSecret::parse(s) {
            Ok(secret) => Some(secret),
            Err(e) => {
                tracing::error!(error = %e, "an endpoint secret does not read; signing without it");
                None
            }
        })
        .collect();
    let timestamp = at.unix_seconds();
    vec![
        (ivpay_signing::HEADER_ID, message_id.to_owned()),
        (ivpay_signing::HEADER_TIMESTAMP, timestamp.to_string()),
        (
            ivpay_signing::HEADER_SIGNATURE,
            ivpay_signing::sign(&secrets, message_id, timestamp, body),
        ),
    ]
}

/// A new `whsec_` secret.
pub(super) fn new_secret() -> String {
    SigningSecret::generate().expose().to_owned()
}

/// A given secret, checked: its text as stored, or why it cannot be used.
pub(super) fn check_secret(given: &str) -> Result<String, String> {
    SigningSecret::parse(given)
        .map(|s| s.expose().to_owned())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_carry_the_id_the_time_and_one_signature_per_secret() {
        let old = new_secret();
        let new = new_secret();
        let at = Timestamp::from_unix_seconds(1_700_000_000);
        let h = headers(&[new.clone(), old.clone()], "msg_1", at, b"{}");
        assert_eq!(h[0], ("webhook-id", "msg_1".to_owned()));
        assert_eq!(h[1], ("webhook-timestamp", "1700000000".to_owned()));
        let signatures: Vec<&str> = h[2].1.split(' ').collect();
        assert_eq!(signatures.len(), 2);
        let parsed = |s: &str| SigningSecret::parse(s).expect("secret");
        assert_eq!(
            signatures[0],
            parsed(&new).sign("msg_1", 1_700_000_000, b"{}")
        );
        assert_eq!(
            signatures[1],
            parsed(&old).sign("msg_1", 1_700_000_000, b"{}")
        );
        assert!(check_secret("whsec_short").is_err());
        assert_eq!(check_secret(&new), Ok(new.clone()));
    }
}
