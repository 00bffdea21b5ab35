//! The outbox: the notification rows a payment's change writes beside it, and the rows of
//! endpoints, notifications and attempts to domain values and back.

use std::str::FromStr;

use ivpay_domain::{
    ClientId, Disabled, Endpoint, EndpointId, EndpointSecrets, EndpointUrl, InternalId, NoticeBody,
    NoticeFilter, NoticeType, Payment, Timestamp,
};
use ivpay_ports::{DeliveryAttempt, DeliveryState, NoticeAudience, Notification, RepositoryError};
use sea_orm::ActiveValue::{NotSet, Set};

use crate::entity::{attempt, endpoint, notification};
use crate::error::corrupt;

/// The notification rows announcing `payment`'s changes after `expected_version` (what
/// a write from that version stores): for each notice (in order), one row per endpoint the
/// audience names, all of one notice sharing a message id. Empty when nobody listens (or
/// the payment has no owner).
pub(crate) fn notice_rows(
    payment: &Payment,
    expected_version: u64,
    audience: &dyn NoticeAudience,
) -> Result<Vec<notification::ActiveModel>, RepositoryError> {
    notice_rows_of(payment, &payment.notices_after(expected_version), audience)
}

/// What a write from `expected_version` owes the listeners of `payment`'s changes, as
/// kept on its row until the rows are written ([`owed_types`] reads it back): the
/// types of its notices that some endpoint listens to, space-separated. `None` when it
/// owes nothing (nobody listens, or the payment has no owner).
pub(crate) fn owed(
    payment: &Payment,
    expected_version: u64,
    audience: &dyn NoticeAudience,
) -> Option<String> {
    let owner = payment.owner()?;
    let heard: Vec<&str> = payment
        .notices_after(expected_version)
        .into_iter()
        .filter(|kind| !audience.endpoints_for(owner, *kind).is_empty())
        .map(NoticeType::as_str)
        .collect();
    (!heard.is_empty()).then(|| heard.join(" "))
}

/// The types an [`owed`] text names, in order.
pub(crate) fn owed_types(payment: &str, owed: &str) -> Result<Vec<NoticeType>, RepositoryError> {
    owed.split(' ')
        .map(|kind| NoticeType::from_str(kind).map_err(|e| corrupt("unannounced", payment, e)))
        .collect()
}

/// The notification rows announcing `kinds` (in order) for `payment` as it is: one row per
/// endpoint the audience names, all of one notice sharing a message id.
pub(crate) fn notice_rows_of(
    payment: &Payment,
    kinds: &[NoticeType],
    audience: &dyn NoticeAudience,
) -> Result<Vec<notification::ActiveModel>, RepositoryError> {
    let Some(owner) = payment.owner() else {
        return Ok(Vec::new());
    };
    let mut rows = Vec::new();
    for &kind in kinds {
        let endpoints = audience.endpoints_for(owner, kind);
        if endpoints.is_empty() {
            continue;
        }
        let body = serde_json::to_string(&NoticeBody::of(kind, payment))
            .map_err(|e| RepositoryError::Corrupt(format!("notice body: {e}")))?;
        let message_id = format!("msg_{}", uuid::Uuid::now_v7().simple());
        let sequence = i64::try_from(payment.version())
            .map_err(|_| RepositoryError::Corrupt("version exceeds BIGINT".into()))?;
        let at = payment.updated_at().unix_seconds();
        for endpoint in endpoints {
            rows.push(notification::ActiveModel {
                id: Set(uuid::Uuid::now_v7().to_string()),
                message_id: Set(message_id.clone()),
                endpoint_id: Set(endpoint.to_string()),
                client_id: Set(owner.to_string()),
                internal_payment_id: Set(payment.id().to_string()),
                event_type: Set(kind.as_str().to_owned()),
                sequence: Set(sequence),
                body: Set(body.clone()),
                created_at: Set(at),
                state: Set(DeliveryState::Pending.as_str().to_owned()),
                attempts: Set(0),
                round_attempts: Set(0),
                next_attempt_at: Set(Some(at)),
                lease_until: Set(None),
                last_status: Set(None),
                last_error: Set(None),
                delivered_at: Set(None),
            });
        }
    }
    Ok(rows)
}

/// An endpoint as stored.
pub(crate) fn endpoint_row(e: &Endpoint) -> endpoint::ActiveModel {
    endpoint::ActiveModel {
        id: Set(e.id.to_string()),
        client_id: Set(e.client.to_string()),
        url: Set(e.url.to_string()),
        secrets: Set(e.secrets.expose().join("\n")),
        filter: Set(e.filter.to_string()),
        description: Set(e.description.clone()),
        disabled_reason: Set(e.disabled.as_ref().map(|d| d.reason.clone())),
        disabled_at: Set(e.disabled.as_ref().map(|d| d.at.unix_seconds())),
        failing_since: Set(e.failing_since.map(Timestamp::unix_seconds)),
        created_at: Set(e.created_at.unix_seconds()),
        updated_at: Set(e.updated_at.unix_seconds()),
    }
}

