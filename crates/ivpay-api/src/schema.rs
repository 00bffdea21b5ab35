//! The domain's rules as JSON Schema, for the OpenAPI document: each function describes one
//! value exactly as the domain's constructor checks it (lengths come from the same
//! constants), and the tests below hold each pattern against the constructor.

use ivpay_domain::{
    FiatCurrency, ForeignId, IdempotencyKey, PaymentId, PaymentStatus, RedirectUrl,
};
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{
    KnownFormat, Object, ObjectBuilder, OneOfBuilder, SchemaFormat, Type,
};
use utoipa::openapi::{RefOr, Required, Schema};

/// IVPAY's id (and ours: a hyphenated UUID is 36 of these characters).
pub(crate) const PAYMENT_ID: &str = "^[A-Za-z0-9_-]+$";

/// A positive decimal with at most `decimals` decimals, at most one trillion. No
/// lookaround: schema-driven generators (hypothesis) cannot use it.
pub(crate) fn amount_pattern(decimals: u32) -> String {
    let d = decimals;
    if d == 0 {
        return "^(0*[1-9][0-9]{0,11}|0*1000000000000)$".to_owned();
    }
    // Below one: d digits at most, not all zero (the first non-zero at position i).
    let below_one: Vec<String> = (0..d)
        .map(|i| {
            let rest = d - 1 - i;
            let tail = if rest == 0 {
                String::new()
            } else {
                format!("[0-9]{{0,{rest}}}")
            };
            format!("{}[1-9]{tail}", "0".repeat(i as usize))
        })
        .collect();
    format!(
        r"^(0*[1-9][0-9]{{0,11}}(\.[0-9]{{1,{d}}})?|0*1000000000000(\.0{{1,{d}}})?|0+\.({}))$",
        below_one.join("|")
    )
}

/// The most minor units any accepted currency has (BHD, KWD, ...): the rule on
/// `amount_fiat` alone, before its currency is known.
const MOST_DECIMALS: u32 = 3;

/// The longest amount text `FiatAmount::parse` reads (held by a test below).
const AMOUNT_MAX_CHARS: usize = 40;

/// No control character (Unicode `Cc`), no white space at either end.
pub(crate) const FOREIGN_ID: &str = concat!(
    r"^[^\u0000-\u0020\u007F-\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]",
    r"([^\u0000-\u001F\u007F-\u009F]*",
    r"[^\u0000-\u0020\u007F-\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000])?$",
);

/// An absolute http or https URL whose host is a name (ASCII labels, the last one starting
/// with a letter, so it cannot read as an IPv4 number) or a dotted IPv4 address, with an
/// optional port. The code also takes forms this leaves out (user info, IPv6, international
/// names); the document states the form a client can rely on.
pub(crate) const REDIRECT_URL: &str = concat!(
    r"^[Hh][Tt][Tt][Pp][Ss]?://",
    r"(([A-Za-z0-9-]+\.)*[A-Za-z][A-Za-z0-9-]*",
    r"|((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9]))",
    r"(:([0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?",
    r"([/?#]\S*)?$",
);

/// Visible ASCII.
pub(crate) const IDEMPOTENCY_KEY: &str = "^[!-~]+$";

/// `next_cursor` of a previous page: Unix seconds and our id.
pub(crate) const CURSOR: &str = "^[+-]?[0-9]{1,19}_[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$";

/// Documents an extractor that reads one parameter: `documents_parameter!(Type, "name",
/// Path | Query | Header, required: bool, schema_fn)`.
macro_rules! documents_parameter {
    ($extractor:ty, $name:literal, $place:ident, $required:literal, $schema:path) => {
        impl utoipa::IntoParams for $extractor {
            fn into_params(
                _: impl Fn() -> Option<utoipa::openapi::path::ParameterIn>,
            ) -> Vec<utoipa::openapi::path::Parameter> {
                $crate::schema::parameter(
                    $name,
                    utoipa::openapi::path::ParameterIn::$place,
                    $required,
                    $schema(),
                )
            }
        }
    };
}
pub(crate) use documents_parameter;

