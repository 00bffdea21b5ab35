//! Where statements run: the writer (and the write transactions begun there) and the
//! readers.
//!
//! On a SQLite file the connections are held for the process's life ([`held::HeldSqlite`]):
//! one for every write, a few for reads. Taking a connection from sqlx's pool for each
//! statement costs, besides the statement, a task spawned to hand it back and a ping
//! round trip to the connection's worker thread (sqlx pings every connection returned to
//! its pool), and the single writer sits idle through both before the next writer may
//! have it. Held, the next write is sent to the connection as soon as the last one
//! answers. PostgreSQL, an in-memory SQLite database and a host's own pool keep sea-orm's
//! pool as it is ([`Handle::Pool`]).
//!
//! Both kinds implement sea-orm's [`ConnectionTrait`], so the repositories build their
//! statements with sea-orm as before and run them on a [`Handle`] or a [`WriteTxn`].

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, ExecResult,
    QueryResult, Statement, TransactionTrait,
};

/// The statements a test counts (`testing` feature), told the SQL of each one run.
pub(crate) type StatementObserver = std::sync::Arc<dyn Fn(&str) + Send + Sync>;

/// Where statements run: sea-orm's pool, or (on a SQLite file) held connections.
#[derive(Clone)]
pub(crate) enum Handle {
    /// PostgreSQL, an in-memory SQLite database (one connection for writer and readers),
    /// or a host's pool.
    Pool(DatabaseConnection),
    /// A SQLite file: the one writer connection, or the readers', held.
    #[cfg(feature = "sqlite")]
    Held(held::HeldSqlite),
}

impl Handle {
    /// The sea-orm pool underneath, for a test that wants transactions of its own on it.
    #[cfg(test)]
    pub(crate) fn pool(&self) -> &DatabaseConnection {
        match self {
            Handle::Pool(conn) => conn,
            #[cfg(feature = "sqlite")]
            Handle::Held(held) => held.pool(),
        }
    }

    /// Mutable access to the pool, to set its metric callback (`testing`).
    #[cfg(feature = "testing")]
    pub(crate) fn set_observer(&mut self, observe: StatementObserver) {
        match self {
            Handle::Pool(conn) => {
                conn.set_metric_callback(move |info| observe(&info.statement.sql));
            }
            #[cfg(feature = "sqlite")]
            Handle::Held(held) => {
                let report = observe.clone();
                held.pool_mut()
                    .set_metric_callback(move |info| report(&info.statement.sql));
                held.observe(observe);
            }
        }
    }

    /// Begins a transaction that writes: on SQLite `BEGIN IMMEDIATE`, which takes the
    /// single write lock at once (waiting up to the busy timeout), so the transaction can
    /// never fail later upgrading a read snapshot to a write (crates.md trap 1).
    pub(crate) async fn begin(&self) -> Result<WriteTxn, DbErr> {
        match self {
            Handle::Pool(conn) => begin_on_pool(conn).await.map(WriteTxn::Pool),
            #[cfg(feature = "sqlite")]
            Handle::Held(held) => held.begin().await.map(WriteTxn::Held),
        }
    }

    /// The writer's pool, with the held connection (if any) given back to it for as long
    /// as the answer lives, and no other write running meanwhile: for the migrator, which
    /// wants a sea-orm transaction of its own.
    pub(crate) async fn lend(&self) -> Result<Lent<'_>, DbErr> {
        match self {
            Handle::Pool(conn) => Ok(Lent {
                pool: conn,
                #[cfg(feature = "sqlite")]
                _held: Vec::new(),
            }),
            #[cfg(feature = "sqlite")]
            Handle::Held(held) => Ok(Lent {
                pool: held.pool(),
                _held: held.give_back().await,
            }),
        }
    }

    /// Checks that the writer answers.
    pub(crate) async fn ping(&self) -> Result<(), DbErr> {
        match self {
            Handle::Pool(conn) => conn.ping().await,
            #[cfg(feature = "sqlite")]
            Handle::Held(held) => held.ping().await,
        }
    }

    /// Gives the held connection back and closes the pool.
    pub(crate) async fn close(&self) -> Result<(), DbErr> {
        match self {
            Handle::Pool(conn) => conn.close_by_ref().await,
            #[cfg(feature = "sqlite")]
            Handle::Held(held) => {
                drop(held.give_back().await);
                held.pool().close_by_ref().await
            }
        }
    }
}

