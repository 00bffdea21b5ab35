//! The published vectors of the Standard Webhooks libraries, the ways a notice fails to
//! verify, the openssl check the README shows, and a cross-check against the reference
//! Rust library.

use std::time::{Duration, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::*;
use crate::secret::{MAX_BYTES, MIN_BYTES};

/// A signature computed by the reference implementations.
struct Vector {
    secret: &'static str,
    id: &'static str,
    timestamp: i64,
    body: &'static [u8],
    signature: &'static str,
}

/// The specification's example: the "sign" test of the reference libraries in
/// JavaScript, Go, Python and PHP (standard-webhooks/standard-webhooks, `libraries/`),
/// also Svix's documented example.
const SPEC: Vector = Vector {
    secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    id: "msg_p5jXN8AQM9LWM0D4loKWxJek",
    timestamp: 1_614_265_330,
    body: br#"{"test": 2432232314}"#,
    signature: "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
};

/// The reference Rust library's `test_sign` (standard-webhooks `libraries/rust`, and
/// `svix-webhooks` `rust/src/webhooks.rs`).
const RUST_REFERENCE: Vector = Vector {
    secret: "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
    id: "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
    timestamp: 1_649_367_553,
    body: br#"{"email":"test@example.com","username":"test_user"}"#,
    signature: "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=",
};

const VECTORS: [Vector; 2] = [SPEC, RUST_REFERENCE];

impl Vector {
    fn secret(&self) -> SigningSecret {
        SigningSecret::parse(self.secret).expect("the vector's secret")
    }

    fn timestamp_text(&self) -> String {
        self.timestamp.to_string()
    }

    /// Verifies the vector's id, body and timestamp with `signature`, `later` seconds
    /// after it was signed, with the default tolerance.
    fn check_with(&self, signature: &str, later: i64) -> Result<(), VerifyError> {
        let ts = self.timestamp_text();
        let headers = Headers {
            id: self.id,
            timestamp: &ts,
            signature,
        };
        verify(
            &[self.secret()],
            &headers,
            self.body,
            self.timestamp + later,
            DEFAULT_TOLERANCE,
        )
    }
}

#[test]
fn signs_every_published_vector_exactly() {
    for v in &VECTORS {
        assert_eq!(v.secret().sign(v.id, v.timestamp, v.body), v.signature);
        assert_eq!(sign(&[v.secret()], v.id, v.timestamp, v.body), v.signature);
        let signed = sign_headers(&[v.secret()], v.id, v.timestamp, v.body);
        assert_eq!(
            signed.pairs(),
            [
                ("webhook-id", v.id),
                ("webhook-timestamp", v.timestamp_text().as_str()),
                ("webhook-signature", v.signature),
            ]
        );
    }
}

#[test]
fn verifies_every_published_vector_with_or_without_the_prefix() {
    for v in &VECTORS {
        assert_eq!(v.check_with(v.signature, 0), Ok(()));
        let bare = SigningSecret::parse(&v.secret["whsec_".len()..]).expect("bare base64");
        assert_eq!(bare, v.secret());
        assert_eq!(bare.expose(), v.secret);
        let ts = v.timestamp_text();
        let headers = Headers {
            id: v.id,
            timestamp: &ts,
            signature: v.signature,
        };
        assert_eq!(
            verify(&[bare], &headers, v.body, v.timestamp, DEFAULT_TOLERANCE),
            Ok(())
        );
    }
}

/// The invalid signatures the reference test suites try, each refused.
#[test]
fn refuses_the_published_bad_signatures() {
    let cases = [
        // Python: the vector with its last byte changed.
        (&SPEC, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA="),
        // JavaScript, PHP: not a signature at all.
        (&SPEC, "v1,dawfeoifkpqwoekfpqoekf"),
        // JavaScript, Svix: a truncated signature, and a bare version tag.
        (&SPEC, "v1,g0hM9"),
        (&SPEC, "v1,"),
        // Go: another message's signature.
        (&SPEC, "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="),
        // Rust reference: another message's signature.
        (
            &RUST_REFERENCE,
            "v1,R3PTzyfHASBKHH98a7yexTwaJ4yNIcGhFQc1yuN+BPU=",
        ),
        // Rust reference: several signatures, none of them this message's.
        (
            &RUST_REFERENCE,
            "v1,tFtCZ5RDCPxzWQRWXWPgrCgE2frDBe9gjpbWQxnVfsQ= \
             v1,Mm7xgUVICxZfQ3bgf0h0Dof65L/IFx+PnZvnDWPCX6Q= \
             v1,9DfC1c3eeOrXB6w/5dIDydLNQaEyww5KalE5jLBZucE=",
        ),
    ];
    for (v, signature) in cases {
        assert_eq!(
            v.check_with(signature, 0),
            Err(VerifyError::NoMatchingSignature),
            "{signature}"
        );
    }
}

/// The multi-signature headers of the reference suites: one valid among decoys.
#[test]
fn accepts_the_published_multi_signature_headers() {
    let spec = format!(
        "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= \
         v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= \
         {} v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
        SPEC.signature
    );
    assert_eq!(SPEC.check_with(&spec, 0), Ok(()));
    let rust = format!(
        "v1,tFtCZ5RDCPxzWQRWXWPgrCgE2frDBe9gjpbWQxnVfsQ= \
         v1,Mm7xgUVICxZfQ3bgf0h0Dof65L/IFx+PnZvnDWPCX6Q= \
         {} v1,9DfC1c3eeOrXB6w/5dIDydLNQaEyww5KalE5jLBZucE=",
        RUST_REFERENCE.signature
    );
    assert_eq!(RUST_REFERENCE.check_with(&rust, 0), Ok(()));
}

#[test]
fn other_signature_versions_are_ignored() {
    // The right bytes under another version tag do not count; junk entries are skipped.
    let v1a = SPEC.signature.replacen("v1,", "v1a,", 1);
    assert_eq!(
        SPEC.check_with(&v1a, 0),
        Err(VerifyError::NoMatchingSignature)
    );
    let v2 = SPEC.signature.replacen("v1,", "v2,", 1);
    assert_eq!(
        SPEC.check_with(&v2, 0),
        Err(VerifyError::NoMatchingSignature)
    );
    let noisy = format!("v2,abc v1,!!notbase64!! nocomma  {v1a} {}", SPEC.signature);
    assert_eq!(SPEC.check_with(&noisy, 0), Ok(()));
}

#[test]
fn any_change_to_the_signed_content_or_the_secret_fails() {
    let ts = SPEC.timestamp_text();
    let headers = Headers {
        id: SPEC.id,
        timestamp: &ts,
        signature: SPEC.signature,
    };
    let at = |secrets: &[SigningSecret], h: &Headers<'_>, body: &[u8]| {
        verify(secrets, h, body, SPEC.timestamp, DEFAULT_TOLERANCE)
    };
    let wrong = Err(VerifyError::NoMatchingSignature);
    // A tampered body, one digit changed or one space dropped.
    assert_eq!(
        at(&[SPEC.secret()], &headers, br#"{"test": 2432232315}"#),
        wrong
    );
    assert_eq!(
        at(&[SPEC.secret()], &headers, br#"{"test":2432232314}"#),
        wrong
    );
    // Another id.
    let other_id = Headers {
        id: "msg_p5jXN8AQM9LWM0D4loKWxJeK",
        ..headers
    };
    assert_eq!(at(&[SPEC.secret()], &other_id, SPEC.body), wrong);
    // Another timestamp, well within the tolerance (Svix's "timestamp mismatch").
    let next = (SPEC.timestamp + 1).to_string();
    let other_time = Headers {
        timestamp: &next,
        ..headers
    };
    assert_eq!(at(&[SPEC.secret()], &other_time, SPEC.body), wrong);
    // Another secret, and no secret at all.
    assert_eq!(at(&[RUST_REFERENCE.secret()], &headers, SPEC.body), wrong);
    assert_eq!(at(&[], &headers, SPEC.body), wrong);
}

#[test]
fn timestamps_outside_the_tolerance_are_refused_either_way() {
    assert_eq!(SPEC.check_with(SPEC.signature, 300), Ok(()));
    assert_eq!(SPEC.check_with(SPEC.signature, -300), Ok(()));
    assert_eq!(
        SPEC.check_with(SPEC.signature, 301),
        Err(VerifyError::TooOld {
            age: 301,
            tolerance: 300
        })
    );
    assert_eq!(
        SPEC.check_with(SPEC.signature, -301),
        Err(VerifyError::TooNew {
            ahead: 301,
            tolerance: 300
        })
    );
    // Checked before the signature: a stale notice is refused as stale.
    assert!(matches!(
        SPEC.check_with("v1,junk", 3_600),
        Err(VerifyError::TooOld { .. })
    ));
    // Another tolerance, and a signature made for 1969 (Svix refuses a negative timestamp).
    let ts = SPEC.timestamp_text();
    let headers = Headers {
        id: SPEC.id,
        timestamp: &ts,
        signature: SPEC.signature,
    };
    let day = Duration::from_secs(86_400);
    let one_day_later = SPEC.timestamp + 86_400;
    assert_eq!(
        verify(&[SPEC.secret()], &headers, SPEC.body, one_day_later, day),
        Ok(())
    );
    let signed = sign_headers(&[SPEC.secret()], SPEC.id, -1, SPEC.body);
    assert_eq!(
        verify(
            &[SPEC.secret()],
            &signed.as_headers(),
            SPEC.body,
            SPEC.timestamp,
            DEFAULT_TOLERANCE
        ),
        Err(VerifyError::TooOld {
            age: 1_614_265_331,
            tolerance: 300
        })
    );
    assert_eq!(
        verify(&[SPEC.secret()], &signed.as_headers(), SPEC.body, 0, day),
        Ok(())
    );
}

#[test]
fn now_may_be_a_system_time() {
    let ts = SPEC.timestamp_text();
    let headers = Headers {
        id: SPEC.id,
        timestamp: &ts,
        signature: SPEC.signature,
    };
    let check = |now| {
        verify(
            &[SPEC.secret()],
            &headers,
            SPEC.body,
            now,
            DEFAULT_TOLERANCE,
        )
    };
    let signed_at = UNIX_EPOCH + Duration::from_secs(1_614_265_330);
    assert_eq!(check(signed_at + Duration::from_millis(300_999)), Ok(()));
    assert!(matches!(
        check(signed_at + Duration::from_secs(301)),
        Err(VerifyError::TooOld { age: 301, .. })
    ));
    // Against today's clock the 2021 vector is far too old.
    assert!(matches!(
        check(std::time::SystemTime::now()),
        Err(VerifyError::TooOld { .. })
    ));
}

#[test]
fn missing_or_malformed_headers_are_named() {
    let ts = SPEC.timestamp_text();
    let headers = Headers {
        id: SPEC.id,
        timestamp: &ts,
        signature: SPEC.signature,
    };
    let check = |h: Headers<'_>| {
        verify(
            &[SPEC.secret()],
            &h,
            SPEC.body,
            SPEC.timestamp,
            DEFAULT_TOLERANCE,
        )
    };
    assert_eq!(
        check(Headers { id: "", ..headers }),
        Err(VerifyError::MissingHeader("webhook-id"))
    );
    assert_eq!(
        check(Headers {
            timestamp: " ",
            ..headers
        }),
        Err(VerifyError::MissingHeader("webhook-timestamp"))
    );
    assert_eq!(
        check(Headers {
            signature: "",
            ..headers
        }),
        Err(VerifyError::MissingHeader("webhook-signature"))
    );
    // The reference suites' "hello", and others that are not whole seconds.
    for bad in [
        "hello",
        "1614265330.0",
        "16142653x0",
        "99999999999999999999",
    ] {
        assert_eq!(
            check(Headers {
                timestamp: bad,
                ..headers
            }),
            Err(VerifyError::BadTimestamp),
            "{bad}"
        );
    }
}

#[cfg(feature = "http")]
mod header_map {
    use http::{HeaderMap, HeaderValue};

    use super::*;

    fn map(v: &Vector, timestamp: &str, signature: &str) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(HEADER_ID, HeaderValue::from_static(v.id));
        map.insert(HEADER_TIMESTAMP, timestamp.parse().expect("a header value"));
        map.insert(HEADER_SIGNATURE, signature.parse().expect("a header value"));
        map
    }

    #[test]
    fn verifies_from_a_header_map() {
        for v in &VECTORS {
            let map = map(v, &v.timestamp_text(), v.signature);
            let headers = Headers::from_map(&map).expect("all three");
            assert_eq!(
                verify(
                    &[v.secret()],
                    &headers,
                    v.body,
                    v.timestamp,
                    DEFAULT_TOLERANCE
                ),
                Ok(())
            );
        }
    }

    /// Each header removed in turn, as every reference suite does.
    #[test]
    fn names_each_missing_header_and_one_that_is_not_text() {
        for name in [HEADER_ID, HEADER_TIMESTAMP, HEADER_SIGNATURE] {
            let mut map = map(&SPEC, &SPEC.timestamp_text(), SPEC.signature);
            map.remove(name);
            assert_eq!(
                Headers::from_map(&map),
                Err(VerifyError::MissingHeader(name))
            );
            assert_eq!(
                verify_now(&[SPEC.secret()], &map, SPEC.body),
                Err(VerifyError::MissingHeader(name))
            );
        }
        let mut map = map(&SPEC, &SPEC.timestamp_text(), SPEC.signature);
        map.insert(
            HEADER_SIGNATURE,
            HeaderValue::from_bytes(b"v1,\xff").expect("opaque bytes"),
        );
        assert_eq!(
            Headers::from_map(&map),
            Err(VerifyError::HeaderNotText("webhook-signature"))
        );
    }

    #[test]
    fn verify_now_uses_the_clock_and_the_default_tolerance() {
        let stale = map(&SPEC, &SPEC.timestamp_text(), SPEC.signature);
        assert!(matches!(
            verify_now(&[SPEC.secret()], &stale, SPEC.body),
            Err(VerifyError::TooOld { tolerance: 300, .. })
        ));
        let now = UnixTime::now();
        let fresh = map(
            &SPEC,
            &now.seconds().to_string(),
            &SPEC.secret().sign(SPEC.id, now, SPEC.body),
        );
        assert_eq!(verify_now(&[SPEC.secret()], &fresh, SPEC.body), Ok(()));
    }
}

#[test]
fn a_rotated_secret_signs_twice_and_either_secret_verifies() {
    let old = SPEC.secret();
    let new = SigningSecret::generate();
    let signed = sign_headers(
        &[new.clone(), old.clone()],
        SPEC.id,
        SPEC.timestamp,
        SPEC.body,
    );
    let signatures: Vec<&str> = signed.signature().split(' ').collect();
    assert_eq!(
        signatures,
        [
            &new.sign(SPEC.id, SPEC.timestamp, SPEC.body),
            SPEC.signature
        ]
    );
    for held in [vec![old.clone()], vec![new.clone()], vec![new, old]] {
        assert_eq!(
            verify(
                &held,
                &signed.as_headers(),
                SPEC.body,
                SPEC.timestamp,
                DEFAULT_TOLERANCE
            ),
            Ok(())
        );
    }
    assert_eq!(
        verify(
            &[SigningSecret::generate()],
            &signed.as_headers(),
            SPEC.body,
            SPEC.timestamp,
            DEFAULT_TOLERANCE
        ),
        Err(VerifyError::NoMatchingSignature)
    );
    // No secret, no signature: nothing verifies it.
    assert_eq!(sign(&[], SPEC.id, SPEC.timestamp, SPEC.body), "");
}

#[test]
fn secrets_are_read_strictly() {
    let written = |n: usize| format!("whsec_{}", STANDARD.encode(vec![7u8; n]));
    assert_eq!(SigningSecret::parse(""), Err(SecretError::Empty));
    assert_eq!(SigningSecret::parse("whsec_"), Err(SecretError::Empty));
    assert_eq!(
        SigningSecret::parse("whsec_not base64!"),
        Err(SecretError::NotBase64)
    );
    // Unpadded base64 is not the standard form.
    assert_eq!(
        SigningSecret::parse(written(MIN_BYTES + 1).trim_end_matches('=')),
        Err(SecretError::NotBase64)
    );
    assert_eq!(
        SigningSecret::parse(&written(MIN_BYTES - 1)),
        Err(SecretError::TooShort { got: 23, min: 24 })
    );
    assert_eq!(
        SigningSecret::parse(&written(MAX_BYTES + 1)),
        Err(SecretError::TooLong { got: 65, max: 64 })
    );
    for n in [MIN_BYTES, 32, MAX_BYTES] {
        let secret = SigningSecret::parse(&written(n)).expect("in range");
        assert_eq!(secret.expose(), written(n));
    }
    assert_eq!(
        SecretError::TooShort { got: 23, min: 24 }.to_string(),
        "the secret has 23 bytes, fewer than the 24 required"
    );
    // Whitespace around a pasted secret is not part of it.
    assert_eq!(
        SigningSecret::parse(&format!(" {}\n", SPEC.secret)),
        Ok(SPEC.secret())
    );
}

#[test]
fn a_secret_is_never_shown_by_debug_or_display() {
    for secret in [SPEC.secret(), SigningSecret::generate()] {
        let key = &secret.expose()["whsec_".len()..];
        for shown in [
            format!("{secret:?}"),
            format!("{secret:#?}"),
            secret.to_string(),
            format!("{:?}", Some(&secret)),
        ] {
            assert!(!shown.contains(key), "{shown}");
            assert!(shown.contains("redacted"), "{shown}");
        }
    }
    assert_eq!(
        format!("{:?}", SPEC.secret()),
        "SigningSecret(whsec_…redacted)"
    );
    assert_eq!(SPEC.secret().to_string(), "whsec_…redacted");
}

#[test]
fn generated_secrets_and_message_ids_are_new_each_time() {
    let secret = SigningSecret::generate();
    assert_ne!(secret, SigningSecret::generate());
    let decoded = STANDARD
        .decode(&secret.expose()["whsec_".len()..])
        .expect("base64");
    assert_eq!(decoded.len(), 32);
    assert_eq!(SigningSecret::parse(secret.expose()), Ok(secret));

    let id = new_message_id();
    assert_eq!(id.len(), 36, "{id}");
    assert!(id.starts_with("msg_"), "{id}");
    assert!(id[4..].bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
    assert_ne!(id, new_message_id());
}

/// The command `README.md` shows for checking a signature by hand, run as written.
const OPENSSL_CHECK: &str = r#"key=$(printf '%s' "${secret#whsec_}" | base64 -d | xxd -p -c 256)
printf '%s' "$id.$ts.$body" | openssl dgst -sha256 -mac HMAC -macopt "hexkey:$key" -binary | base64"#;

fn openssl_signature(secret: &str, id: &str, ts: &str, body: &str) -> String {
    let out = std::process::Command::new("bash")
        .args(["-c", OPENSSL_CHECK])
        .env("secret", secret)
        .env("id", id)
        .env("ts", ts)
        .env("body", body)
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    format!(
        "v1,{}",
        String::from_utf8(out.stdout).expect("text").trim_end()
    )
}

#[test]
fn the_readme_openssl_check_computes_the_same_signatures() {
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
        .output();
    if !tools.is_ok_and(|t| t.status.success()) {
        eprintln!(
            "note: openssl, xxd or base64 is not installed; the README's command was not run"
        );
        assert_eq!(
            SPEC.secret().sign(SPEC.id, SPEC.timestamp, SPEC.body),
            SPEC.signature
        );
        return;
    }
    for v in &VECTORS {
        let body = std::str::from_utf8(v.body).expect("text");
        assert_eq!(
            openssl_signature(v.secret, v.id, &v.timestamp_text(), body),
            v.signature
        );
    }
    // A generated secret (64 bytes, so `xxd -c 256` must keep the key on one line) and a
    // body with quotes, a backslash and a percent sign, against ours.
    let mine = SigningSecret::parse(&format!("whsec_{}", STANDARD.encode([0xa5u8; 64])))
        .expect("64 bytes");
    let body = r#"{"type":"payment.paid","note":"100% \"paid\" \\ ok"}"#;
    assert_eq!(
        openssl_signature(mine.expose(), "msg_1", "1700000000", body),
        mine.sign("msg_1", 1_700_000_000, body.as_bytes())
    );
}

/// Against the Standard Webhooks reference library (`standardwebhooks` on crates.io): it
/// verifies what this crate signs, and this crate verifies what it signs.
#[cfg(feature = "http")]
mod reference {
    use http::HeaderMap;
    use proptest::prelude::*;

    use super::*;

    fn header_map(id: &str, ts: i64, signature: &str) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(HEADER_ID, id.parse().expect("value"));
        map.insert(HEADER_TIMESTAMP, ts.to_string().parse().expect("value"));
        map.insert(HEADER_SIGNATURE, signature.parse().expect("value"));
        map
    }

    #[test]
    fn the_reference_library_signs_the_published_vectors_as_we_do() {
        for v in &VECTORS {
            let theirs = standardwebhooks::Webhook::new(v.secret).expect("their secret");
            let signed = theirs.sign(v.id, v.timestamp, v.body).expect("they sign");
            assert_eq!(signed, v.signature);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn the_reference_library_and_this_crate_agree(
            key in proptest::collection::vec(any::<u8>(), MIN_BYTES..=MAX_BYTES),
            other in proptest::collection::vec(any::<u8>(), MIN_BYTES..=MAX_BYTES),
            id in "msg_[A-Za-z0-9]{1,40}",
            body in "\\PC{0,300}",
            skew in -200i64..200,
        ) {
            let written = format!("whsec_{}", STANDARD.encode(&key));
            let ours = SigningSecret::parse(&written).expect("a valid secret");
            let theirs = standardwebhooks::Webhook::new(&written).expect("their secret");
            // The reference library reads the clock; stay well inside its tolerance.
            let ts = UnixTime::now().seconds() + skew;
            let body = body.as_bytes();

            // Ours signs, theirs verifies; theirs signs, ours verifies.
            let signed_here = ours.sign(&id, ts, body);
            prop_assert!(theirs.verify(body, &header_map(&id, ts, &signed_here)).is_ok());
            let signed_there = theirs.sign(&id, ts, body).expect("they sign");
            prop_assert_eq!(&signed_here, &signed_there);
            let map = header_map(&id, ts, &signed_there);
            prop_assert_eq!(verify_now(std::slice::from_ref(&ours), &map, body), Ok(()));

            // While rotating, the header carries two signatures; theirs accepts it with
            // either secret.
            let rotated = SigningSecret::parse(&format!("whsec_{}", STANDARD.encode(&other)))
                .expect("a valid secret");
            let both = sign(&[rotated, ours.clone()], &id, ts, body);
            prop_assert!(theirs.verify(body, &header_map(&id, ts, &both)).is_ok());

            // A body changed by one byte fails on both sides.
            let tampered = [body, b"x"].concat();
            prop_assert!(theirs.verify(&tampered, &map).is_err());
            prop_assert_eq!(
                verify_now(&[ours], &map, &tampered),
                Err(VerifyError::NoMatchingSignature)
            );
        }
    }
}
