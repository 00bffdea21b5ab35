//! The merchant's IVPAY accounts: one gateway per account, and which account each client
//! creates its payments through.

use std::collections::BTreeMap;

use ivpay_domain::{AccountId, ClientId};
use ivpay_ports::{Delivery, GatewayError};

/// One IVPAY gateway per account (each with its own key), and the account each client
/// uses. A client not assigned uses [`AccountId::DEFAULT`].
#[derive(Debug)]
pub struct Accounts<G> {
    gateways: BTreeMap<AccountId, G>,
    of_client: BTreeMap<ClientId, AccountId>,
}

impl<G> Accounts<G> {
    /// The default account only, through `gateway`.
    pub fn single(gateway: G) -> Self {
        Self::new().with(AccountId::default(), gateway)
    }

    /// No account yet.
    pub fn new() -> Self {
        Self {
            gateways: BTreeMap::new(),
            of_client: BTreeMap::new(),
        }
    }

    /// Adds (or replaces) `account`, reached through `gateway`.
    #[must_use]
    pub fn with(mut self, account: AccountId, gateway: G) -> Self {
        self.gateways.insert(account, gateway);
        self
    }

    /// `client` creates its payments through `account`.
    #[must_use]
    pub fn assign(mut self, client: ClientId, account: AccountId) -> Self {
        self.of_client.insert(client, account);
        self
    }

    /// The account `client` creates its payments through.
    pub fn account_of(&self, client: &ClientId) -> AccountId {
        self.of_client.get(client).cloned().unwrap_or_default()
    }

    /// The accounts configured.
    pub fn names(&self) -> impl Iterator<Item = &AccountId> {
        self.gateways.keys()
    }

    /// The gateway of `account`.
    ///
    /// # Errors
    ///
    /// [`GatewayError::Unavailable`], not sent, when the account is not configured (a
    /// payment made through an account since removed from the configuration): retried
    /// later, so the payment is checked again once the account is back.
    pub fn of(&self, account: &AccountId) -> Result<&G, GatewayError> {
        self.gateways
            .get(account)
            .ok_or_else(|| GatewayError::Unavailable {
                reason: format!("IVPAY account {account} is not configured"),
                delivery: Delivery::NotSent,
                retry_after: None,
            })
    }
}

impl<G> Default for Accounts<G> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_use_their_account_or_the_default_one() {
        let accounts = Accounts::single("main-gw")
            .with("pos-2".parse().expect("id"), "pos2-gw")
            .assign("kiosk".parse().expect("id"), "pos-2".parse().expect("id"));
        let kiosk = accounts.account_of(&"kiosk".parse().expect("id"));
        assert_eq!(accounts.of(&kiosk).copied(), Ok("pos2-gw"));
        let shop = accounts.account_of(&"shop".parse().expect("id"));
        assert_eq!(shop, AccountId::default());
        assert_eq!(accounts.of(&shop).copied(), Ok("main-gw"));
        let gone = accounts.of(&"closed".parse().expect("id"));
        assert!(matches!(
            gone,
            Err(GatewayError::Unavailable {
                delivery: Delivery::NotSent,
                ..
            })
        ));
    }
}
