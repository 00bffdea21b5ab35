//! Rows to domain values and back. Every stored string is re-parsed through the domain's
//! constructors, so a hand-edited or corrupt row fails loudly as
//! [`RepositoryError::Corrupt`] instead of becoming an invalid value.

use std::str::FromStr;

use ivpay_domain::{
    AccountId, ClientId, CreateOutcome, EventOutcome, Evidence, ForeignId, IdempotencyKey,
    InternalId, Money, Payment, PaymentEvent, PaymentId, PaymentRecord, PaymentStatus, RedirectUrl,
    ReportedStatus, Timestamp, UpdateSource, UpstreamPayment, WebhookHint,
};
use ivpay_ports::{IdempotencyClaim, IdempotencyRecord, InboxWebhook, RepositoryError};
use sea_orm::ActiveValue::{NotSet, Set};

use crate::entity::{event, idempotency, inbox, payment};
use crate::error::corrupt;

/// The columns that describe the payment itself (everything but the schedule), all set.
pub(crate) fn payment_row(p: &Payment) -> Result<payment::ActiveModel, RepositoryError> {
    let r = p.to_record();
    let upstream = r.upstream.as_ref();
    Ok(payment::ActiveModel {
        id: Set(r.id.to_string()),
        owner_client: Set(r.owner.as_ref().map(ToString::to_string)),
        account: Set(r.account.to_string()),
        ivpay_payment_id: Set(upstream.map(|u| u.payment_id.to_string())),
        foreign_id: Set(r.foreign_id.as_ref().map(ToString::to_string)),
        amount: Set(r.money.amount().to_string()),
        currency: Set(r.money.currency().code().to_owned()),
        url_success: Set(r.url_success.as_ref().map(ToString::to_string)),
        url_failed: Set(r.url_failed.as_ref().map(ToString::to_string)),
        payment_url: Set(upstream.map(|u| u.payment_url.to_string())),
        upstream_created_at: Set(upstream.map(|u| u.created_at.unix_seconds())),
        create_outcome: Set(r.outcome.as_str().to_owned()),
        create_outcome_reason: Set(r.outcome.reason().map(str::to_owned)),
        status: Set(r.status.as_str().to_owned()),
        processed_at: Set(r.processed_at.map(Timestamp::unix_seconds)),
        created_at: Set(r.created_at.unix_seconds()),
        updated_at: Set(r.updated_at.unix_seconds()),
        version: Set(version_to_db(r.version)?),
        next_check_at: NotSet,
        check_attempts: NotSet,
        quarantined_at: NotSet,
        quarantine_reason: NotSet,
        unannounced: NotSet,
    })
}

/// The columns a write after the insert sets: those a payment's life can change (its
/// upstream payment, outcome, status, times and version). The rest are fixed when it is
/// created and left out of the `SET`: fewer values to bind and compare, and SQLite checks
/// every table that references a payment whenever an `UPDATE` assigns the payment's `id`,
/// changed or not (three index lookups per write, for nothing).
pub(crate) fn payment_changes(p: &Payment) -> Result<payment::ActiveModel, RepositoryError> {
    use sea_orm::ActiveModelTrait;
    let mut row = payment_row(p)?;
    for fixed in FIXED_AT_CREATION {
        row.not_set(fixed);
    }
    Ok(row)
}

/// The columns no write after the insert changes.
const FIXED_AT_CREATION: [payment::Column; 9] = [
    payment::Column::Id,
    payment::Column::OwnerClient,
    payment::Column::Account,
    payment::Column::ForeignId,
    payment::Column::Amount,
    payment::Column::Currency,
    payment::Column::UrlSuccess,
    payment::Column::UrlFailed,
    payment::Column::CreatedAt,
];

/// A version as stored (BIGINT).
pub(crate) fn version_to_db(version: u64) -> Result<i64, RepositoryError> {
    i64::try_from(version)
        .map_err(|_| RepositoryError::Corrupt(format!("version {version} exceeds BIGINT")))
}

fn parse<T, E: std::fmt::Display>(
    what: &str,
    id: &str,
    value: Result<T, E>,
) -> Result<T, RepositoryError> {
    value.map_err(|e| corrupt(what, id, e))
}

fn opt<T, E: std::fmt::Display>(
    what: &str,
    id: &str,
    value: Option<String>,
    f: impl FnOnce(String) -> Result<T, E>,
) -> Result<Option<T>, RepositoryError> {
    value.map(f).transpose().map_err(|e| corrupt(what, id, e))
}

