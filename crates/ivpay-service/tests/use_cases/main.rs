//! The use cases against mocked and in-memory ports: no network, no database. One test
//! binary, one module per use case.

mod create;
mod create_task;
mod link;
mod query;
mod reconcile;
mod support;
mod tenancy;
mod update;
mod webhook;
