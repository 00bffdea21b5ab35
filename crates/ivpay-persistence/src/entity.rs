//! The row types, one module per table. They mirror the schema the migrations build and
//! never leave this crate: the repository converts them to and from domain types.

pub(crate) mod attempt;
pub(crate) mod endpoint;
pub(crate) mod event;
pub(crate) mod idempotency;
pub(crate) mod inbox;
pub(crate) mod notification;
pub(crate) mod payment;
