//! The budget of calls toward IVPAY that clients and webhooks can cause: refreshes
//! (`?refresh=true`) and webhook confirmations. Each IVPAY account has one budget shared
//! by both, and each client a budget of its own for refreshes, so no client (nor whoever
//! sends webhooks with the merchant's key) can get the merchant's IVPAY key throttled.
//! The reconciler paces itself (its batch and back-off) and is not counted.

use std::num::NonZeroU32;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use ivpay_domain::{AccountId, ClientId};

/// A sustained rate with a burst.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Rate {
    /// Calls per second on average.
    pub per_second: NonZeroU32,
    /// Calls at once after a quiet spell.
    pub burst: NonZeroU32,
}

impl Rate {
    fn quota(self) -> Quota {
        Quota::per_second(self.per_second).allow_burst(self.burst)
    }
}

/// The limits: per IVPAY account (refreshes and confirmations together) and per client
/// (its refreshes). `None` is no limit.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct BudgetConfig {
    /// Calls toward IVPAY per account.
    pub per_account: Option<Rate>,
    /// Refreshes per client.
    pub per_client: Option<Rate>,
}

/// The budgets in force.
#[derive(Debug)]
pub(crate) struct UpstreamBudget {
    accounts: Option<DefaultKeyedRateLimiter<AccountId>>,
    clients: Option<DefaultKeyedRateLimiter<ClientId>>,
}

impl UpstreamBudget {
    pub(crate) fn new(config: BudgetConfig) -> Self {
        Self {
            accounts: config.per_account.map(|r| RateLimiter::keyed(r.quota())),
            clients: config.per_client.map(|r| RateLimiter::keyed(r.quota())),
        }
    }

    /// Whether `client` may refresh a payment of `account` now; takes from both budgets.
    pub(crate) fn refresh(&self, client: &ClientId, account: &AccountId) -> bool {
        let client_ok = self
            .clients
            .as_ref()
            .is_none_or(|l| l.check_key(client).is_ok());
        client_ok && self.confirmation(account)
    }

    /// Whether a webhook of `account` may be confirmed with IVPAY now.
    pub(crate) fn confirmation(&self, account: &AccountId) -> bool {
        self.accounts
            .as_ref()
            .is_none_or(|l| l.check_key(account).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(per_second: u32, burst: u32) -> Option<Rate> {
        Some(Rate {
            per_second: NonZeroU32::new(per_second).expect("not zero"),
            burst: NonZeroU32::new(burst).expect("not zero"),
        })
    }

    #[test]
    fn a_client_spends_its_own_budget_and_the_accounts() {
        let budget = UpstreamBudget::new(BudgetConfig {
            per_account: rate(1, 3),
            per_client: rate(1, 2),
        });
        let (a, b): (ClientId, ClientId) = ("a".parse().expect("id"), "b".parse().expect("id"));
        let main = AccountId::default();
        assert!(budget.refresh(&a, &main));
        assert!(budget.refresh(&a, &main));
        assert!(!budget.refresh(&a, &main), "a's own burst is spent");
        assert!(
            budget.refresh(&b, &main),
            "b has its own, and the account one left"
        );
        assert!(
            !budget.refresh(&b, &main),
            "the account's burst is spent for everyone"
        );
        assert!(!budget.confirmation(&main));
        let other: AccountId = "pos-2".parse().expect("id");
        assert!(budget.confirmation(&other), "each account has its own");
        let unlimited = UpstreamBudget::new(BudgetConfig::default());
        assert!((0..1000).all(|_| unlimited.refresh(&a, &main)));
    }
}