/// The one parameter `name` of `place`, with `schema`.
pub(crate) fn parameter(
    name: &str,
    place: ParameterIn,
    required: bool,
    schema: Object,
) -> Vec<Parameter> {
    let parameter = ParameterBuilder::new()
        .name(name)
        .parameter_in(place)
        .required(if required {
            Required::True
        } else {
            Required::False
        })
        .schema(Some(schema))
        .build();
    vec![parameter]
}

fn text(pattern: &str, min: usize, max: usize) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(pattern))
        .min_length(Some(min))
        .max_length(Some(max))
}

/// A payment named by IVPAY's id or ours.
pub(crate) fn payment_ref() -> Object {
    text(PAYMENT_ID, 1, PaymentId::MAX_LEN)
        .description(Some("IVPAY's id, or our id (a hyphenated UUID)"))
        .examples(["6b577835afbefe60335b6e5cd04410a9"])
        .build()
}

/// Our id: a hyphenated UUID.
pub(crate) fn internal_id() -> Object {
    text(INTERNAL_ID, 36, 36)
        .description(Some("our id of the payment (a hyphenated UUID)"))
        .examples(["0192e4f5-7c3a-7b1e-9d2a-5f6e7a8b9c0d"])
        .build()
}

/// A client's name, as the settings name it.
pub(crate) fn client_id() -> Object {
    text(CLIENT_ID, 1, 64)
        .description(Some("a client's name (as configured under `clients`)"))
        .examples(["shop"])
        .build()
}

/// What `ClientId` reads.
pub(crate) const CLIENT_ID: &str = "^[A-Za-z0-9._-]+$";

/// An endpoint's URL: an absolute http or https URL as [`REDIRECT_URL`] reads it (no user
/// info).
pub(crate) fn endpoint_url() -> Object {
    text(REDIRECT_URL, 1, RedirectUrl::MAX_LEN)
        .description(Some(
            "where notices are posted: an absolute http or https URL",
        ))
        .examples(["https://shop.example/ivpay/notifications"])
        .build()
}

/// A signing secret: `whsec_` and standard base64 of 24 to 64 bytes (or `null` to have
/// one made).
pub(crate) fn signing_secret() -> Object {
    nullable(
        text(SIGNING_SECRET, 38, 6 + 88)
            .description(Some(
                "`whsec_` and base64 of 24 to 64 bytes; null or absent to have one made",
            ))
            .build(),
    )
}

/// Whole groups of four base64 characters (3 bytes each), then an optional padded tail:
/// 24 to 62 bytes, or 63 and 64.
pub(crate) const SIGNING_SECRET: &str = concat!(
    r"^whsec_(((?:[A-Za-z0-9+/]{4}){8,20}(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?)",
    r"|((?:[A-Za-z0-9+/]{4}){21}(?:[A-Za-z0-9+/]{2}==)?))$",
);

/// A notice type.
pub(crate) fn notice_type() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(
            ivpay_domain::NoticeType::ALL.map(ivpay_domain::NoticeType::as_str),
        ))
        .build()
}

/// A delivery state.
pub(crate) fn delivery_state() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(["pending", "delivered", "failed", "skipped"]))
        .build()
}

/// The page size every listing takes when none is asked for.
pub(crate) const DEFAULT_PAGE: u32 = 50;
/// The largest page size a listing takes.
pub(crate) const MAX_PAGE: u32 = 200;

/// A listing's page size: 1 to [`MAX_PAGE`], [`DEFAULT_PAGE`] when left out.
pub(crate) fn page_size() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(1))
        .maximum(Some(MAX_PAGE))
        .default(Some(DEFAULT_PAGE.into()))
        .build()
}

/// Unix seconds, not negative, within what every JSON reader holds exactly.
pub(crate) fn non_negative_seconds() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(0))
        .maximum(Some(LARGEST_INTEGER_ID))
        .build()
}

/// An endpoint's id.
pub(crate) fn endpoint_id() -> Object {
    text(ENDPOINT_ID, 1, ivpay_domain::EndpointId::MAX_LEN)
        .description(Some("an endpoint's id"))
        .examples(["ep_0192e4f57c3a7b1e9d2a5f6e7a8b9c0d"])
        .build()
}

/// What `EndpointId` reads.
pub(crate) const ENDPOINT_ID: &str = "^[A-Za-z0-9_-]+$";

