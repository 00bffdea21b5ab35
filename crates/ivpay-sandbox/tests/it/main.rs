//! Integration tests of the IVPAY sandbox over real HTTP on loopback.

mod browser;
mod checkout;
mod contract;
mod control;
mod faults;
mod support;
mod timeout;
mod webhooks;
