//! The specification's published vector, the ways a notice fails to verify, the openssl
//! check the README shows, and a cross-check against the Standard Webhooks reference
//! library.

use super::*;

/// The Standard Webhooks specification's test vector (also Svix's manual-verification
/// example).
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const TIMESTAMP: i64 = 1_614_265_330;
const BODY: &[u8] = br#"{"test": 2432232314}"#;
const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

fn secret() -> SigningSecret {
    SigningSecret::parse(SECRET).expect("the vector's secret")
}

fn headers(signature: &str) -> Headers<'_> {
    Headers {
        id: ID,
        timestamp: "1614265330",
        signature,
    }
}

fn check(secrets: &[SigningSecret], h: &Headers<'_>, body: &[u8]) -> Result<(), VerifyError> {
    verify(secrets, h, body, TIMESTAMP, DEFAULT_TOLERANCE)
}

#[test]
fn signs_and_verifies_the_specification_vector() {
    assert_eq!(secret().sign(ID, TIMESTAMP, BODY), SIGNATURE);
    assert_eq!(sign(&[secret()], ID, TIMESTAMP, BODY), SIGNATURE);
    assert_eq!(check(&[secret()], &headers(SIGNATURE), BODY), Ok(()));
    // The secret pasted without its prefix is the same secret.
    let bare = SigningSecret::parse(&SECRET["whsec_".len()..]).expect("bare base64");
    assert_eq!(bare, secret());
    assert_eq!(check(&[bare], &headers(SIGNATURE), BODY), Ok(()));
}

