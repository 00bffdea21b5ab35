//! The webhook inbox: kept verbatim, claimed once, retried later, removed when done.

use ivpay_domain::{ReportedStatus, WebhookHint};
use ivpay_ports::{InboxEntry, InboxWebhook, LeaseWrite};

use crate::support::{LEASE, Storage, at, id};

fn webhook(n: u128, received: i64) -> InboxWebhook {
    InboxWebhook {
        id: id(n),
        hint: WebhookHint {
            account: if n.is_multiple_of(2) {
                ivpay_domain::AccountId::default()
            } else {
                "pos-2".parse().expect("account")
            },
            payment_id: format!("ivpay{n}").parse().expect("valid id"),
            status: Some(ReportedStatus::from("PAID")),
            raw: format!(r#"{{"payment_id":"ivpay{n}","status":"PAID","amount":10.50}}"#),
        },
        received_at: at(received),
        attempts: 0,
    }
}

pub(crate) async fn webhooks_are_kept_claimed_once_retried_and_finished(repo: impl Storage) {
    let first = webhook(1, 10);
    repo.store_webhook(&first, at(100)).await.expect("kept");
    repo.store_webhook(&webhook(2, 20), at(50))
        .await
        .expect("kept");

    assert!(
        repo.claim_webhooks(at(49), LEASE, 10)
            .await
            .expect("claimed")
            .is_empty()
    );
    let due = repo
        .claim_webhooks(at(100), LEASE, 10)
        .await
        .expect("claimed");
    assert_eq!(
        due.iter().map(|w| w.id).collect::<Vec<_>>(),
        vec![id(1), id(2)],
        "oldest first"
    );
    assert_eq!(due[0], first, "kept verbatim, raw body and all");
    // Leased: a second claimer at the same time gets nothing.
    assert!(
        repo.claim_webhooks(at(100), LEASE, 10)
            .await
            .expect("claimed")
            .is_empty()
    );

    let leased_until = at(100) + LEASE;
    assert_eq!(
        repo.retry_webhook(id(2), leased_until, at(500), 3)
            .await
            .expect("rescheduled"),
        LeaseWrite::Written
    );
    assert_eq!(
        repo.finish_webhook(id(1), leased_until)
            .await
            .expect("finished"),
        LeaseWrite::Written
    );
    let later = repo
        .claim_webhooks(at(10_000), LEASE, 10)
        .await
        .expect("claimed");
    assert_eq!(later.len(), 1, "the finished one is gone");
    assert_eq!((later[0].id, later[0].attempts), (id(2), 3));
}

/// A worker whose lease on a webhook ran out can neither reschedule it (moving the attempt
/// of the worker that took over, or setting its count back) nor remove it.
pub(crate) async fn a_stale_inbox_claimer_can_neither_retry_nor_finish(repo: impl Storage) {
    repo.store_webhook(&webhook(1, 10), at(100))
        .await
        .expect("kept");
    let slow = at(100) + LEASE;
    assert_eq!(
        repo.claim_webhooks(at(100), LEASE, 10)
            .await
            .expect("claimed")
            .len(),
        1
    );
    let fresh = slow + LEASE;
    assert_eq!(
        repo.claim_webhooks(slow, LEASE, 10)
            .await
            .expect("claimed")
            .len(),
        1,
        "taken over when the lease ends"
    );
    assert_eq!(
        repo.retry_webhook(id(1), slow, slow, 1)
            .await
            .expect("answered"),
        LeaseWrite::LeaseLost
    );
    assert_eq!(
        repo.finish_webhook(id(1), slow).await.expect("answered"),
        LeaseWrite::LeaseLost
    );
    assert!(
        repo.claim_webhooks(slow, LEASE, 10)
            .await
            .expect("claimed")
            .is_empty(),
        "still leased to the worker that took over"
    );
    assert_eq!(
        repo.retry_webhook(id(1), fresh, at(1_000), 4)
            .await
            .expect("rescheduled"),
        LeaseWrite::Written
    );
    let again = repo
        .claim_webhooks(at(1_000), LEASE, 10)
        .await
        .expect("claimed");
    assert_eq!((again.len(), again[0].attempts), (1, 4));
    assert_eq!(
        repo.finish_webhook(id(1), at(1_000) + LEASE)
            .await
            .expect("finished"),
        LeaseWrite::Written
    );
    assert!(
        repo.claim_webhooks(at(100_000), LEASE, 10)
            .await
            .expect("claimed")
            .is_empty()
    );
}

pub(crate) async fn pending_webhooks_are_listed_oldest_first_with_their_next_attempt(
    repo: impl Storage,
) {
    assert!(repo.pending_webhooks(10).await.expect("listed").is_empty());
    let older = webhook(3, 10);
    repo.store_webhook(&webhook(4, 30), at(30))
        .await
        .expect("kept");
    repo.store_webhook(&older, at(10)).await.expect("kept");
    repo.store_webhook(&webhook(5, 20), at(20))
        .await
        .expect("kept");
    // A claim moves the next attempt to the lease's end: the listing shows that.
    let claimed = repo
        .claim_webhooks(at(10), LEASE, 1)
        .await
        .expect("claimed");
    assert_eq!(claimed.len(), 1);

    let listed = repo.pending_webhooks(2).await.expect("listed");
    assert_eq!(
        listed,
        vec![
            InboxEntry {
                webhook: older,
                next_attempt_at: at(10) + LEASE,
            },
            InboxEntry {
                webhook: webhook(5, 20),
                next_attempt_at: at(20),
            },
        ],
        "oldest first, verbatim, at most the limit"
    );
    let finished = repo
        .finish_webhook(id(3), at(10) + LEASE)
        .await
        .expect("finished");
    assert_eq!(finished, LeaseWrite::Written);
    let left: Vec<_> = repo
        .pending_webhooks(10)
        .await
        .expect("listed")
        .into_iter()
        .map(|e| e.webhook.id)
        .collect();
    assert_eq!(
        left,
        vec![id(5), id(4)],
        "a finished webhook leaves the list"
    );
}
