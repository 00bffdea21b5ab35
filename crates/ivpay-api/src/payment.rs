//! `GET /payment/{payment_id}`: one payment, by IVPAY's id or ours, in IVPAY's shape with
//! our fields added.

use std::collections::BTreeMap;

use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use ivpay_domain::{Field, FieldError, Payment, Timestamp};
use ivpay_ports::{PaymentRead, PaymentRef, Refresh};
use serde::{Deserialize, Serialize};
use utoipa::openapi::RefOr;
use utoipa::{IntoParams, IntoResponses, ToSchema};

use crate::auth::CanRead;
use crate::envelope::Envelope;
use crate::error::ApiError;
use crate::error::samples;
use crate::keys::Scope;
use crate::state::AppState;

/// The `{payment_id}` of the path: IVPAY's id or ours.
pub(crate) struct PaymentPath(pub(crate) PaymentRef);

impl FromRequestParts<AppState> for PaymentPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let axum::extract::Path(text) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|e| ApiError::invalid(Field::PaymentId.as_str(), e.body_text()))?;
        text.parse::<PaymentRef>()
            .map(Self)
            .map_err(|e| FieldError::new(Field::PaymentId, e).into())
    }
}

impl PaymentPath {
    /// The errors reading the path answers, for the document.
    pub(crate) fn errors() -> Vec<ApiError> {
        vec![ApiError::invalid(Field::PaymentId.as_str(), "")]
    }
}

crate::schema::documents_parameter!(
    PaymentPath,
    "payment_id",
    Path,
    true,
    crate::schema::payment_ref
);

/// What the client asked for, as a create and a read both answer it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Terms {
    /// The amount at the currency's scale.
    #[schema(example = "10.50")]
    amount_fiat: String,
    /// The currency code.
    #[schema(example = "USD")]
    currency_fiat: &'static str,
    /// As sent.
    url_success: Option<String>,
    /// As sent.
    url_failed: Option<String>,
}

impl Terms {
    pub(crate) fn of(p: &Payment) -> Self {
        Self {
            amount_fiat: p.money().amount().to_string(),
            currency_fiat: p.money().currency().code(),
            url_success: p.url_success().map(ToString::to_string),
            url_failed: p.url_failed().map(ToString::to_string),
        }
    }
}

/// A payment now: IVPAY's `GET` fields, then ours.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PaymentView {
    /// IVPAY's id (null while the create's outcome is not `created`).
    payment_id: Option<String>,
    /// Your reference.
    foreign_id: Option<String>,
    /// When IVPAY processed the current status (Unix seconds).
    processed_at: Option<i64>,
    /// The status.
    #[schema(schema_with = crate::schema::status)]
    status: &'static str,
    /// Our id.
    #[schema(format = "uuid")]
    id: String,
    /// The checkout page.
    payment_url: Option<String>,
    /// When IVPAY created it, or when we recorded it if IVPAY has not said.
    created_at: i64,
    /// What was asked for.
    #[serde(flatten)]
    terms: Terms,
    /// Our create call: initiated, created, rejected, unknown or abandoned.
    #[schema(example = "created")]
    outcome: &'static str,
    /// Why, for rejected, unknown and abandoned.
    outcome_reason: Option<String>,
    /// Whether the status is PAID or TIMEOUT.
    #[serde(rename = "final")]
    is_final: bool,
    /// When we recorded the intent.
    recorded_at: i64,
    /// When our record last changed.
    updated_at: i64,
    /// Our record's version.
    version: u64,
    /// With `?refresh=true` only: `done` (IVPAY was asked), `not_needed` (final, or no
    /// IVPAY id yet), or `skipped` (the budget of calls toward IVPAY is spent; this is the
    /// stored state, ask again later).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "done")]
    refresh: Option<&'static str>,
}

