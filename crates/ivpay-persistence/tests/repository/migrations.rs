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

/// A row stored before payments had owners keeps no owner through the upgrade (guessing
/// one could show one client's payments to another), belongs to the default account, is
/// listed for no client, and is given to a client only by the operator's `adopt`.
pub(crate) async fn rows_from_before_tenancy_have_no_owner_until_adopted(t: TestDb) {
    use ivpay_domain::{AccountId, ClientId};
    use ivpay_ports::PaymentFilter;

    migrate_down(&t.db, Some(1))
        .await
        .expect("back to before tenancy");
    let old = id(42);
    t.execute_raw(&format!(
        "INSERT INTO payments (id, version, created_at, updated_at, amount, currency, \
             create_outcome, status, check_attempts) \
             VALUES ('{old}', 1, 100, 100, '5.00', 'USD', 'initiated', 'CREATED', 0)"
    ))
    .await;
    migrate_up(&t.db).await.expect("upgraded");

    let row = t.repo.get(old).await.expect("read").expect("kept");
    assert_eq!(row.owner(), None);
    assert_eq!(row.account(), &AccountId::default());
    assert_eq!(row.money().amount().to_string(), "5.00");
    let shop: ClientId = "shop".parse().expect("client");
    let listed = |owner: ClientId| {
        let filter = PaymentFilter {
            owner: Some(owner),
            ..PaymentFilter::default()
        };
        let repo = t.repo.clone();
        async move { crate::support::listed_ids(&repo, filter).await.len() }
    };
    assert_eq!(listed(shop.clone()).await, 0);

    assert_eq!(t.repo.adopt_unowned(&shop).await.expect("adopted"), 1);
    assert_eq!(
        t.repo.adopt_unowned(&shop).await.expect("again"),
        0,
        "only unowned rows"
    );
    let row = t.repo.get(old).await.expect("read").expect("kept");
    assert!(row.is_owned_by(&shop));
    assert_eq!(listed(shop).await, 1);
}

/// A host that runs ivpay's storage on its own sea-orm connection, and ivpay's migrations
/// through sea-orm's own `MigratorTrait` (as it would beside its own migrations).
pub(crate) async fn a_hosts_connection_and_migrator_carry_ivpay_storage(t: TestDb) {
    use ivpay_persistence::{Database, Migrator, SeaOrmRepository};
    use sea_orm_migration::MigratorTrait;

    migrate_down(&t.db, None).await.expect("an empty database");
    let host = sea_orm::Database::connect(t.url.as_str())
        .await
        .expect("the host's own connection");
    Migrator::up(&host, None)
        .await
        .expect("ours, run by sea-orm");
    let db = Database::from_connection(host);
    assert_eq!(
        applied_migrations(&db).await.expect("read").len(),
        Migrator::migrations().len()
    );
    let repo = SeaOrmRepository::new(&db);
    let payment = intent(7, "3.50", 10);
    assert_eq!(
        repo.insert_intent(&payment, None).await.expect("stored"),
        IntentInsert::Inserted
    );
    assert_eq!(repo.get(id(7)).await.expect("read"), Some(payment));
}
