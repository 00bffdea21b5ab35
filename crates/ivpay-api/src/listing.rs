//! `GET /payments`: payments newest first, with filters and a cursor.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use ivpay_domain::{Field, FieldError, PaymentStatus, Timestamp};
use ivpay_ports::{Cursor, PageRequest, PaymentFilter};
use serde::{Deserialize, Serialize};
use utoipa::openapi::RefOr;
use utoipa::{IntoParams, IntoResponses, ToSchema};

use crate::auth::{CanRead, Operator};
use crate::envelope::Envelope;
use crate::error::ApiError;
use crate::error::samples;
use crate::keys::Scope;
use crate::payment::PaymentView;
use crate::state::AppState;

use crate::schema::{DEFAULT_PAGE, MAX_PAGE};

/// Filters and paging; every value is read as text so an error can name it. Any other
/// parameter is refused: a misspelt filter must not quietly widen the list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// Only payments with this status.
    #[param(schema_with = crate::schema::status)]
    status: Option<String>,
    /// Only payments with this reference.
    #[param(schema_with = crate::schema::foreign_id)]
    foreign_id: Option<String>,
    /// Created at or after (Unix seconds).
    #[param(schema_with = crate::schema::unix_seconds)]
    created_from: Option<String>,
    /// Created before (Unix seconds).
    #[param(schema_with = crate::schema::unix_seconds)]
    created_to: Option<String>,
    /// `next_cursor` of the previous page.
    #[param(schema_with = crate::schema::cursor)]
    cursor: Option<String>,
    /// Page size.
    #[param(schema_with = crate::schema::page_size)]
    limit: Option<String>,
}

/// One page of payments.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PageView {
    /// Newest first.
    items: Vec<PaymentView>,
    /// Pass as `cursor` for the next page; null on the last.
    next_cursor: Option<String>,
}

fn seconds(field: &'static str, text: Option<&str>) -> Result<Option<Timestamp>, ApiError> {
    text.map(|t| {
        t.parse::<i64>()
            .map(Timestamp::from_unix_seconds)
            .map_err(|_| ApiError::invalid(field, "expected Unix seconds"))
    })
    .transpose()
}

/// The `limit` of a listing's query: 1 to [`MAX_PAGE`], [`DEFAULT_PAGE`] when left out.
pub(crate) fn page_size(text: Option<&str>) -> Result<u32, ApiError> {
    match text {
        None => Ok(DEFAULT_PAGE),
        Some(t) => t
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| ApiError::invalid("limit", format!("expected 1 to {MAX_PAGE}"))),
    }
}

fn encode_cursor(c: Cursor) -> String {
    format!("{}_{}", c.created_at.unix_seconds(), c.id)
}

fn decode_cursor(text: &str) -> Result<Cursor, ApiError> {
    let bad = || ApiError::invalid("cursor", "not a cursor from a previous page");
    let (secs, id) = text.split_once('_').ok_or_else(bad)?;
    Ok(Cursor {
        created_at: Timestamp::from_unix_seconds(secs.parse().map_err(|_| bad())?),
        id: id.parse().map_err(|_| bad())?,
    })
}

impl ListQuery {
    fn filter(&self) -> Result<PaymentFilter, ApiError> {
        Ok(PaymentFilter {
            owner: None,
            status: self
                .status
                .as_deref()
                .map(str::parse::<PaymentStatus>)
                .transpose()
                .map_err(|e| FieldError::new(Field::Status, e))?,
            foreign_id: self
                .foreign_id
                .as_deref()
                .map(str::parse)
                .transpose()
                .map_err(|e| FieldError::new(Field::ForeignId, e))?,
            created_from: seconds("created_from", self.created_from.as_deref())?,
            created_to: seconds("created_to", self.created_to.as_deref())?,
            unresolved: false,
        })
    }

    fn page(&self) -> Result<PageRequest, ApiError> {
        Ok(PageRequest {
            after: self.cursor.as_deref().map(decode_cursor).transpose()?,
            limit: page_size(self.limit.as_deref())?,
        })
    }
}

/// Every answer of `GET /payments` but 200.
pub(crate) struct ListErrors;

impl IntoResponses for ListErrors {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
        let mut errors = crate::auth::errors(Scope::Read);
        errors.push(ApiError::invalid("limit", ""));
        errors.extend(samples::storage().map(|s| ivpay_ports::QueryError::Storage(s).into()));
        errors.extend(samples::any_route());
        crate::error::responses(&errors)
    }
}

/// Payments, newest first, with filters and a cursor.
#[utoipa::path(
    get, path = "/payments", tag = "payments",
    params(ListQuery),
    responses((status = 200, body = Envelope<PageView>), ListErrors),
    security(("api_key" = []))
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    CanRead(client): CanRead,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Envelope<PageView>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::invalid("query", e.body_text()))?;
    let page = state.use_cases.list(client, q.filter()?, q.page()?).await?;
    Ok(Envelope::new(PageView {
        items: page.items.iter().map(PaymentView::of).collect(),
        next_cursor: page.next.map(encode_cursor),
    }))
}