impl PaymentView {
    pub(crate) fn of(p: &Payment) -> Self {
        let up = p.upstream();
        Self {
            payment_id: up.map(|u| u.payment_id.to_string()),
            foreign_id: p.foreign_id().map(ToString::to_string),
            processed_at: p.processed_at().map(Timestamp::unix_seconds),
            status: p.status().as_str(),
            id: p.id().to_string(),
            payment_url: up.map(|u| u.payment_url.to_string()),
            created_at: up.map_or(p.created_at(), |u| u.created_at).unix_seconds(),
            terms: Terms::of(p),
            outcome: p.outcome().as_str(),
            outcome_reason: p.outcome().reason().map(str::to_owned),
            is_final: p.is_final(),
            recorded_at: p.created_at().unix_seconds(),
            updated_at: p.updated_at().unix_seconds(),
            version: p.version(),
            refresh: None,
        }
    }

    /// A read, saying what became of its refresh when one was asked for.
    fn of_read(read: &PaymentRead) -> Self {
        Self {
            refresh: (read.refresh != Refresh::NotAsked).then(|| read.refresh.as_str()),
            ..Self::of(&read.payment)
        }
    }
}

/// `?refresh=true` asks IVPAY before answering.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct GetQuery {
    /// Ask IVPAY for the status first (and record what it says).
    #[serde(default)]
    refresh: bool,
}

/// Every answer of `GET /payment/{payment_id}` but 200.
pub(crate) struct GetErrors;

impl IntoResponses for GetErrors {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
        let mut errors = crate::auth::errors(Scope::Read);
        errors.extend(PaymentPath::errors());
        errors.push(ApiError::invalid("refresh", ""));
        errors.extend(samples::query(true));
        errors.extend(samples::any_route());
        crate::error::responses(&errors)
    }
}

/// A payment by IVPAY's id or ours.
#[utoipa::path(
    get, path = "/payment/{payment_id}", tag = "payments",
    params(PaymentPath, GetQuery),
    responses((status = 200, body = Envelope<PaymentView>), GetErrors),
    security(("api_key" = []))
)]
pub(crate) async fn get(
    State(state): State<AppState>,
    CanRead(client): CanRead,
    PaymentPath(reference): PaymentPath,
    query: Result<Query<GetQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Envelope<PaymentView>, ApiError> {
    let Query(query) = query.map_err(|_| ApiError::invalid("refresh", "expected true or false"))?;
    let read = state
        .use_cases
        .get(client, reference, query.refresh)
        .await?;
    Ok(Envelope::new(PaymentView::of_read(&read)))
}

#[cfg(test)]
mod tests {
    use ivpay_domain::{AccountId, NewPayment, PaymentSnapshot, PaymentStatus, UpstreamPayment};

    use super::*;

    /// A notice carries the payment exactly as this route shows it (`refresh` aside): the
    /// domain's snapshot and this view must not drift apart.
    #[test]
    fn a_notice_shows_the_payment_as_the_read_does() {
        let request = NewPayment::from_fields(
            "10.5",
            "USD",
            Some("order-7"),
            Some("https://shop.example/ok"),
            None,
        )
        .expect("valid");
        let mut p = Payment::initiate(
            "00000000-0000-0000-0000-000000000003".parse().expect("id"),
            "shop".parse().expect("client"),
            AccountId::default(),
            request.clone(),
            Timestamp::from_unix_seconds(100),
        );
        let mut rejected = Payment::initiate(
            "00000000-0000-0000-0000-000000000004".parse().expect("id"),
            "shop".parse().expect("client"),
            AccountId::default(),
            request,
            Timestamp::from_unix_seconds(100),
        );
        rejected
            .mark_rejected("no".into(), Timestamp::from_unix_seconds(101))
            .expect("settles");
        let initiated = p.clone();
        p.mark_created(
            UpstreamPayment {
                payment_id: "abc".parse().expect("id"),
                payment_url: "https://pay.example/abc".parse().expect("url"),
                created_at: Timestamp::from_unix_seconds(101),
            },
            Timestamp::from_unix_seconds(102),
        )
        .expect("settles");
        p.apply_status(
            PaymentStatus::Paid,
            Some(Timestamp::from_unix_seconds(150)),
            Timestamp::from_unix_seconds(151),
        );
        for payment in [initiated, rejected, p] {
            let view = serde_json::to_value(PaymentView::of(&payment)).expect("json");
            let snapshot = serde_json::to_value(PaymentSnapshot::of(&payment)).expect("json");
            assert_eq!(view, snapshot);
        }
    }
}