impl TryFrom<payment::Model> for Payment {
    type Error = RepositoryError;

    fn try_from(m: payment::Model) -> Result<Self, RepositoryError> {
        let key = m.id.clone();
        let k = key.as_str();
        let id = parse("id", k, InternalId::from_str(&m.id))?;
        let money = parse("amount", k, Money::parse(&m.amount, &m.currency))?;
        let outcome = match (m.create_outcome.as_str(), m.create_outcome_reason) {
            // Outcomes without a reason must not carry one, or a stored reason is lost.
            (name @ ("initiated" | "created"), Some(reason)) => {
                return Err(corrupt(
                    "create outcome",
                    k,
                    format!("{name} with reason {reason:?}"),
                ));
            }
            (name, reason) => CreateOutcome::from_parts(name, reason.clone()).ok_or_else(|| {
                corrupt(
                    "create outcome",
                    k,
                    format!("{name:?} with reason {reason:?}"),
                )
            })?,
        };
        let upstream = match (m.ivpay_payment_id, m.payment_url, m.upstream_created_at) {
            (None, None, None) => None,
            (Some(pid), Some(url), Some(created)) => Some(UpstreamPayment {
                payment_id: parse("ivpay payment id", k, PaymentId::try_from(pid))?,
                payment_url: parse("payment url", k, RedirectUrl::try_from(url))?,
                created_at: Timestamp::from_unix_seconds(created),
            }),
            _ => return Err(corrupt("upstream fields", k, "only partly present")),
        };
        let version = parse("version", k, u64::try_from(m.version))?;
        let record = PaymentRecord {
            id,
            owner: opt("owner", k, m.owner_client, ClientId::try_from)?,
            account: parse("account", k, AccountId::try_from(m.account))?,
            money,
            foreign_id: opt("foreign id", k, m.foreign_id, ForeignId::try_from)?,
            url_success: opt("url_success", k, m.url_success, RedirectUrl::try_from)?,
            url_failed: opt("url_failed", k, m.url_failed, RedirectUrl::try_from)?,
            outcome,
            upstream,
            status: parse("status", k, PaymentStatus::from_str(&m.status))?,
            processed_at: m.processed_at.map(Timestamp::from_unix_seconds),
            created_at: Timestamp::from_unix_seconds(m.created_at),
            updated_at: Timestamp::from_unix_seconds(m.updated_at),
            version,
        };
        parse("record", k, Payment::restore(record))
    }
}

/// An event row ready to insert, linked to `payment` when one matched.
pub(crate) fn event_row(e: &PaymentEvent, payment: Option<InternalId>) -> event::ActiveModel {
    event::ActiveModel {
        id: NotSet,
        internal_payment_id: Set(payment.map(|p| p.to_string())),
        ivpay_payment_id: Set(e.payment_id.to_string()),
        source: Set(e.source.as_str().to_owned()),
        from_status: Set(e.from.map(|s| s.as_str().to_owned())),
        to_status: Set(e.to.to_string()),
        outcome: Set(e.outcome.as_str().to_owned()),
        evidence: Set(e.evidence.as_ref().map(evidence_text)),
        received_at: Set(e.received_at.unix_seconds()),
    }
}

/// Evidence as stored in `payment_events.evidence`: one JSON object whose members are the
/// raw texts as JSON strings, so every byte comes back as it was received:
/// `{"webhook":"<body>","confirmation":"<IVPAY's answer>","note":"..."}`, absent parts left
/// out. Written only by [`evidence_text`], read by [`evidence_of`].
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredEvidence {
    #[serde(default)]
    webhook: Option<serde_json::Value>,
    #[serde(default)]
    confirmation: Option<serde_json::Value>,
    #[serde(default)]
    note: Option<serde_json::Value>,
}

/// What rows written before [`StoredEvidence`] had a note for put in `confirmation`.
const LEGACY_NOT_FOUND: &str = "not found at IVPAY";

fn evidence_text(e: &Evidence) -> String {
    let mut members = serde_json::Map::new();
    for (name, part) in [
        ("webhook", e.webhook()),
        ("confirmation", e.confirmation()),
        ("note", e.note()),
    ] {
        if let Some(text) = part {
            members.insert(name.to_owned(), text.into());
        }
    }
    serde_json::Value::Object(members).to_string()
}

