//! Named fault points: places in the use cases where a test can make the process crash or
//! stall, to prove that nothing is lost when it dies there. Unarmed (the default), a point
//! costs one hash lookup on an empty map.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// Where a fault can be injected.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum FaultPoint {
    /// The intent and idempotency key are committed; IVPAY has not been called.
    CreateAfterIntentCommit,
    /// IVPAY answered the create; the answer is not stored yet.
    CreateAfterUpstreamResponse,
    /// A webhook is stored in the inbox; it has not been confirmed or acknowledged.
    WebhookAfterInboxCommit,
}

impl FaultPoint {
    /// Every point.
    pub const ALL: [FaultPoint; 3] = [
        Self::CreateAfterIntentCommit,
        Self::CreateAfterUpstreamResponse,
        Self::WebhookAfterInboxCommit,
    ];

    /// The point's name, as written in a fault specification.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CreateAfterIntentCommit => "create.after_intent_commit",
            Self::CreateAfterUpstreamResponse => "create.after_upstream_response",
            Self::WebhookAfterInboxCommit => "webhook.after_inbox_commit",
        }
    }
}

/// What happens at an armed point.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FaultAction {
    /// The process aborts on the spot, as under `kill -9`: no unwinding, no cleanup.
    Crash,
    /// The request stalls this long, then goes on.
    Delay(Duration),
}

/// A fault specification could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FaultSpecError {
    /// Not `point=action`.
    #[error("expected point=action, got {0:?}")]
    Malformed(String),
    /// No such point.
    #[error("unknown fault point {0:?}")]
    UnknownPoint(String),
    /// Not `crash` or `delay:MILLIS`.
    #[error("unknown fault action {0:?}, expected crash or delay:MILLIS")]
    UnknownAction(String),
}

/// The armed fault points. Built from a specification such as
/// `create.after_upstream_response=crash,webhook.after_inbox_commit=delay:250`.
///
/// ```
/// use ivpay_service::{FaultAction, FaultPoint, FaultPoints};
///
/// let faults: FaultPoints = "create.after_intent_commit=delay:50".parse()?;
/// assert_eq!(
///     faults.action(FaultPoint::CreateAfterIntentCommit),
///     Some(FaultAction::Delay(std::time::Duration::from_millis(50)))
/// );
/// assert!("create.nowhere=crash".parse::<FaultPoints>().is_err());
/// # Ok::<(), ivpay_service::FaultSpecError>(())
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct FaultPoints {
    armed: Arc<HashMap<FaultPoint, FaultAction>>,
}

impl fmt::Debug for FaultPoints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut armed: Vec<String> = self
            .armed
            .iter()
            .map(|(p, a)| format!("{}={a:?}", p.as_str()))
            .collect();
        armed.sort();
        f.debug_tuple("FaultPoints").field(&armed).finish()
    }
}

impl FromStr for FaultPoints {
    type Err = FaultSpecError;

    fn from_str(spec: &str) -> Result<Self, FaultSpecError> {
        let mut armed = HashMap::new();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (name, action) = item
                .split_once('=')
                .ok_or_else(|| FaultSpecError::Malformed(item.to_owned()))?;
            let point = FaultPoint::ALL
                .into_iter()
                .find(|p| p.as_str() == name.trim())
                .ok_or_else(|| FaultSpecError::UnknownPoint(name.to_owned()))?;
            let action = match action.trim() {
                "crash" => FaultAction::Crash,
                other => other
                    .strip_prefix("delay:")
                    .and_then(|ms| ms.parse().ok())
                    .map(|ms| FaultAction::Delay(Duration::from_millis(ms)))
                    .ok_or_else(|| FaultSpecError::UnknownAction(other.to_owned()))?,
            };
            armed.insert(point, action);
        }
        Ok(Self {
            armed: Arc::new(armed),
        })
    }
}

impl FaultPoints {
    /// Whether any point is armed.
    pub fn is_armed(&self) -> bool {
        !self.armed.is_empty()
    }

    /// What is armed at `point`.
    pub fn action(&self, point: FaultPoint) -> Option<FaultAction> {
        self.armed.get(&point).copied()
    }

    /// Passes `point`: crashes or stalls if it is armed.
    pub(crate) async fn pass(&self, point: FaultPoint) {
        match self.action(point) {
            None => {}
            Some(FaultAction::Delay(d)) => tokio::time::sleep(d).await,
            Some(FaultAction::Crash) => {
                tracing::error!(
                    point = point.as_str(),
                    "fault point armed to crash: aborting"
                );
                std::process::abort();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_point_and_refuses_the_rest() {
        let all = "create.after_intent_commit=crash, create.after_upstream_response=delay:5,webhook.after_inbox_commit=crash";
        let f: FaultPoints = all.parse().expect("valid");
        assert_eq!(
            f.action(FaultPoint::CreateAfterIntentCommit),
            Some(FaultAction::Crash)
        );
        assert_eq!(
            f.action(FaultPoint::CreateAfterUpstreamResponse),
            Some(FaultAction::Delay(Duration::from_millis(5)))
        );
        assert!("".parse::<FaultPoints>().expect("empty").armed.is_empty());
        assert!(matches!(
            "x".parse::<FaultPoints>(),
            Err(FaultSpecError::Malformed(_))
        ));
        assert!(matches!(
            "create.after_intent_commit=explode".parse::<FaultPoints>(),
            Err(FaultSpecError::UnknownAction(_))
        ));
    }
}