impl TryFrom<endpoint::Model> for Endpoint {
    type Error = RepositoryError;

    fn try_from(m: endpoint::Model) -> Result<Self, RepositoryError> {
        let k = m.id.clone();
        let bad = |what: &str, e: &dyn std::fmt::Display| corrupt(what, &k, e);
        Ok(Self {
            id: EndpointId::try_from(m.id).map_err(|e| bad("endpoint id", &e))?,
            client: ClientId::try_from(m.client_id).map_err(|e| bad("client", &e))?,
            url: EndpointUrl::from_str(&m.url).map_err(|e| bad("url", &e))?,
            secrets: EndpointSecrets::new(
                m.secrets
                    .lines()
                    .filter(|l| !l.is_empty())
                    .map(str::to_owned)
                    .collect(),
            ),
            filter: NoticeFilter::from_str(&m.filter).map_err(|e| bad("filter", &e))?,
            description: m.description,
            disabled: match (m.disabled_reason, m.disabled_at) {
                (None, None) => None,
                (Some(reason), Some(at)) => Some(Disabled {
                    reason,
                    at: Timestamp::from_unix_seconds(at),
                }),
                _ => return Err(bad("disabled", &"reason and time only partly present")),
            },
            failing_since: m.failing_since.map(Timestamp::from_unix_seconds),
            created_at: Timestamp::from_unix_seconds(m.created_at),
            updated_at: Timestamp::from_unix_seconds(m.updated_at),
        })
    }
}

fn count(what: &str, k: &str, n: i32) -> Result<u32, RepositoryError> {
    u32::try_from(n).map_err(|e| corrupt(what, k, e))
}

impl TryFrom<notification::Model> for Notification {
    type Error = RepositoryError;

    fn try_from(m: notification::Model) -> Result<Self, RepositoryError> {
        let k = m.id.clone();
        let k = k.as_str();
        Ok(Self {
            id: InternalId::from_str(&m.id).map_err(|e| corrupt("id", k, e))?,
            message_id: m.message_id,
            endpoint: EndpointId::try_from(m.endpoint_id).map_err(|e| corrupt("endpoint", k, e))?,
            client: ClientId::try_from(m.client_id).map_err(|e| corrupt("client", k, e))?,
            payment: InternalId::from_str(&m.internal_payment_id)
                .map_err(|e| corrupt("payment", k, e))?,
            kind: NoticeType::from_str(&m.event_type).map_err(|e| corrupt("event type", k, e))?,
            sequence: u64::try_from(m.sequence).map_err(|e| corrupt("sequence", k, e))?,
            body: m.body,
            created_at: Timestamp::from_unix_seconds(m.created_at),
            state: DeliveryState::parse(&m.state).ok_or_else(|| corrupt("state", k, &m.state))?,
            attempts: count("attempts", k, m.attempts)?,
            round_attempts: count("round attempts", k, m.round_attempts)?,
            next_attempt_at: m.next_attempt_at.map(Timestamp::from_unix_seconds),
            last_status: m
                .last_status
                .map(u16::try_from)
                .transpose()
                .map_err(|e| corrupt("last status", k, e))?,
            last_error: m.last_error,
            delivered_at: m.delivered_at.map(Timestamp::from_unix_seconds),
        })
    }
}

/// An attempt as stored.
pub(crate) fn attempt_row(a: &DeliveryAttempt) -> attempt::ActiveModel {
    attempt::ActiveModel {
        id: NotSet,
        notification_id: Set(a.notification.to_string()),
        number: Set(i32::try_from(a.number).unwrap_or(i32::MAX)),
        at: Set(a.at.unix_seconds()),
        status: Set(a.status.map(i32::from)),
        latency_ms: Set(i64::try_from(a.latency_ms).unwrap_or(i64::MAX)),
        excerpt: Set(a.excerpt.clone()),
        error: Set(a.error.clone()),
    }
}

impl TryFrom<attempt::Model> for DeliveryAttempt {
    type Error = RepositoryError;

    fn try_from(m: attempt::Model) -> Result<Self, RepositoryError> {
        let k = m.notification_id.clone();
        let k = k.as_str();
        Ok(Self {
            notification: InternalId::from_str(&m.notification_id)
                .map_err(|e| corrupt("notification", k, e))?,
            number: u32::try_from(m.number).map_err(|e| corrupt("number", k, e))?,
            at: Timestamp::from_unix_seconds(m.at),
            status: m
                .status
                .map(u16::try_from)
                .transpose()
                .map_err(|e| corrupt("status", k, e))?,
            latency_ms: u64::try_from(m.latency_ms).map_err(|e| corrupt("latency", k, e))?,
            excerpt: m.excerpt,
            error: m.error,
        })
    }
}
