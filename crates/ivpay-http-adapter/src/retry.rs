//! When to ask IVPAY again: a pure decision, so every case is unit-tested without a clock
//! or a network.
//!
//! IVPAY has no idempotency key, so a create that may have reached it must never be sent
//! twice: a second request can make a second payment. Reads are safe to repeat.

use std::time::Duration;

use ivpay_ports::Delivery;

use crate::error::{IvpayError, Unavailability};

/// The call being made, which decides what may be repeated.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Operation {
    /// `POST /payment/create`: not idempotent upstream.
    Create,
    /// `GET /payment/{id}`: safe to repeat.
    Get,
}

impl Operation {
    /// Its name in metrics and logs: `create`, `get`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Get => "get",
        }
    }

    /// The HTTP method of the call.
    pub fn method(self) -> reqwest::Method {
        match self {
            Self::Create => reqwest::Method::POST,
            Self::Get => reqwest::Method::GET,
        }
    }

    /// Whether this error, for this operation, allows another attempt at all (before
    /// counting attempts and time).
    ///
    /// A read is repeated on any retryable error. A create only when the request provably
    /// never left: the connection was refused. Not after a connect timeout either — the
    /// request was not sent then, but an upstream that slow is not helped by more load,
    /// and the caller learns [`Delivery::NotSent`] and can decide.
    pub fn may_retry(self, error: &IvpayError) -> bool {
        match self {
            Self::Get => error.is_retryable(),
            Self::Create => matches!(
                error,
                IvpayError::Unavailable {
                    cause: cause @ Unavailability::Connect { .. },
                    ..
                } if cause.delivery() == Delivery::NotSent
            ),
        }
    }
}

/// Bounds on retrying: attempts, back-off and total time.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct RetryPolicy {
    /// Total attempts, the first one included. `1` disables retries.
    pub max_attempts: u32,
    /// Back-off before the second attempt; it doubles after each attempt.
    pub initial_backoff: Duration,
    /// Upper bound for one back-off (before honouring `Retry-After`).
    pub max_backoff: Duration,
    /// No retry is started if it would begin later than this after the first attempt
    /// started. A `Retry-After` longer than what is left ends the retries.
    pub max_elapsed: Duration,
}

impl Default for RetryPolicy {
    /// Three attempts, 200 ms then 400 ms (jittered), within 10 s.
    fn default() -> Self {
        Self {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(2),
            max_elapsed: Duration::from_secs(10),
        }
    }
}

/// What to do after a failed attempt.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RetryDecision {
    /// Wait this long, then try again.
    RetryAfter(Duration),
    /// Return the error.
    GiveUp,
}

impl RetryPolicy {
    /// No retries at all.
    pub const NONE: Self = Self {
        max_attempts: 1,
        initial_backoff: Duration::ZERO,
        max_backoff: Duration::ZERO,
        max_elapsed: Duration::ZERO,
    };

    /// Decides whether to try again after attempt number `attempt` (1-based) failed with
    /// `error`, `elapsed` after the first attempt started.
    ///
    /// The wait is an exponential back-off with "equal jitter": half of it fixed, half
    /// scaled by `jitter` (a number in `[0, 1)`, random in production), so concurrent
    /// clients spread out but never retry at once. A `Retry-After` from IVPAY is a lower
    /// bound on the wait.
    pub fn decide(
        &self,
        operation: Operation,
        attempt: u32,
        elapsed: Duration,
        error: &IvpayError,
        jitter: f64,
    ) -> RetryDecision {
        if !operation.may_retry(error) || attempt >= self.max_attempts {
            return RetryDecision::GiveUp;
        }
        let exponent = attempt.saturating_sub(1).min(30);
        let backoff = self
            .initial_backoff
            .saturating_mul(1 << exponent)
            .min(self.max_backoff);
        let half = backoff / 2;
        // NaN or infinity (a caller's bug) must not panic inside `mul_f64`.
        let jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let jittered = half + half.mul_f64(jitter);
        let wait = error.retry_after().map_or(jittered, |ra| ra.max(jittered));
        if elapsed.saturating_add(wait) > self.max_elapsed {
            return RetryDecision::GiveUp;
        }
        RetryDecision::RetryAfter(wait)
    }
}