/// A notification's id: a hyphenated UUID.
pub(crate) fn notification_id() -> Object {
    text(INTERNAL_ID, 36, 36)
        .description(Some("a notification's id (a hyphenated UUID)"))
        .build()
}

/// A hyphenated UUID, the one spelling `InternalId` reads.
pub(crate) const INTERNAL_ID: &str =
    "^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$";

/// IVPAY's id alone.
pub(crate) fn ivpay_payment_id() -> Object {
    text(PAYMENT_ID, 1, PaymentId::MAX_LEN)
        .description(Some("IVPAY's id of the payment"))
        .examples(["6b577835afbefe60335b6e5cd04410a9"])
        .build()
}

/// The largest integer read as a payment id: 2^53, the last one every JSON reader (and a
/// JSON Schema's float bounds) holds exactly.
pub(crate) const LARGEST_INTEGER_ID: u64 = 1 << 53;

/// IVPAY's id in a webhook: text, or a bare integer taken as its digits.
pub(crate) fn webhook_payment_id() -> RefOr<Schema> {
    webhook_payment_id_builder().into()
}

/// As [`webhook_payment_id`], or `null` (then the one inside `data` counts).
pub(crate) fn optional_webhook_payment_id() -> RefOr<Schema> {
    webhook_payment_id_builder()
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .into()
}

fn webhook_payment_id_builder() -> OneOfBuilder {
    OneOfBuilder::new()
        .item(text(PAYMENT_ID, 1, PaymentId::MAX_LEN))
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(0.0))
                .maximum(Some(LARGEST_INTEGER_ID as f64)),
        )
        .description(Some("IVPAY's id; a bare integer is read as its digits"))
}

/// An amount as decimal text.
pub(crate) fn amount() -> Object {
    text(&amount_pattern(MOST_DECIMALS), 1, AMOUNT_MAX_CHARS)
        .description(Some(
            "a JSON string of plain decimal digits, positive, at most one trillion, with at most \
             the currency's ISO 4217 minor units (USD 2, JPY 0, BHD 3); never a JSON number",
        ))
        .examples(["10.50"])
        .build()
}

/// Every code the domain accepts, found by asking it about each of the 17 576 three-letter
/// codes, so the list is the domain's and cannot drift.
fn currencies() -> Vec<FiatCurrency> {
    let letters = || b'A'..=b'Z';
    letters()
        .flat_map(|a| letters().flat_map(move |b| letters().map(move |c| [a, b, c])))
        .filter_map(|code| {
            std::str::from_utf8(&code)
                .ok()?
                .parse::<FiatCurrency>()
                .ok()
        })
        .collect()
}

fn currency_enum(codes: impl IntoIterator<Item = FiatCurrency>) -> ObjectBuilder {
    let codes: Vec<&'static str> = codes.into_iter().map(|c| c.code()).collect();
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(codes))
}

/// An ISO 4217 code.
pub(crate) fn currency() -> Object {
    currency_enum(currencies())
        .description(Some(
            "an ISO 4217 fiat currency code (any case is accepted); metals, funds and test \
             codes are refused",
        ))
        .examples(["USD"])
        .build()
}

/// The rule that ties `amount_fiat` to `currency_fiat`: one branch per number of minor
/// units, each pairing its currencies with the amounts they allow (USD 2 decimals, JPY
/// none, BHD 3), so a generator never offers `"1.123"` in USD as valid.
pub(crate) fn amount_per_currency() -> Schema {
    let mut by_units: std::collections::BTreeMap<u32, Vec<FiatCurrency>> = Default::default();
    for currency in currencies() {
        by_units
            .entry(currency.minor_units())
            .or_default()
            .push(currency);
    }
    let mut one_of = OneOfBuilder::new().description(Some(
        "`amount_fiat` has at most the minor units of `currency_fiat`",
    ));
    for (units, codes) in by_units {
        one_of = one_of.item(
            ObjectBuilder::new()
                .property("currency_fiat", currency_enum(codes))
                .property(
                    "amount_fiat",
                    text(&amount_pattern(units), 1, AMOUNT_MAX_CHARS),
                ),
        );
    }
    one_of.build().into()
}