/// The writer's pool, lent ([`Handle::lend`]).
pub(crate) struct Lent<'a> {
    pool: &'a DatabaseConnection,
    #[cfg(feature = "sqlite")]
    _held: Vec<held::Slot>,
}

impl Lent<'_> {
    /// The pool, to begin a sea-orm transaction on.
    pub(crate) fn pool(&self) -> &DatabaseConnection {
        self.pool
    }
}

/// Begins a write transaction on a sea-orm pool (see [`Handle::begin`]).
pub(crate) async fn begin_on_pool(conn: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    use sea_orm::{SqliteTransactionMode, TransactionOptions};
    if conn.get_database_backend() == DbBackend::Sqlite {
        conn.begin_with_options(TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..TransactionOptions::default()
        })
        .await
    } else {
        conn.begin().await
    }
}

/// A write transaction ([`Handle::begin`]). Dropped without [`WriteTxn::commit`], it is
/// rolled back.
pub(crate) enum WriteTxn {
    /// sea-orm's.
    Pool(DatabaseTransaction),
    /// On the held SQLite connection.
    #[cfg(feature = "sqlite")]
    Held(held::HeldTxn),
}

impl WriteTxn {
    /// Commits it.
    pub(crate) async fn commit(self) -> Result<(), DbErr> {
        match self {
            WriteTxn::Pool(txn) => txn.commit().await,
            #[cfg(feature = "sqlite")]
            WriteTxn::Held(txn) => txn.commit().await,
        }
    }

    /// Rolls it back.
    pub(crate) async fn rollback(self) -> Result<(), DbErr> {
        match self {
            WriteTxn::Pool(txn) => txn.rollback().await,
            #[cfg(feature = "sqlite")]
            WriteTxn::Held(txn) => txn.rollback().await,
        }
    }
}

/// Delegates each method of [`ConnectionTrait`] to the variant's own.
macro_rules! delegate_connection {
    ($ty:ident, $($variant:ident),+) => {
        #[async_trait::async_trait]
        impl ConnectionTrait for $ty {
            fn get_database_backend(&self) -> DbBackend {
                match self { $(Self::$variant(c) => c.get_database_backend(),)+ }
            }
            async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
                match self { $(Self::$variant(c) => c.execute_raw(stmt).await,)+ }
            }
            async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
                match self { $(Self::$variant(c) => c.execute_unprepared(sql).await,)+ }
            }
            async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
                match self { $(Self::$variant(c) => c.query_one_raw(stmt).await,)+ }
            }
            async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
                match self { $(Self::$variant(c) => c.query_all_raw(stmt).await,)+ }
            }
        }
    };
}

#[cfg(feature = "sqlite")]
delegate_connection!(Handle, Pool, Held);
#[cfg(feature = "sqlite")]
delegate_connection!(WriteTxn, Pool, Held);
#[cfg(not(feature = "sqlite"))]
delegate_connection!(Handle, Pool);
#[cfg(not(feature = "sqlite"))]
delegate_connection!(WriteTxn, Pool);

#[cfg(feature = "sqlite")]
pub(crate) mod held {
    //! The held SQLite writer connection.

    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use sea_orm::sqlx::pool::PoolConnection;
    use sea_orm::sqlx::{self, Connection as _, Sqlite};
    use sea_orm::{
        ConnectionTrait, DatabaseConnection, DbBackend, DbErr, ExecResult, QueryResult,
        RuntimeErr, Statement,
    };
    use sea_query_sqlx::SqlxValues;
    use tokio::sync::{Mutex, OwnedMutexGuard};

