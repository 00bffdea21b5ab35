//! One test binary for every cross-crate behaviour; one module per area.

mod architecture;
mod flows;
mod intent;
mod support;
