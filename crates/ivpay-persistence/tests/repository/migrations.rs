//! The schema's migrations, both ways.

use ivpay_persistence::{Backend, applied_migrations, migrate_down, migrate_up};
use ivpay_ports::{IntentInsert, PaymentStore, RepositoryError};

use crate::support::{TestDb, id, intent};

pub(crate) async fn migrations_go_up_down_and_up_again(t: TestDb) {
    let applied = applied_migrations(&t.db).await.expect("read");
    assert!(!applied.is_empty());
    migrate_up(&t.db).await.expect("up again is a no-op");
    assert_eq!(applied_migrations(&t.db).await.expect("read"), applied);
    t.repo
        .insert_intent(&intent(1, "1.00", 1), None)
        .await
        .expect("stored");

    migrate_down(&t.db, None).await.expect("down");
    assert!(applied_migrations(&t.db).await.expect("read").is_empty());
    let err = t.repo.get(id(1)).await.expect_err("no table any more");
    assert!(matches!(err, RepositoryError::Unavailable(_)), "{err:?}");

    migrate_up(&t.db).await.expect("up");
    assert_eq!(applied_migrations(&t.db).await.expect("read"), applied);
    assert_eq!(t.repo.get(id(1)).await.expect("read"), None, "fresh tables");
    assert_eq!(
        t.repo
            .insert_intent(&intent(1, "1.00", 1), None)
            .await
            .expect("stored"),
        IntentInsert::Inserted
    );
}

pub(crate) async fn health_reports_the_backend_and_its_settings(t: TestDb) {
    t.db.ping().await.expect("answers");
    let settings = t.db.sqlite_settings().await.expect("read");
    match t.db.backend() {
        Backend::Sqlite => {
            let s = settings.expect("sqlite settings");
            assert_eq!(s.journal_mode, "wal");
            assert_eq!(s.synchronous, "NORMAL");
            assert!(s.busy_timeout >= std::time::Duration::from_secs(5));
            assert!(s.foreign_keys);
            assert!(t.url.starts_with("sqlite:"));
        }
        Backend::Postgres => {
            assert_eq!(settings, None);
            assert!(t.url.starts_with("postgres"));
        }
    }
}

pub(crate) async fn instances_migrating_at_once_all_succeed(t: TestDb) {
    let every_migration = applied_migrations(&t.db).await.expect("read");
    assert!(every_migration.len() >= 2, "{every_migration:?}");
    migrate_down(&t.db, None).await.expect("down");
    // Separate pools, as separate instances would have.
    let mut tasks = Vec::new();
    for _ in 0..3 {
        let url = t.url.clone();
        tasks.push(tokio::spawn(async move {
            let db = ivpay_persistence::connect(&url, &Default::default())
                .await
                .expect("opens");
            let result = migrate_up(&db).await;
            db.close().await.expect("closes");
            result
        }));
    }
    for task in tasks {
        task.await
            .expect("finished")
            .expect("every instance migrates");
    }
    assert_eq!(
        applied_migrations(&t.db).await.expect("read"),
        every_migration
    );
}
