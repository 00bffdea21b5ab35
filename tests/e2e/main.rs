//! One test binary for every cross-crate behaviour; one module per area.

mod architecture;
mod create_outlives_request;
mod flows;
mod intent;
mod support;
