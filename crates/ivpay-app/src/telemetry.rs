//! Logs: human-readable text on stdout, JSON lines by flag; filtered by `RUST_LOG` or the
//! configured filter. sea-orm's statement logging stays off unless asked for. Colour only
//! on a terminal, and never when `NO_COLOR` is set: a log file or a pipe to a collector
//! gets plain text.

use std::ffi::OsStr;
use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::settings::LogFilter;

/// Installs the global subscriber once; later calls (tests building several apps) are
/// no-ops.
pub(crate) fn init(filter: &LogFilter, json: bool) {
    // The configured filter was checked when the settings were loaded, so `new` (which
    // skips directives it cannot read) drops nothing of it.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{},sea_orm=warn,sqlx=warn", filter.as_str())));
    let ansi = use_colour(
        std::io::stdout().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(true)
        .with_ansi(ansi);
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
}

/// Whether log lines get colour codes: only on a terminal, and not when `NO_COLOR` is set
/// to anything but the empty string (<https://no-color.org>).
fn use_colour(is_terminal: bool, no_color: Option<&OsStr>) -> bool {
    is_terminal && no_color.is_none_or(OsStr::is_empty)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(use_colour(true, None));
        assert!(!use_colour(false, None), "a pipe or a file");
        assert!(!use_colour(true, Some(OsStr::new("1"))), "NO_COLOR=1");
        assert!(
            use_colour(true, Some(OsStr::new(""))),
            "an empty NO_COLOR does not count"
        );
        assert!(!use_colour(false, Some(OsStr::new("1"))));
    }
}
