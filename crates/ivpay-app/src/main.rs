//! `ivpay-app`: wiring only. Everything else lives in the library so tests can run it.

use std::process::ExitCode;

use clap::Parser;

/// mimalloc: less time in the allocator per request than glibc's malloc.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = ivpay_app::Cli::parse();
    match ivpay_app::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("ivpay: {error}");
            ExitCode::FAILURE
        }
    }
}
