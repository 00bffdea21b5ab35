//! Settling an intent as abandoned and releasing its idempotency key: one write.

use ivpay_domain::{CreateOutcome, Payment};
use ivpay_ports::{IdempotencyClaim, IntentInsert, PaymentStore, RepositoryError};

use crate::support::{Storage, TestDb, at, id, intent};

fn claim(key: &str, expires: i64) -> IdempotencyClaim {
    IdempotencyClaim {
        client: "shop".parse().expect("valid"),
        key: key.parse().expect("valid"),
        fingerprint: "fp".to_owned(),
        expires_at: at(expires),
    }
}

/// Payment `n` stored as an intent holding `key`, and the same payment settled as
/// abandoned (not yet stored), with the version it was read at.
async fn abandoned_intent(repo: &impl PaymentStore, n: u128, key: &str) -> (Payment, u64) {
    let mut p = intent(n, "1.00", 1_000);
    assert_eq!(
        repo.insert_intent(&p, Some(claim(key, 5_000)))
            .await
            .expect("stored"),
        IntentInsert::Inserted
    );
    let read = p.version();
    p.mark_abandoned("not sent: HTTP 429".into(), at(1_001))
        .expect("initiated settles");
    (p, read)
}

/// Whether `key` still answers for a payment: a new intent with it is refused.
async fn key_taken(repo: &impl PaymentStore, n: u128, key: &str) -> bool {
    match repo
        .insert_intent(&intent(n, "1.00", 1_002), Some(claim(key, 5_000)))
        .await
        .expect("answered")
    {
        IntentInsert::KeyTaken(_) => true,
        IntentInsert::Inserted => false,
    }
}

pub(crate) async fn abandoning_settles_and_releases_the_key_or_neither(repo: impl Storage) {
    let (p, read) = abandoned_intent(&repo, 1, "k-1").await;
    let stale = read + 7;
    let err = repo
        .save_abandoned(&p, stale)
        .await
        .expect_err("wrong version");
    assert!(
        matches!(err, RepositoryError::VersionConflict { id: i, .. } if i == id(1)),
        "{err:?}"
    );
    let stored = repo.get(id(1)).await.expect("read").expect("kept");
    assert_eq!(stored.outcome(), &CreateOutcome::Initiated);
    assert!(
        key_taken(&repo, 2, "k-1").await,
        "a lost write keeps the key"
    );

    repo.save_abandoned(&p, read).await.expect("settled");
    assert_eq!(repo.get(id(1)).await.expect("read"), Some(p));
    assert!(!key_taken(&repo, 3, "k-1").await, "the key is free again");

    // Without a key: only the outcome.
    let mut q = intent(4, "1.00", 1_000);
    repo.insert_intent(&q, None).await.expect("stored");
    let read = q.version();
    q.mark_abandoned("refused".into(), at(1_001))
        .expect("initiated settles");
    repo.save_abandoned(&q, read).await.expect("settled");
    assert_eq!(repo.get(id(4)).await.expect("read"), Some(q));
}

pub(crate) async fn abandoning_releases_only_a_key_that_names_the_payment(repo: impl Storage) {
    let mut p = intent(1, "1.00", 1_000);
    repo.insert_intent(&p, Some(claim("k-1", 1_500)))
        .await
        .expect("stored");
    // The key expired and another request took it over.
    let later = intent(2, "1.00", 2_000);
    assert_eq!(
        repo.insert_intent(&later, Some(claim("k-1", 9_000)))
            .await
            .expect("stored"),
        IntentInsert::Inserted
    );
    let read = p.version();
    p.mark_abandoned("not sent".into(), at(2_001))
        .expect("initiated settles");
    repo.save_abandoned(&p, read).await.expect("settled");
    let IntentInsert::KeyTaken(record) = repo
        .insert_intent(&intent(3, "1.00", 2_002), Some(claim("k-1", 9_000)))
        .await
        .expect("answered")
    else {
        panic!("the later request's key was released");
    };
    assert_eq!(record.payment, id(2));
}

/// A failure of the key release, inside the transaction, must undo the outcome too: with
/// two separate writes the payment would be abandoned while its key still answered for it.
pub(crate) async fn a_failed_key_release_leaves_the_intent_untouched(t: TestDb) {
    let postgres = t.url.starts_with("postgres");
    if postgres {
        t.execute_raw(
            "CREATE FUNCTION keep_keys() RETURNS trigger AS $$ \
             BEGIN RAISE EXCEPTION 'keys are kept'; END $$ LANGUAGE plpgsql; \
             CREATE TRIGGER keep_keys BEFORE DELETE ON idempotency_keys \
             FOR EACH ROW EXECUTE FUNCTION keep_keys();",
        )
        .await;
    } else {
        t.execute_raw(
            "CREATE TRIGGER keep_keys BEFORE DELETE ON idempotency_keys \
             BEGIN SELECT RAISE(ABORT, 'keys are kept'); END;",
        )
        .await;
    }
    let (p, read) = abandoned_intent(&t.repo, 1, "k-1").await;
    t.repo
        .save_abandoned(&p, read)
        .await
        .expect_err("the release fails");
    let stored = t.repo.get(id(1)).await.expect("read").expect("kept");
    assert_eq!(stored.outcome(), &CreateOutcome::Initiated, "rolled back");
    assert_eq!(stored.version(), read);
    assert!(key_taken(&t.repo, 2, "k-1").await);

    t.execute_raw(if postgres {
        "DROP TRIGGER keep_keys ON idempotency_keys"
    } else {
        "DROP TRIGGER keep_keys"
    })
    .await;
    t.repo
        .save_abandoned(&p, read)
        .await
        .expect("settled once the release can go through");
    assert_eq!(t.repo.get(id(1)).await.expect("read"), Some(p));
    assert!(!key_taken(&t.repo, 3, "k-1").await);
}