/// Reads [`evidence_text`]'s format, and the two that came before it: the same object with
/// the note `not found at IVPAY` in `confirmation` (and a member's raw JSON inlined rather
/// than quoted), and a poll's bare IVPAY answer. Text in none of these shapes is kept whole,
/// as IVPAY's answer: evidence is never refused.
fn evidence_of(text: &str) -> Evidence {
    let stored = serde_json::from_str::<StoredEvidence>(text)
        .ok()
        .and_then(|s| {
            let raw = |v: Option<serde_json::Value>| {
                v.map(|v| match v {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                })
            };
            let (mut confirmation, mut note) = (raw(s.confirmation), raw(s.note));
            if note.is_none() && confirmation.as_deref() == Some(LEGACY_NOT_FOUND) {
                note = confirmation.take();
            }
            Evidence::from_parts(raw(s.webhook), confirmation, note)
        });
    stored.unwrap_or_else(|| Evidence::from_confirmation(text))
}

fn source_from_name(name: &str) -> Option<UpdateSource> {
    [UpdateSource::Webhook, UpdateSource::Poll, UpdateSource::Api]
        .into_iter()
        .find(|s| s.as_str() == name)
}

impl TryFrom<event::Model> for PaymentEvent {
    type Error = RepositoryError;

    fn try_from(m: event::Model) -> Result<Self, RepositoryError> {
        let key = format!("event {}", m.id);
        let k = key.as_str();
        Ok(PaymentEvent {
            payment: opt("payment", k, m.internal_payment_id, |s| {
                InternalId::from_str(&s)
            })?,
            payment_id: parse(
                "ivpay payment id",
                k,
                PaymentId::try_from(m.ivpay_payment_id),
            )?,
            source: source_from_name(&m.source)
                .ok_or_else(|| corrupt("source", k, format!("{:?}", m.source)))?,
            from: opt("from status", k, m.from_status, |s| {
                PaymentStatus::from_str(&s)
            })?,
            to: ReportedStatus::from(m.to_status),
            outcome: EventOutcome::from_name(&m.outcome)
                .ok_or_else(|| corrupt("outcome", k, format!("{:?}", m.outcome)))?,
            evidence: m.evidence.map(|text| evidence_of(&text)),
            received_at: Timestamp::from_unix_seconds(m.received_at),
        })
    }
}

/// An idempotency row for a claim made by `payment`'s request.
pub(crate) fn claim_row(c: &IdempotencyClaim, payment: &Payment) -> idempotency::ActiveModel {
    idempotency::ActiveModel {
        client_id: Set(c.client.to_string()),
        idempotency_key: Set(c.key.to_string()),
        fingerprint: Set(c.fingerprint.clone()),
        internal_payment_id: Set(payment.id().to_string()),
        created_at: Set(payment.created_at().unix_seconds()),
        expires_at: Set(c.expires_at.unix_seconds()),
    }
}

impl TryFrom<idempotency::Model> for IdempotencyRecord {
    type Error = RepositoryError;

    fn try_from(m: idempotency::Model) -> Result<Self, RepositoryError> {
        let key = format!("idempotency key of client {:?}", m.client_id);
        let k = key.as_str();
        Ok(IdempotencyRecord {
            client: parse("client", k, ClientId::try_from(m.client_id.clone()))?,
            key: parse("key", k, IdempotencyKey::try_from(m.idempotency_key))?,
            fingerprint: m.fingerprint,
            payment: parse("payment", k, InternalId::from_str(&m.internal_payment_id))?,
            created_at: Timestamp::from_unix_seconds(m.created_at),
            expires_at: Timestamp::from_unix_seconds(m.expires_at),
        })
    }
}

/// An inbox row for a received webhook.
pub(crate) fn inbox_row(w: &InboxWebhook, next_attempt_at: Timestamp) -> inbox::ActiveModel {
    inbox::ActiveModel {
        id: Set(w.id.to_string()),
        ivpay_payment_id: Set(w.hint.payment_id.to_string()),
        claimed_status: Set(w.hint.status.as_ref().map(ToString::to_string)),
        raw: Set(w.hint.raw.clone()),
        account: Set(w.hint.account.to_string()),
        received_at: Set(w.received_at.unix_seconds()),
        attempts: Set(i64::from(w.attempts)),
        next_attempt_at: Set(next_attempt_at.unix_seconds()),
        quarantined_at: NotSet,
        quarantine_reason: NotSet,
    }
}

impl TryFrom<inbox::Model> for InboxWebhook {
    type Error = RepositoryError;

