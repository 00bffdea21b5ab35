//! Logs: human-readable on a terminal, JSON lines by flag; filtered by `RUST_LOG` or the
//! configured filter. sea-orm's statement logging stays off unless asked for.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber once; later calls (tests building several apps) are
/// no-ops.
pub(crate) fn init(filter: &str, json: bool) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(format!("{filter},sea_orm=warn,sqlx=warn")))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(true);
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
}
