//! One test binary for every cross-crate behaviour; one module per area.

/// Runs one flow (a function of the backend, in the module that calls this) as two tests:
/// `sqlite` and `postgres`.
macro_rules! on_both_backends {
    ($($flow:ident),* $(,)?) => {$(
        mod $flow {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                super::$flow(Backend::Sqlite).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                super::$flow(Backend::Postgres).await;
            }
        }
    )*};
}

mod architecture;
mod create_outlives_request;
mod flows;
mod intent;
mod notifications;
mod notify_schedule;
mod retention;
mod statements;
mod support;
mod tenancy;
mod unknown;