/// The filters of [`ListQuery`], and the operator's: one client, open outcomes only.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct AdminListQuery {
    /// Only this client's payments.
    #[param(schema_with = crate::schema::client_id)]
    client: Option<String>,
    /// `true`: only payments whose create outcome is open (*unknown*, or *initiated* with
    /// no answer recorded), the ones to link or abandon.
    #[param(schema_with = crate::schema::boolean_text)]
    unresolved: Option<String>,
    /// Only payments with this status.
    #[param(schema_with = crate::schema::status)]
    status: Option<String>,
    /// Only payments with this reference.
    #[param(schema_with = crate::schema::foreign_id)]
    foreign_id: Option<String>,
    /// Created at or after (Unix seconds).
    #[param(schema_with = crate::schema::unix_seconds)]
    created_from: Option<String>,
    /// Created before (Unix seconds).
    #[param(schema_with = crate::schema::unix_seconds)]
    created_to: Option<String>,
    /// `next_cursor` of the previous page.
    #[param(schema_with = crate::schema::cursor)]
    cursor: Option<String>,
    /// Page size.
    #[param(schema_with = crate::schema::page_size)]
    limit: Option<String>,
}

impl AdminListQuery {
    /// The client's filters read as `GET /payments` reads them, then the operator's.
    fn split(self) -> Result<(PaymentFilter, PageRequest), ApiError> {
        let common = ListQuery {
            status: self.status,
            foreign_id: self.foreign_id,
            created_from: self.created_from,
            created_to: self.created_to,
            cursor: self.cursor,
            limit: self.limit,
        };
        let owner = self
            .client
            .as_deref()
            .map(|c| {
                c.parse()
                    .map_err(|e: ivpay_domain::IdError| ApiError::invalid("client", e.to_string()))
            })
            .transpose()?;
        let unresolved = match self.unresolved.as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(_) => return Err(ApiError::invalid("unresolved", "expected true or false")),
        };
        let filter = PaymentFilter {
            owner,
            unresolved,
            ..common.filter()?
        };
        Ok((filter, common.page()?))
    }
}

/// A payment in the operator's listing: whose it is, then the payment as its client sees
/// it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AdminPaymentView {
    /// The client that created it (null for a payment stored before payments had owners).
    client: Option<String>,
    /// The IVPAY account it was created with.
    account: String,
    #[serde(flatten)]
    payment: PaymentView,
}

/// One page of the operator's listing.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AdminPageView {
    /// Newest first.
    items: Vec<AdminPaymentView>,
    /// Pass as `cursor` for the next page; null on the last.
    next_cursor: Option<String>,
}

/// Every answer of `GET /admin/payments` but 200.
pub(crate) struct AdminListErrors;

impl IntoResponses for AdminListErrors {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
        let mut errors = crate::auth::errors(Scope::Admin);
        errors.push(ApiError::NotFound(crate::auth::ADMIN_OFF));
        errors.push(ApiError::invalid("limit", ""));
        errors.extend(samples::storage().map(|s| ivpay_ports::QueryError::Storage(s).into()));
        errors.extend(samples::any_route());
        crate::error::responses(&errors)
    }
}

/// Every client's payments, newest first, for an operator: `unresolved=true` lists the
/// payments whose create outcome is still open (link or abandon them).
#[utoipa::path(
    get, path = "/admin/payments", tag = "admin",
    params(AdminListQuery),
    responses((status = 200, body = Envelope<AdminPageView>), AdminListErrors),
    security(("admin_key" = []))
)]
pub(crate) async fn list_all(
    State(state): State<AppState>,
    Operator(_): Operator,
    query: Result<Query<AdminListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Envelope<AdminPageView>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::invalid("query", e.body_text()))?;
    let (filter, page) = q.split()?;
    let page = state.use_cases.list_all(filter, page).await?;
    Ok(Envelope::new(AdminPageView {
        items: page
            .items
            .iter()
            .map(|p| AdminPaymentView {
                client: p.owner().map(ToString::to_string),
                account: p.account().to_string(),
                payment: PaymentView::of(p),
            })
            .collect(),
        next_cursor: page.next.map(encode_cursor),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let c = Cursor {
            created_at: Timestamp::from_unix_seconds(1_700_000_000),
            id: "0192e4f5-7c3a-7b1e-9d2a-5f6e7a8b9c0d"
                .parse()
                .expect("uuid"),
        };
        assert_eq!(decode_cursor(&encode_cursor(c)).expect("round trip"), c);
        assert!(decode_cursor("nope").is_err());
        assert!(decode_cursor("12_notauuid").is_err());
        assert!(
            regex::Regex::new(crate::schema::CURSOR)
                .expect("pattern")
                .is_match(&encode_cursor(c)),
            "the documented pattern admits the cursors we hand out"
        );
    }

    #[test]
    fn a_bad_limit_names_the_field() {
        for text in ["0", "201", "-1", "x"] {
            assert!(
                matches!(
                    page_size(Some(text)),
                    Err(ApiError::Invalid { field: "limit", .. })
                ),
                "{text}"
            );
        }
        assert_eq!(page_size(None).ok(), Some(DEFAULT_PAGE));
        assert_eq!(page_size(Some("200")).ok(), Some(MAX_PAGE));
    }
}