    use super::StatementObserver;

    /// The place of the held connection: empty until first used, and again after it was
    /// given back to the pool or closed for being in doubt.
    pub(crate) type Slot = OwnedMutexGuard<Option<PoolConnection<Sqlite>>>;

    /// SQLite connections taken from a pool on first use and kept: one for the writer,
    /// whose writers queue for it on a mutex (first come, first served), or several for
    /// the readers, each read taking a free one (or queueing for one in turn).
    #[derive(Clone)]
    pub(crate) struct HeldSqlite {
        pool: DatabaseConnection,
        slots: Arc<[Arc<Mutex<Option<PoolConnection<Sqlite>>>>]>,
        next: Arc<AtomicUsize>,
        observer: Option<StatementObserver>,
    }

    impl HeldSqlite {
        /// Holds up to `count` connections of `pool` (at least one): the pool's size.
        pub(crate) fn new(pool: DatabaseConnection, count: u32) -> Self {
            let slots = (0..count.max(1))
                .map(|_| Arc::new(Mutex::new(None)))
                .collect();
            HeldSqlite {
                pool,
                slots,
                next: Arc::new(AtomicUsize::new(0)),
                observer: None,
            }
        }

        pub(crate) fn pool(&self) -> &DatabaseConnection {
            &self.pool
        }

        #[cfg(feature = "testing")]
        pub(crate) fn pool_mut(&mut self) -> &mut DatabaseConnection {
            &mut self.pool
        }

        #[cfg(feature = "testing")]
        pub(crate) fn observe(&mut self, observe: StatementObserver) {
            self.observer = Some(observe);
        }

        /// The connection, for this caller alone until the answer is dropped.
        async fn hold(&self) -> Result<Slot, DbErr> {
            let count = self.slots.len();
            let mut slot = if count == 1 {
                self.slots[0].clone().lock_owned().await
            } else {
                let start = self.next.fetch_add(1, Ordering::Relaxed);
                let free = (0..count)
                    .find_map(|i| self.slots[(start + i) % count].clone().try_lock_owned().ok());
                match free {
                    Some(slot) => slot,
                    None => self.slots[start % count].clone().lock_owned().await,
                }
            };
            if slot.is_none() {
                let pool = self.pool.get_sqlite_connection_pool();
                *slot = Some(pool.acquire().await.map_err(acquire_error)?);
            }
            Ok(slot)
        }

        /// The slots with their connections given back to the pool: nobody uses a held
        /// connection until the answer is dropped.
        pub(crate) async fn give_back(&self) -> Vec<Slot> {
            let mut all = Vec::with_capacity(self.slots.len());
            for slot in self.slots.iter() {
                let mut slot = slot.clone().lock_owned().await;
                drop(slot.take());
                all.push(slot);
            }
            all
        }

        pub(crate) async fn ping(&self) -> Result<(), DbErr> {
            let mut slot = self.hold().await?;
            let result = connection(&mut slot)?.ping().await;
            settle(&mut slot, result.map_err(conn_error))
        }

        pub(crate) async fn begin(&self) -> Result<HeldTxn, DbErr> {
            let mut slot = self.hold().await?;
            let begun = run_execute(&mut slot, &Statement::from_string(
                DbBackend::Sqlite,
                "BEGIN IMMEDIATE",
            ))
            .await;
            begun?;
            Ok(HeldTxn {
                slot: Mutex::new(Some(slot)),
                observer: self.observer.clone(),
            })
        }

        fn report(&self, stmt: &Statement) {
            if let Some(observe) = &self.observer {
                observe(&stmt.sql);
            }
        }
    }

    #[async_trait::async_trait]
    impl ConnectionTrait for HeldSqlite {
        fn get_database_backend(&self) -> DbBackend {
            DbBackend::Sqlite
        }