    fn try_from(m: inbox::Model) -> Result<Self, RepositoryError> {
        let key = format!("inbox webhook {}", m.id);
        let k = key.as_str();
        Ok(InboxWebhook {
            id: parse("id", k, InternalId::from_str(&m.id))?,
            hint: WebhookHint {
                account: parse("account", k, AccountId::try_from(m.account))?,
                payment_id: parse("payment_id", k, PaymentId::try_from(m.ivpay_payment_id))?,
                status: m.claimed_status.map(ReportedStatus::from),
                raw: m.raw,
            },
            received_at: Timestamp::from_unix_seconds(m.received_at),
            attempts: u32::try_from(m.attempts)
                .map_err(|_| corrupt("attempts", k, m.attempts.to_string()))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_after_the_insert_sets_what_can_change_and_nothing_fixed_at_creation() {
        use sea_orm::{ActiveModelTrait, IdenStatic, Iterable};
        let request =
            ivpay_domain::NewPayment::from_fields("12.50", "USD", Some("o-1"), None, None)
                .expect("a valid request");
        let payment = Payment::initiate(
            InternalId::from_uuid(uuid::Uuid::now_v7()),
            "shop".parse().expect("a client id"),
            AccountId::default(),
            request,
            Timestamp::from_unix_seconds(1_726_248_776),
        );
        let (row, changes) = (
            payment_row(&payment).expect("a row"),
            payment_changes(&payment).expect("the changes"),
        );
        for column in payment::Column::iter() {
            let fixed = FIXED_AT_CREATION
                .iter()
                .any(|c| c.as_str() == column.as_str());
            let (whole, write) = (row.get(column), changes.get(column));
            if fixed {
                assert!(!write.is_set(), "{column:?} is fixed at creation");
            } else {
                // What the whole row sets, the write sets alike (the schedule columns are
                // the callers' to set, in both).
                assert_eq!(write, whole, "{column:?}");
            }
        }
        // And the insert carries everything, the fixed columns included.
        assert!(FIXED_AT_CREATION.iter().all(|c| row.get(*c).is_set()));
    }

    #[test]
    fn evidence_round_trips_byte_for_byte() {
        let webhook = "{\"payment_id\":\"p1\",\"status\":\"PAID\",}\n\u{a0}\"quoted\"";
        let answer = r#"{"success":true,"data":{"status":"PENDING"}}"#;
        for e in [
            Evidence::from_webhook(webhook),
            Evidence::from_confirmation(answer),
            Evidence::from_webhook(webhook).with_confirmation(answer),
            Evidence::from_webhook(webhook).with_note("not found at IVPAY"),
            Evidence::from_confirmation("not JSON at all"),
        ] {
            let text = evidence_text(&e);
            assert_eq!(evidence_of(&text), e, "{text}");
        }
    }

    #[test]
    fn evidence_in_the_old_formats_reads_as_its_parts() {
        // A confirmed webhook: both raw texts as JSON strings.
        let both = r#"{"webhook":"{\"status\":\"PAID\"}","confirmation":"{\"success\":true}"}"#;
        let e = evidence_of(both);
        assert_eq!(e.webhook(), Some(r#"{"status":"PAID"}"#));
        assert_eq!(e.confirmation(), Some(r#"{"success":true}"#));
        assert_eq!(e.note(), None);
        // IVPAY did not know the payment: the note stood where the answer goes.
        let e = evidence_of(r#"{"webhook":"{}","confirmation":"not found at IVPAY"}"#);
        assert_eq!(
            (e.webhook(), e.confirmation(), e.note()),
            (Some("{}"), None, Some("not found at IVPAY"))
        );
        // A duplicate recorded without a GET: the webhook alone.
        let e = evidence_of(r#"{"webhook":"{\"status\":\"CREATED\"}"}"#);
        assert_eq!(
            (e.webhook(), e.confirmation()),
            (Some(r#"{"status":"CREATED"}"#), None)
        );
        // A confirmation inlined as JSON rather than quoted.
        let e = evidence_of(r#"{"webhook":"x","confirmation":{"success":true}}"#);
        assert_eq!(e.confirmation(), Some(r#"{"success":true}"#));
        // A poll: IVPAY's answer bare, kept whole.
        let poll = r#"{"success":true,"data":{"payment_id":"p1","status":"PAID"}}"#;
        let e = evidence_of(poll);
        assert_eq!(
            (e.webhook(), e.confirmation(), e.note()),
            (None, Some(poll), None)
        );
        assert_eq!(evidence_of("{}").confirmation(), Some("{}"));
    }
}
