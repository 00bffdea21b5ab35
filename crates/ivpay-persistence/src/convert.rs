//! Rows to domain values and back. Every stored string is re-parsed through the domain's
//! constructors, so a hand-edited or corrupt row fails loudly as
//! [`RepositoryError::Corrupt`] instead of becoming an invalid value.

use std::str::FromStr;

use ivpay_domain::{
    ClientId, CreateOutcome, EventOutcome, ForeignId, IdempotencyKey, InternalId, Money, Payment,
    PaymentEvent, PaymentId, PaymentRecord, PaymentStatus, RedirectUrl, ReportedStatus, Timestamp,
    UpdateSource, UpstreamPayment, WebhookHint,
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
    })
}

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
        evidence: Set(e.evidence.clone()),
        received_at: Set(e.received_at.unix_seconds()),
    }
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
            evidence: m.evidence,
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
        received_at: Set(w.received_at.unix_seconds()),
        attempts: Set(i64::from(w.attempts)),
        next_attempt_at: Set(next_attempt_at.unix_seconds()),
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
