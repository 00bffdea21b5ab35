//! `GET /payment/{payment_id}/events`: every status report received for a payment, applied
//! or not, with its evidence as JSON (the webhook body and IVPAY's confirming answer).

use std::collections::BTreeMap;

use axum::extract::State;
use ivpay_domain::{PaymentEvent, PaymentStatus};
use serde::Serialize;
use serde_json::value::RawValue;
use utoipa::openapi::RefOr;
use utoipa::{IntoResponses, ToSchema};

use crate::auth::CanRead;
use crate::envelope::Envelope;
use crate::error::ApiError;
use crate::error::samples;
use crate::keys::Scope;
use crate::payment::PaymentPath;
use crate::state::AppState;

/// What a status report rests on. Each body that is JSON (trailing commas tolerated) is
/// shown as JSON; one that is not stays a string. Absent parts are left out.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EvidenceView {
    /// The webhook's body, as IVPAY sent it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = crate::schema::any)]
    webhook: Option<Box<RawValue>>,
    /// IVPAY's answer to our `GET /payment/{id}` (the confirmation of a webhook, or a
    /// poll's answer).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = crate::schema::any)]
    confirmation: Option<Box<RawValue>>,
    /// What we noted, e.g. that IVPAY did not know the payment.
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
}

/// The evidence of one event as JSON; `None` when there is none.
pub(crate) fn evidence(
    webhook: Option<&str>,
    confirmation: Option<&str>,
    note: Option<&str>,
) -> Option<EvidenceView> {
    let view = EvidenceView {
        webhook: webhook.map(json_or_text),
        confirmation: confirmation.map(json_or_text),
        note: note.map(str::to_owned),
    };
    let empty = view.webhook.is_none() && view.confirmation.is_none() && view.note.is_none();
    (!empty).then_some(view)
}

/// A body as JSON when it is JSON (tolerantly), else as a JSON string.
fn json_or_text(raw: &str) -> Box<RawValue> {
    crate::json::to_strict(raw)
        .unwrap_or_else(|| serde_json::value::to_raw_value(raw).unwrap_or_default())
}

/// One status report and what became of it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EventView {
    /// IVPAY's id as reported.
    payment_id: String,
    /// webhook, poll or api.
    #[schema(example = "webhook")]
    source: &'static str,
    /// The status before.
    #[schema(schema_with = crate::schema::optional_status)]
    from: Option<&'static str>,
    /// The reported status (kept verbatim when unknown).
    #[schema(example = "PAID")]
    to: String,
    /// applied, duplicate, refused_..., unrecognized_status, unknown_payment, unconfirmed.
    #[schema(example = "applied")]
    outcome: &'static str,
    /// When we received it (Unix seconds).
    received_at: i64,
    /// The webhook body and IVPAY's confirming answer, as JSON.
    evidence: Option<EvidenceView>,
}

impl EventView {
    fn of(e: &PaymentEvent) -> Self {
        Self {
            payment_id: e.payment_id.to_string(),
            source: e.source.as_str(),
            from: e.from.map(PaymentStatus::as_str),
            to: e.to.to_string(),
            outcome: e.outcome.as_str(),
            received_at: e.received_at.unix_seconds(),
            evidence: e
                .evidence
                .as_ref()
                .and_then(|ev| evidence(ev.webhook(), ev.confirmation(), ev.note())),
        }
    }
}

/// Every answer of `GET /payment/{payment_id}/events` but 200.
pub(crate) struct EventsErrors;

impl IntoResponses for EventsErrors {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
        let mut errors = crate::auth::errors(Scope::Read);
        errors.extend(PaymentPath::errors());
        errors.extend(samples::query(false));
        errors.extend(samples::any_route());
        crate::error::responses(&errors)
    }
}

/// Every status report received for a payment, applied or not.
#[utoipa::path(
    get, path = "/payment/{payment_id}/events", tag = "payments",
    params(PaymentPath),
    responses((status = 200, body = Envelope<Vec<EventView>>), EventsErrors),
    security(("api_key" = []))
)]
pub(crate) async fn events(
    State(state): State<AppState>,
    CanRead(client): CanRead,
    PaymentPath(reference): PaymentPath,
) -> Result<Envelope<Vec<EventView>>, ApiError> {
    let events = state.use_cases.events(client, reference).await?;
    Ok(Envelope::new(events.iter().map(EventView::of).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(view: Option<EvidenceView>) -> serde_json::Value {
        serde_json::to_value(view).expect("serialises")
    }

    #[test]
    fn json_bodies_become_objects_and_other_text_stays_a_string() {
        let v = rendered(evidence(
            Some(r#"{"payment_id":"p1","status":"PAID",}"#),
            Some("not found at IVPAY"),
            Some("IVPAY did not know it"),
        ));
        assert_eq!(v["webhook"]["status"], "PAID");
        assert_eq!(v["confirmation"], "not found at IVPAY");
        assert_eq!(v["note"], "IVPAY did not know it");
    }

    #[test]
    fn absent_parts_are_left_out_and_nothing_is_null() {
        let v = rendered(evidence(None, Some(r#"{"success":true}"#), None));
        assert_eq!(v, serde_json::json!({"confirmation": {"success": true}}));
        assert!(evidence(None, None, None).is_none());
    }

    #[test]
    fn numbers_in_evidence_keep_their_spelling() {
        let v = serde_json::to_string(&evidence(Some(r#"{"amount": 10.50}"#), None, None))
            .expect("serialises");
        assert_eq!(v, r#"{"webhook":{"amount": 10.50}}"#);
    }
}
