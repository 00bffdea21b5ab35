//! Cross-crate tests of ivpay. The library is empty; the tests live in `e2e/`, one module
//! per behaviour area, compiled into a single test binary.
//!
//! **May depend on:** every ivpay crate, as a user of them would.
