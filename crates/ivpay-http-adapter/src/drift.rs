//! Contract drift: IVPAY sending what its documentation does not say. Each field it sends
//! that the documentation does not name is counted in
//! `ivpay_contract_drift_fields_total{source}` (`create`, `get`), and logged at warn the
//! first time this process sees its name on that call, so the log names the new field
//! without repeating it on every call.

use std::collections::BTreeSet;
use std::sync::{Mutex, PoisonError};

/// How many distinct (call, field) names are remembered for logging; past that, new ones
/// are still counted but logged at debug only, so a misbehaving upstream cannot grow
/// memory or flood the log.
const REMEMBERED: usize = 64;

static SEEN: Mutex<BTreeSet<(&'static str, String)>> = Mutex::new(BTreeSet::new());

/// Counts `field`, which IVPAY sent in its answer to `source` and its documentation does
/// not name.
pub(crate) fn undocumented_field(source: &'static str, field: &str) {
    metrics::counter!("ivpay_contract_drift_fields_total", "source" => source).increment(1);
    let first = {
        let mut seen = SEEN.lock().unwrap_or_else(PoisonError::into_inner);
        seen.len() < REMEMBERED && seen.insert((source, field.to_owned()))
    };
    // The name only: the field's value may carry anything.
    let field: String = field.chars().take(64).collect();
    if first {
        tracing::warn!(
            source,
            field,
            "IVPAY sent a field its documentation does not name"
        );
    } else {
        tracing::debug!(source, field, "IVPAY sent an undocumented field again");
    }
}
