//! The ivpay payment model: exact fiat money, validated identifiers, the payment aggregate
//! and the state machine for IVPAY's four statuses.
//!
//! **Role.** The innermost ring of ivpay's hexagon. Every other crate speaks in these
//! types; no wire or row type reaches here.
//!
//! **May depend on:** pure libraries only (`rust_decimal`, `iso_currency`, `url`, `uuid`,
//! `serde`, `thiserror`). No IO, no async, no clock: `tokio`, `reqwest`, `sea-orm`,
//! `sqlx`, `axum` and `hyper` are forbidden, and a test in `tests/` checks it.
//!
//! Every value type can only hold a valid value: build it with `FromStr`, `TryFrom` or a
//! `parse`/`new` that returns a typed error.
//!
//! ```
//! use ivpay_domain::{transition, Money, PaymentStatus, Transition};
//!
//! let price = Money::parse("19.9", "eur")?;
//! assert_eq!(price.to_string(), "19.90 EUR");
//! assert_eq!(transition(PaymentStatus::Pending, PaymentStatus::Paid), Transition::Apply);
//! # Ok::<(), ivpay_domain::FieldError>(())
//! ```

mod event;
mod field;
mod id;
mod money;
mod notice;
mod notice_type;
mod payment;
mod redirect;
mod status;
mod time;

pub use event::{EventOutcome, Evidence, PaymentEvent, StatusUpdate, UpdateSource, WebhookHint};
pub use field::{Field, FieldError};
pub use id::{
    AccountId, ClientId, ForeignId, IdError, IdempotencyKey, InternalId, InternalIdError, PaymentId,
};
pub use money::{AmountError, CurrencyError, FiatAmount, FiatCurrency, Money};
pub use notice::{
    Disabled, Endpoint, EndpointId, EndpointSecrets, EndpointUrl, NoticeBody, PaymentSnapshot,
};
pub use notice_type::{NoticeFilter, NoticeType, UnknownNoticeType};
pub use payment::{
    CreateOutcome, NewPayment, OutcomeError, Payment, PaymentRecord, RecordError, UpstreamPayment,
};
pub use redirect::{RedirectUrl, UrlError};
pub use status::{
    PaymentStatus, RefusalReason, ReportedStatus, Transition, UnknownStatus, transition,
};
pub use time::Timestamp;