#[test]
fn any_change_to_the_signed_text_fails() {
    let wrong = Err(VerifyError::NoMatchingSignature);
    assert_eq!(
        check(&[secret()], &headers(SIGNATURE), br#"{"test": 2432232315}"#),
        wrong
    );
    let other_id = Headers {
        id: "msg_other",
        ..headers(SIGNATURE)
    };
    assert_eq!(check(&[secret()], &other_id, BODY), wrong);
    let other_time = Headers {
        timestamp: "1614265331",
        ..headers(SIGNATURE)
    };
    assert_eq!(check(&[secret()], &other_time, BODY), wrong);
    let other = SigningSecret::parse("whsec_c2VjcmV0LW9mLWEtcm90YXRlZC1lbmRwb2ludA==")
        .expect("another secret");
    assert_eq!(check(&[other], &headers(SIGNATURE), BODY), wrong);
    assert_eq!(check(&[], &headers(SIGNATURE), BODY), wrong);
}

#[test]
fn one_matching_signature_of_several_is_enough_and_other_versions_are_ignored() {
    let old = SigningSecret::generate();
    let rotating = format!("{} {SIGNATURE}", old.sign(ID, TIMESTAMP, BODY));
    assert_eq!(check(&[secret()], &headers(&rotating), BODY), Ok(()));
    assert_eq!(
        check(std::slice::from_ref(&old), &headers(&rotating), BODY),
        Ok(())
    );
    // Signed with both secrets, newest first, one signature each.
    let both = sign(&[old.clone(), secret()], ID, TIMESTAMP, BODY);
    assert_eq!(both.split(' ').count(), 2);
    assert!(both.ends_with(SIGNATURE));
    // The same bytes under another version tag do not count; garbage is skipped.
    let v1a = SIGNATURE.replacen("v1,", "v1a,", 1);
    assert_eq!(
        check(&[secret()], &headers(&v1a), BODY),
        Err(VerifyError::NoMatchingSignature)
    );
    let noisy = format!("v2,abc v1,!!notbase64!! {v1a} {SIGNATURE}");
    assert_eq!(check(&[secret()], &headers(&noisy), BODY), Ok(()));
}

#[test]
fn timestamps_outside_the_tolerance_are_refused_either_way() {
    let five_minutes = Duration::from_secs(300);
    let at = |now| verify(&[secret()], &headers(SIGNATURE), BODY, now, five_minutes);
    assert_eq!(at(TIMESTAMP + 300), Ok(()));
    assert_eq!(at(TIMESTAMP - 300), Ok(()));
    assert_eq!(at(TIMESTAMP + 301), Err(VerifyError::TooOld));
    assert_eq!(at(TIMESTAMP - 301), Err(VerifyError::TooNew));
    let garbled = Headers {
        timestamp: "16142653x0",
        ..headers(SIGNATURE)
    };
    assert_eq!(
        check(&[secret()], &garbled, BODY),
        Err(VerifyError::BadTimestamp)
    );
}

#[test]
fn missing_headers_are_named() {
    let empty = |h: Headers<'_>| check(&[secret()], &h, BODY);
    assert_eq!(
        empty(Headers {
            id: "",
            ..headers(SIGNATURE)
        }),
        Err(VerifyError::MissingHeader("webhook-id"))
    );
    assert_eq!(
        empty(Headers {
            timestamp: " ",
            ..headers(SIGNATURE)
        }),
        Err(VerifyError::MissingHeader("webhook-timestamp"))
    );
    assert_eq!(
        empty(headers("")),
        Err(VerifyError::MissingHeader("webhook-signature"))
    );
}

#[cfg(feature = "http")]
#[test]
fn verifies_from_a_header_map_and_names_a_missing_header() {
    let mut map = http::HeaderMap::new();
    map.insert(HEADER_ID, ID.parse().expect("value"));
    map.insert(HEADER_TIMESTAMP, "1614265330".parse().expect("value"));
    assert_eq!(
        Headers::from_map(&map),
        Err(VerifyError::MissingHeader("webhook-signature"))
    );
    map.insert(HEADER_SIGNATURE, SIGNATURE.parse().expect("value"));
    let h = Headers::from_map(&map).expect("all three");
    assert_eq!(check(&[secret()], &h, BODY), Ok(()));
    // Against today's clock the 2021 vector is far too old.
    assert_eq!(
        verify_now(&[secret()], &map, BODY),
        Err(VerifyError::TooOld)
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        .to_string();
    map.insert(HEADER_TIMESTAMP, now.parse().expect("value"));
    let fresh = secret().sign(ID, now.parse().expect("seconds"), BODY);
    map.insert(HEADER_SIGNATURE, fresh.parse().expect("value"));
    assert_eq!(verify_now(&[secret()], &map, BODY), Ok(()));
}

#[test]
fn secrets_are_read_strictly_and_never_shown() {
    assert_eq!(SigningSecret::parse("whsec_"), Err(SecretError::Empty));
    assert_eq!(
        SigningSecret::parse("whsec_not base64!"),
        Err(SecretError::NotBase64)
    );
    assert_eq!(
        SigningSecret::parse("whsec_c2hvcnQ="),
        Err(SecretError::Length { got: 5 })
    );
    let generated = SigningSecret::generate();
    assert_ne!(generated, SigningSecret::generate());
    let text = generated.expose().to_owned();
    assert_eq!(SigningSecret::parse(&text), Ok(generated.clone()));
    for shown in [format!("{generated:?}"), generated.to_string()] {
        assert!(!shown.contains(&text["whsec_".len()..]), "{shown}");
        assert!(shown.contains("redacted"));
    }
    let id = new_message_id();
    assert!(id.starts_with("msg_") && id.len() == 36, "{id}");
    assert_ne!(id, new_message_id());
}

/// The command `README.md` shows for checking a signature by hand, run as written.
const OPENSSL_CHECK: &str = r#"key=$(printf '%s' "${secret#whsec_}" | base64 -d | xxd -p -c 256)
printf '%s' "$id.$ts.$body" | openssl dgst -sha256 -mac HMAC -macopt "hexkey:$key" -binary | base64"#;

#[test]
fn the_readme_openssl_check_computes_the_same_signature() {
    let readme = include_str!("../README.md");
    assert!(
        readme.contains(OPENSSL_CHECK),
        "README.md shows the command this test runs"
    );
    let tools = std::process::Command::new("bash")
        .args([
            "-c",
            "command -v openssl && command -v xxd && command -v base64",
        ])
        .output()
        .expect("bash runs");
    if !tools.status.success() {
        // Without the tools, hold the README's claim to our own computation only.
        assert_eq!(secret().sign(ID, TIMESTAMP, BODY), SIGNATURE);
        return;
    }
    let out = std::process::Command::new("bash")
        .args(["-c", OPENSSL_CHECK])
        .env("secret", SECRET)
        .env("id", ID)
        .env("ts", TIMESTAMP.to_string())
        .env("body", std::str::from_utf8(BODY).expect("text"))
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8(out.stdout).expect("text");
    assert_eq!(format!("v1,{}", printed.trim()), SIGNATURE);
    // And for a generated secret and a body of our own, against ours.
    let mine = SigningSecret::generate();
    let out = std::process::Command::new("bash")
        .args(["-c", OPENSSL_CHECK])
        .env("secret", mine.expose())
        .env("id", "msg_1")
        .env("ts", "1700000000")
        .env("body", r#"{"type":"payment.paid"}"#)
        .output()
        .expect("bash runs");
    let printed = String::from_utf8(out.stdout).expect("text");
    assert_eq!(
        format!("v1,{}", printed.trim()),
        mine.sign("msg_1", 1_700_000_000, br#"{"type":"payment.paid"}"#)
    );
}

mod reference {
    use proptest::prelude::*;

    use super::*;

    fn now() -> i64 {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs();
        i64::try_from(secs).expect("seconds fit")
    }

    fn header_map(id: &str, ts: i64, signature: &str) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        map.insert(HEADER_ID, id.parse().expect("value"));
        map.insert(HEADER_TIMESTAMP, ts.to_string().parse().expect("value"));
        map.insert(HEADER_SIGNATURE, signature.parse().expect("value"));
        map
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn the_reference_library_and_this_crate_agree(
            key in proptest::collection::vec(any::<u8>(), MIN_BYTES..=MAX_BYTES),
            id in "msg_[A-Za-z0-9]{1,40}",
            body in "\\PC{0,200}",
            skew in -200i64..200,
        ) {
            let written = format!("whsec_{}", STANDARD.encode(&key));
            let ours = SigningSecret::parse(&written).expect("a valid secret");
            let theirs = standardwebhooks::Webhook::new(&written).expect("their secret");
            let ts = now() + skew;
            let signed_here = ours.sign(&id, ts, body.as_bytes());
            let signed_there = theirs.sign(&id, ts, body.as_bytes()).expect("they sign");
            prop_assert_eq!(&signed_here, &signed_there);
            let map = header_map(&id, ts, &signed_here);
            prop_assert!(theirs.verify(body.as_bytes(), &map).is_ok());
            prop_assert_eq!(verify_now(std::slice::from_ref(&ours), &map, body.as_bytes()), Ok(()));
            // A body changed by one character fails on both sides.
            let tampered = format!("{body}x");
            prop_assert!(theirs.verify(tampered.as_bytes(), &map).is_err());
            prop_assert!(verify_now(&[ours], &map, tampered.as_bytes()).is_err());
        }
    }
}
