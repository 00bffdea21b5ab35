//! Who listens: the enabled endpoints of each client, in memory, for storage to consult
//! inside the write of a change.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use ivpay_domain::{ClientId, Endpoint, EndpointId, NoticeFilter, NoticeType};
use ivpay_ports::NoticeAudience;

type Listeners = HashMap<ClientId, Vec<(EndpointId, NoticeFilter)>>;

/// The endpoints of every client, as last loaded.
///
/// Storage asks it, inside the transaction of a change, which endpoints get a notice. It
/// answers from memory: [`Directory::load`] replaces its contents, and the service loads
/// it when it starts, after every change it makes to an endpoint, and every few seconds
/// (`notify.directory_refresh_secs`), so an endpoint added through another instance
/// starts hearing within that time.
#[derive(Debug, Default)]
pub struct Directory {
    listeners: RwLock<Arc<Listeners>>,
}

impl Directory {
    /// An empty directory: nobody listens.
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces what it knows with `endpoints`. Disabled ones are kept: their notices are
    /// written all the same (the deliverer marks them *skipped* at once), so a recovery
    /// can send them once the endpoint is enabled again.
    pub fn load(&self, endpoints: &[Endpoint]) {
        let mut next = Listeners::new();
        for e in endpoints {
            next.entry(e.client.clone())
                .or_default()
                .push((e.id.clone(), e.filter));
        }
        *self.listeners.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(next);
    }

    /// How many endpoints it knows.
    pub fn len(&self) -> usize {
        self.snapshot().values().map(Vec::len).sum()
    }

    /// Whether it knows no endpoint.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn snapshot(&self) -> Arc<Listeners> {
        Arc::clone(&self.listeners.read().unwrap_or_else(|p| p.into_inner()))
    }
}

impl NoticeAudience for Directory {
    fn endpoints_for(&self, client: &ClientId, kind: NoticeType) -> Vec<EndpointId> {
        let guard = self.listeners.read().unwrap_or_else(|p| p.into_inner());
        guard.get(client).map_or_else(Vec::new, |eps| {
            eps.iter()
                .filter(|(_, filter)| filter.wants(kind))
                .map(|(id, _)| id.clone())
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use ivpay_domain::{Disabled, EndpointSecrets, Timestamp};

    use super::*;

    fn endpoint(id: &str, client: &str, filter: &str, enabled: bool) -> Endpoint {
        Endpoint {
            id: id.parse().expect("id"),
            client: client.parse().expect("client"),
            url: "https://shop.example/hook".parse().expect("url"),
            secrets: EndpointSecrets::default(),
            filter: filter.parse().expect("filter"),
            description: None,
            disabled: (!enabled).then(|| Disabled {
                reason: "operator".into(),
                at: Timestamp::from_unix_seconds(1),
            }),
            failing_since: None,
            created_at: Timestamp::from_unix_seconds(1),
            updated_at: Timestamp::from_unix_seconds(1),
        }
    }

    #[test]
    fn answers_the_endpoints_of_the_client_that_want_the_type() {
        let dir = Directory::new();
        let shop: ClientId = "shop".parse().expect("client");
        assert!(dir.endpoints_for(&shop, NoticeType::Paid).is_empty());
        dir.load(&[
            endpoint("a", "shop", "*", true),
            endpoint("b", "shop", "payment.paid", true),
            endpoint("c", "shop", "*", false),
            endpoint("d", "other", "*", true),
        ]);
        let ids = |kind| {
            dir.endpoints_for(&shop, kind)
                .iter()
                .map(|id| id.as_str().to_owned())
                .collect::<Vec<_>>()
        };
        // The disabled one too: its notices are kept, as skipped, for a recovery.
        assert_eq!(ids(NoticeType::Paid), ["a", "b", "c"]);
        assert_eq!(ids(NoticeType::Pending), ["a", "c"]);
        assert_eq!(dir.len(), 4);
        dir.load(&[]);
        assert!(ids(NoticeType::Paid).is_empty());
    }
}