/// Reads `Retry-After`: delay-seconds or an HTTP date (RFC 9110). A date in the past is
/// zero; anything unreadable is ignored.
pub(crate) fn parse_retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unavailable(cause: Unavailability, retry_after: Option<Duration>) -> IvpayError {
        IvpayError::Unavailable { cause, retry_after }
    }

    fn refused() -> IvpayError {
        unavailable(
            Unavailability::Connect {
                detail: "Connection refused".into(),
            },
            None,
        )
    }

    fn server_error() -> IvpayError {
        unavailable(Unavailability::Status { status: 503 }, None)
    }

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn reads_retry_every_retryable_error() {
        let p = RetryPolicy::default();
        for e in [
            refused(),
            server_error(),
            unavailable(Unavailability::Timeout, None),
            unavailable(Unavailability::ConnectTimeout, None),
            unavailable(
                Unavailability::Interrupted {
                    detail: "reset".into(),
                },
                None,
            ),
        ] {
            assert!(
                matches!(
                    p.decide(Operation::Get, 1, Duration::ZERO, &e, 0.5),
                    RetryDecision::RetryAfter(_)
                ),
                "{e}"
            );
        }
    }

    #[test]
    fn answers_are_never_retried() {
        let p = RetryPolicy::default();
        for op in [Operation::Get, Operation::Create] {
            for e in [
                IvpayError::Unauthorized,
                IvpayError::Rejected {
                    status: 400,
                    message: "no".into(),
                },
                IvpayError::Protocol {
                    status: 200,
                    detail: "garbage".into(),
                },
            ] {
                assert_eq!(
                    p.decide(op, 1, Duration::ZERO, &e, 0.5),
                    RetryDecision::GiveUp
                );
            }
        }
    }

    #[test]
    fn create_is_retried_only_when_the_connection_was_refused() {
        let p = RetryPolicy::default();
        assert!(matches!(
            p.decide(Operation::Create, 1, Duration::ZERO, &refused(), 0.0),
            RetryDecision::RetryAfter(_)
        ));
        for e in [
            server_error(),
            unavailable(Unavailability::Timeout, None),
            unavailable(Unavailability::ConnectTimeout, None),
            unavailable(
                Unavailability::Interrupted {
                    detail: "reset".into(),
                },
                None,
            ),
            unavailable(Unavailability::Status { status: 429 }, Some(MS)),
        ] {
            assert_eq!(
                p.decide(Operation::Create, 1, Duration::ZERO, &e, 0.0),
                RetryDecision::GiveUp,
                "{e}"
            );
        }
    }

    #[test]
    fn backoff_doubles_with_equal_jitter_and_is_capped() {
        let p = RetryPolicy {
            max_attempts: 10,
            initial_backoff: 100 * MS,
            max_backoff: 300 * MS,
            max_elapsed: Duration::from_secs(60),
        };
        let e = server_error();
        let wait = |attempt, jitter| p.decide(Operation::Get, attempt, Duration::ZERO, &e, jitter);
        assert_eq!(wait(1, 0.0), RetryDecision::RetryAfter(50 * MS));
        assert_eq!(
            wait(1, 0.999_999),
            RetryDecision::RetryAfter(Duration::from_nanos(99_999_950))
        );
        assert_eq!(wait(2, 0.0), RetryDecision::RetryAfter(100 * MS));
        assert_eq!(wait(3, 1.0), RetryDecision::RetryAfter(300 * MS));
        assert_eq!(wait(9, 0.0), RetryDecision::RetryAfter(150 * MS));
        assert_eq!(wait(1, f64::NAN), RetryDecision::RetryAfter(50 * MS));
        assert_eq!(wait(1, -3.0), RetryDecision::RetryAfter(50 * MS));
        assert_eq!(wait(1, 7.0), RetryDecision::RetryAfter(100 * MS));
    }

    #[test]
    fn attempts_and_total_time_are_bounded() {
        let p = RetryPolicy::default();
        let e = server_error();
        assert_eq!(
            p.decide(Operation::Get, 3, Duration::ZERO, &e, 0.0),
            RetryDecision::GiveUp
        );
        assert_eq!(
            p.decide(Operation::Get, 1, Duration::from_secs(10), &e, 0.0),
            RetryDecision::GiveUp
        );
        assert_eq!(
            RetryPolicy::NONE.decide(Operation::Get, 1, Duration::ZERO, &e, 0.0),
            RetryDecision::GiveUp
        );
    }

    #[test]
    fn retry_after_is_a_lower_bound_within_the_budget() {
        let p = RetryPolicy::default();
        let asked = |secs| {
            unavailable(
                Unavailability::Status { status: 429 },
                Some(Duration::from_secs(secs)),
            )
        };
        assert_eq!(
            p.decide(Operation::Get, 1, Duration::ZERO, &asked(3), 0.5),
            RetryDecision::RetryAfter(Duration::from_secs(3))
        );
        assert_eq!(
            p.decide(Operation::Get, 1, Duration::ZERO, &asked(0), 0.0),
            RetryDecision::RetryAfter(100 * MS)
        );
        assert_eq!(
            p.decide(Operation::Get, 1, Duration::ZERO, &asked(60), 0.5),
            RetryDecision::GiveUp
        );
    }

    #[test]
    fn reads_retry_after_seconds_and_dates() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").expect("date");
        assert_eq!(
            parse_retry_after(" 120 ", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }

    #[test]
    fn operations_know_their_method() {
        assert_eq!(Operation::Create.method(), reqwest::Method::POST);
        assert_eq!(Operation::Get.method(), reqwest::Method::GET);
    }
}