/// The client's reference.
pub(crate) fn foreign_id() -> Object {
    text(FOREIGN_ID, 1, ForeignId::MAX_LEN)
        .description(Some(
            "your reference: no control characters, no white space at either end",
        ))
        .examples(["123456"])
        .build()
}

/// The client's reference, where `null` counts as absent.
pub(crate) fn optional_foreign_id() -> Object {
    nullable(foreign_id())
}

/// A customer redirect.
pub(crate) fn redirect_url() -> Object {
    nullable(
        text(REDIRECT_URL, 1, RedirectUrl::MAX_LEN)
            .description(Some(
                "an absolute http or https URL with a host, at most 2048 bytes",
            ))
            .examples(["https://shop.example/thanks"])
            .build(),
    )
}

fn nullable(mut schema: Object) -> Object {
    schema.schema_type = [Type::String, Type::Null].into_iter().collect();
    schema
}

/// The `Idempotency-Key` header.
pub(crate) fn idempotency_key() -> Object {
    text(IDEMPOTENCY_KEY, 1, IdempotencyKey::MAX_LEN)
        .description(Some("makes the create safe to repeat: visible ASCII"))
        .build()
}

/// One of IVPAY's four statuses.
pub(crate) fn status() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(PaymentStatus::ALL.map(PaymentStatus::as_str)))
        .build()
}

/// One of IVPAY's four statuses, or `null`.
pub(crate) fn optional_status() -> Object {
    let mut schema = status();
    schema.schema_type = [Type::String, Type::Null].into_iter().collect();
    if let Some(values) = schema.enum_values.as_mut() {
        values.push(serde_json::Value::Null);
    }
    schema
}

/// `true` or `false`.
pub(crate) fn boolean_text() -> Object {
    ObjectBuilder::new().schema_type(Type::Boolean).build()
}

/// Unix seconds.
pub(crate) fn unix_seconds() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .build()
}

/// A cursor from a previous page.
pub(crate) fn cursor() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(CURSOR))
        .description(Some("`next_cursor` of the previous page"))
        .build()
}