        async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
            self.report(&stmt);
            let mut slot = self.hold().await?;
            run_execute(&mut slot, &stmt).await
        }

        async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
            self.execute_raw(Statement::from_string(DbBackend::Sqlite, sql))
                .await
        }

        async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
            self.report(&stmt);
            let mut slot = self.hold().await?;
            run_query_one(&mut slot, &stmt).await
        }

        async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
            self.report(&stmt);
            let mut slot = self.hold().await?;
            run_query_all(&mut slot, &stmt).await
        }
    }

    /// A transaction on the held connection: `BEGIN IMMEDIATE` was run, and the
    /// connection stays this transaction's until it ends.
    pub(crate) struct HeldTxn {
        slot: Mutex<Option<Slot>>,
        observer: Option<StatementObserver>,
    }

    impl HeldTxn {
        pub(crate) async fn commit(self) -> Result<(), DbErr> {
            self.finish("COMMIT").await
        }

        pub(crate) async fn rollback(self) -> Result<(), DbErr> {
            self.finish("ROLLBACK").await
        }

        async fn finish(self, sql: &str) -> Result<(), DbErr> {
            let mut guard = self.slot.lock().await;
            let Some(slot) = guard.as_mut() else {
                return Err(DbErr::Custom("the transaction has ended".to_owned()));
            };
            run_execute(slot, &Statement::from_string(DbBackend::Sqlite, sql)).await?;
            // Ended cleanly: the connection goes back to the writers as it is.
            drop(guard.take());
            Ok(())
        }

        fn report(&self, stmt: &Statement) {
            if let Some(observe) = &self.observer {
                observe(&stmt.sql);
            }
        }

        async fn with_slot<T>(
            &self,
            stmt: &Statement,
            run: impl AsyncFnOnce(&mut Slot, &Statement) -> Result<T, DbErr>,
        ) -> Result<T, DbErr> {
            self.report(stmt);
            let mut guard = self.slot.lock().await;
            let Some(slot) = guard.as_mut() else {
                return Err(DbErr::Custom("the transaction has ended".to_owned()));
            };
            run(slot, stmt).await
        }
    }

    impl Drop for HeldTxn {
        /// Unfinished (an error returned early, the future cancelled, a `COMMIT` that
        /// failed): rolled back by a task that keeps the connection until it is done, so
        /// no other writer runs inside this transaction. Without a runtime to run that, or
        /// if the `ROLLBACK` fails, the connection is closed instead (SQLite rolls back
        /// what a closed connection left open) and the next writer opens a fresh one.
        fn drop(&mut self) {
            let Some(mut slot) = self.slot.get_mut().take() else {
                return;
            };
            if slot.is_none() {
                return;
            }
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    runtime.spawn(async move {
                        let rollback = Statement::from_string(DbBackend::Sqlite, "ROLLBACK");
                        if run_execute(&mut slot, &rollback).await.is_err()
                            && let Some(mut conn) = slot.take()
                        {
                            conn.close_on_drop();
                        }
                    });
                }
                Err(_) => {
                    if let Some(mut conn) = slot.take() {
                        conn.close_on_drop();
                    }
                }
            }
        }
    }

    #[async_trait::async_trait]
    impl ConnectionTrait for HeldTxn {
        fn get_database_backend(&self) -> DbBackend {
            DbBackend::Sqlite
        }

        async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
            self.with_slot(&stmt, async |slot, stmt| run_execute(slot, stmt).await)
                .await
        }

        async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
            self.execute_raw(Statement::from_string(DbBackend::Sqlite, sql))
                .await
        }

        async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
            self.with_slot(&stmt, async |slot, stmt| run_query_one(slot, stmt).await)
                .await
        }

        async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
            self.with_slot(&stmt, async |slot, stmt| run_query_all(slot, stmt).await)
                .await
        }
    }

    fn query(stmt: &Statement) -> sqlx::query::Query<'_, Sqlite, SqlxValues> {
        let values = stmt.values.clone().unwrap_or(sea_orm::Values(Vec::new()));
        sqlx::query_with(sqlx::AssertSqlSafe(stmt.sql.as_str()), SqlxValues(values))
    }

    fn connection(slot: &mut Slot) -> Result<&mut PoolConnection<Sqlite>, DbErr> {
        slot.as_mut()
            .ok_or_else(|| DbErr::Custom("no writer connection".to_owned()))
    }

    /// Keeps the connection after an answer, unless the error says the connection itself
    /// failed (not the statement): then it is closed, and the next writer opens another.
    fn settle<T>(slot: &mut Slot, result: Result<T, DbErr>) -> Result<T, DbErr> {
        if let Err(DbErr::Conn(_) | DbErr::Exec(_) | DbErr::Query(_)) = &result
            && connection_failed(&result)
            && let Some(mut conn) = slot.take()
        {
            conn.close_on_drop();
        }
        result
    }

    fn connection_failed<T>(result: &Result<T, DbErr>) -> bool {
        let (Err(DbErr::Conn(RuntimeErr::SqlxError(e)))
        | Err(DbErr::Exec(RuntimeErr::SqlxError(e)))
        | Err(DbErr::Query(RuntimeErr::SqlxError(e)))) = result
        else {
            return false;
        };
        !matches!(
            **e,
            sqlx::Error::Database(_) | sqlx::Error::RowNotFound | sqlx::Error::ColumnNotFound(_)
        ) && !matches!(**e, sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_))
    }

    async fn run_execute(slot: &mut Slot, stmt: &Statement) -> Result<ExecResult, DbErr> {
        let result = query(stmt)
            .execute(&mut **connection(slot)?)
            .await
            .map(ExecResult::from)
            .map_err(exec_error);
        settle(slot, result)
    }

    async fn run_query_one(slot: &mut Slot, stmt: &Statement) -> Result<Option<QueryResult>, DbErr> {
        let result = query(stmt)
            .fetch_optional(&mut **connection(slot)?)
            .await
            .map(|row| row.map(QueryResult::from))
            .map_err(query_error);
        settle(slot, result)
    }

    async fn run_query_all(slot: &mut Slot, stmt: &Statement) -> Result<Vec<QueryResult>, DbErr> {
        let result = query(stmt)
            .fetch_all(&mut **connection(slot)?)
            .await
            .map(|rows| rows.into_iter().map(QueryResult::from).collect())
            .map_err(query_error);
        settle(slot, result)
    }

    fn exec_error(e: sqlx::Error) -> DbErr {
        DbErr::Exec(RuntimeErr::SqlxError(Arc::new(e)))
    }

    fn query_error(e: sqlx::Error) -> DbErr {
        DbErr::Query(RuntimeErr::SqlxError(Arc::new(e)))
    }

    fn conn_error(e: sqlx::Error) -> DbErr {
        DbErr::Conn(RuntimeErr::SqlxError(Arc::new(e)))
    }

    fn acquire_error(e: sqlx::Error) -> DbErr {
        match e {
            sqlx::Error::PoolTimedOut => {
                DbErr::ConnectionAcquire(sea_orm::ConnAcquireErr::Timeout)
            }
            sqlx::Error::PoolClosed => {
                DbErr::ConnectionAcquire(sea_orm::ConnAcquireErr::ConnectionClosed)
            }
            other => conn_error(other),
        }
    }
}

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    use std::time::Duration;

    use sea_orm::{ConnectionTrait, DbBackend, Statement};

    use crate::{Database, DatabaseOptions, connect};

    async fn file_db(dir: &tempfile::TempDir) -> Database {
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("w.db").display());
        let db = connect(&url, &DatabaseOptions::default())
            .await
            .expect("opens");
        db.connection()
            .execute_unprepared("CREATE TABLE t (k TEXT PRIMARY KEY)")
            .await
            .expect("creates");
        db
    }

    fn insert(k: &str) -> Statement {
        Statement::from_sql_and_values(
            DbBackend::Sqlite,
            "INSERT INTO t (k) VALUES (?)",
            [k.into()],
        )
    }

    async fn keys(db: &Database) -> Vec<String> {
        db.reader()
            .query_all_raw(Statement::from_string(
                DbBackend::Sqlite,
                "SELECT k FROM t ORDER BY k",
            ))
            .await
            .expect("reads")
            .iter()
            .map(|row| row.try_get_by_index::<String>(0).expect("text"))
            .collect()
    }

    fn is_held(db: &Database) -> bool {
        matches!(db.connection(), super::Handle::Held(_))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_sqlite_file_holds_its_writer_and_a_failed_statement_keeps_it_usable() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let db = file_db(&dir).await;
        assert!(is_held(&db), "a SQLite file writes on a held connection");
        let w = db.connection();
        assert_eq!(w.execute_raw(insert("a")).await.expect("inserts").rows_affected(), 1);
        let duplicate = w.execute_raw(insert("a")).await.expect_err("a duplicate");
        assert!(
            duplicate.to_string().contains("UNIQUE"),
            "the statement's error, as sea-orm reports it: {duplicate}"
        );
        w.execute_raw(insert("b")).await.expect("the writer still writes");
        assert_eq!(keys(&db).await, ["a", "b"]);
        db.close().await.expect("closes");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_transaction_commits_rolls_back_and_is_rolled_back_when_dropped() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let db = file_db(&dir).await;

        let txn = db.begin_write().await.expect("begins");
        txn.execute_raw(insert("kept")).await.expect("inserts");
        txn.commit().await.expect("commits");

        let txn = db.begin_write().await.expect("begins");
        txn.execute_raw(insert("undone")).await.expect("inserts");
        txn.rollback().await.expect("rolls back");

        // Dropped unfinished (an early return, or a cancelled request): undone, and the
        // next writer does not find itself inside that transaction.
        let txn = db.begin_write().await.expect("begins");
        txn.execute_raw(insert("dropped")).await.expect("inserts");
        drop(txn);
        let txn = tokio::time::timeout(Duration::from_secs(5), db.begin_write())
            .await
            .expect("the writer is free again")
            .expect("begins");
        txn.execute_raw(insert("after")).await.expect("inserts");
        txn.commit().await.expect("commits");

        // A transaction whose future is cancelled part way.
        let cancelled = tokio::time::timeout(Duration::from_millis(50), async {
            let txn = db.begin_write().await.expect("begins");
            txn.execute_raw(insert("cancelled")).await.expect("inserts");
            std::future::pending::<()>().await;
        })
        .await;
        assert!(cancelled.is_err(), "cut off");
        db.connection()
            .execute_raw(insert("last"))
            .await
            .expect("the writer writes, outside any transaction");

        assert_eq!(keys(&db).await, ["after", "kept", "last"]);
        db.close().await.expect("closes");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_migrator_borrows_the_held_writer_and_writes_go_on_after() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let db = file_db(&dir).await;
        db.connection()
            .execute_raw(insert("before"))
            .await
            .expect("holds the writer");
        tokio::time::timeout(Duration::from_secs(10), crate::migrate_up(&db))
            .await
            .expect("the migrator gets the connection")
            .expect("migrates");
        db.connection()
            .execute_raw(insert("after"))
            .await
            .expect("the writer is held again");
        assert_eq!(keys(&db).await, ["after", "before"]);
        db.close().await.expect("closes");
    }

    #[tokio::test]
    async fn in_memory_sqlite_keeps_the_pool() {
        let db = connect("sqlite::memory:", &DatabaseOptions::default())
            .await
            .expect("opens");
        assert!(!is_held(&db), "one connection, shared with the readers");
    }
}