/// Any JSON value.
pub(crate) fn any() -> Object {
    ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::SchemaType::AnyValue)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ivpay_domain::Money;
    use regex::Regex;

    fn re(pattern: &str) -> Regex {
        Regex::new(pattern).expect("the pattern compiles")
    }

    /// The pattern and the constructor agree on every sample.
    fn agree(pattern: &str, max_chars: usize, samples: &[&str], accepts: impl Fn(&str) -> bool) {
        let re = re(pattern);
        for s in samples {
            let schema = re.is_match(s) && s.chars().count() <= max_chars;
            assert_eq!(schema, accepts(s), "{s:?}: schema says {schema}");
        }
    }

    #[test]
    fn amount_pattern_is_the_amount_rule_for_each_number_of_decimals() {
        let long_zeros = format!("{}1", "0".repeat(39));
        let too_long = format!("{}1", "0".repeat(40));
        let samples = [
            "1",
            "10.5",
            "10.50",
            "10.500",
            "0.001",
            "0.01",
            "0.1",
            "0.100",
            "00.5",
            "007",
            "999999999999.999",
            "999999999999.99",
            "1000000000000",
            "1000000000000.0",
            "1000000000000.000",
            "1000000000000.001",
            "1000000000001",
            "0",
            "0.000",
            "10.5001",
            ".5",
            "5.",
            "1e3",
            "-1",
            "+1",
            " 1",
            "1,5",
            "",
            "١",
            "0x10",
            &long_zeros,
            &too_long,
            "10000000000000",
        ];
        for code in ["JPY", "USD", "BHD"] {
            let currency: FiatCurrency = code.parse().expect("a currency");
            agree(
                &amount_pattern(currency.minor_units()),
                AMOUNT_MAX_CHARS,
                &samples,
                |s| ivpay_domain::FiatAmount::parse(s, currency).is_ok(),
            );
        }
    }

    #[test]
    fn each_currency_is_in_the_branch_of_its_minor_units() {
        let Schema::OneOf(branches) = amount_per_currency() else {
            panic!("one of")
        };
        let mut seen = 0;
        for branch in &branches.items {
            let RefOr::T(Schema::Object(branch)) = branch else {
                panic!("inline object")
            };
            let property = |name: &str| match &branch.properties[name] {
                RefOr::T(Schema::Object(o)) => o.clone(),
                RefOr::T(_) | RefOr::Ref(_) => panic!("inline object"),
            };
            let pattern = property("amount_fiat").pattern.expect("a pattern");
            for code in property("currency_fiat").enum_values.expect("codes") {
                let currency: FiatCurrency = code.as_str().expect("text").parse().expect("known");
                assert_eq!(pattern, amount_pattern(currency.minor_units()), "{code}");
                seen += 1;
            }
        }
        assert_eq!(
            seen,
            currencies().len(),
            "every currency in exactly one branch"
        );
        assert!(!re(&amount_pattern(2)).is_match("1.123"));
        assert!(Money::parse("1.123", "USD").is_err());
    }

    #[test]
    fn foreign_id_pattern_is_the_foreign_id_rule() {
        let max = "é".repeat(ForeignId::MAX_LEN);
        let over = "é".repeat(ForeignId::MAX_LEN + 1);
        agree(
            FOREIGN_ID,
            ForeignId::MAX_LEN,
            &[
                "123456",
                "a",
                "заказ №7",
                "a b",
                "a\u{a0}b",
                " a",
                "a ",
                "\u{a0}a",
                "a\u{3000}",
                "a\tb",
                "a\nb",
                "\u{85}",
                "a\u{7f}",
                "a\u{9f}b",
                "",
                "🙂",
                &max,
                &over,
            ],
            |s| s.parse::<ForeignId>().is_ok(),
        );
    }

    #[test]
    fn id_key_and_url_patterns_are_their_rules() {
        let id_max = "a".repeat(PaymentId::MAX_LEN);
        let id_over = "a".repeat(PaymentId::MAX_LEN + 1);
        agree(
            PAYMENT_ID,
            PaymentId::MAX_LEN,
            &[
                "6b57",
                "a-b_c",
                "0192e4f5-7c3a-7b1e-9d2a-5f6e7a8b9c0d",
                "a/b",
                "a b",
                ":",
                "",
                &id_max,
                &id_over,
            ],
            |s| s.parse::<ivpay_ports::PaymentRef>().is_ok(),
        );
        agree(
            IDEMPOTENCY_KEY,
            IdempotencyKey::MAX_LEN,
            &["order-1", "!~", "a b", "ключ", "", "a\tb"],
            |s| s.parse::<IdempotencyKey>().is_ok(),
        );
        agree(
            REDIRECT_URL,
            RedirectUrl::MAX_LEN,
            &[
                "https://shop.example/thanks?x=1#y",
                "HTTP://h",
                "http://localhost:8080/ok",
                "http://127.0.0.1:65535/",
                "https://a-b.c-d.example",
                "https://xn--bcher-kva.example/ü",
                "https://shop.example/\\back",
                "ftp://h/x",
                "/relative",
                "https://",
                "javascript:alert(1)",
                "https:// h",
                "https://1.2.3.4.5/",
                "https://a.0x1f/",
                "https://shop.example:65536/",
                "https://[::1/",
                "https://a%zz/",
            ],
            |s| s.parse::<RedirectUrl>().is_ok(),
        );
        // Accepted by the code but outside the documented form: never the other way round.
        for extra in [
            "https://user:pw@shop.example/",
            "https://[::1]/",
            "https://bücher.example/",
        ] {
            assert!(extra.parse::<RedirectUrl>().is_ok(), "{extra}");
            assert!(!re(REDIRECT_URL).is_match(extra), "{extra}");
        }
    }

    #[test]
    fn currencies_are_the_domains() {
        let codes = currency().enum_values.unwrap_or_default();
        for code in ["USD", "EUR", "JPY", "BHD"] {
            assert!(codes.contains(&code.into()), "{code}");
        }
        for code in ["XAU", "XTS", "BOV", "ABC"] {
            assert!(!codes.contains(&code.into()), "{code}");
        }
    }

    #[test]
    fn statuses_are_the_domains() {
        assert_eq!(
            status().enum_values.map(|v| v.len()),
            Some(PaymentStatus::ALL.len())
        );
    }
}
