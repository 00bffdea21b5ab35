//! Where statements run: the writer (and the write transactions begun there) and the
//! readers.
//!
//! The connections are held for the process's life ([`held::Held`]): on a SQLite file one
//! for every write and a few for reads; on PostgreSQL the pool's, shared by both. Taking a
//! connection from sqlx's pool for each statement costs, besides the statement, a task
//! spawned to hand it back and a ping round trip (to the SQLite connection's worker
//! thread, or to the PostgreSQL server: sqlx pings every connection returned to its
//! pool), and the single SQLite writer sits idle through both before the next writer may
//! have it. Held, the next statement is sent to the connection as soon as the last one
//! answers. An in-memory SQLite database and a host's own pool keep sea-orm's pool as it
//! is ([`Handle::Pool`]).
//!
//! Both kinds implement sea-orm's [`ConnectionTrait`], so the repositories build their
//! statements with sea-orm as before and run them on a [`Handle`] or a [`WriteTxn`].

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, ExecResult,
    QueryResult, Statement, TransactionTrait,
};

/// The statements a test counts (`testing` feature), told the SQL of each one run.
pub(crate) type StatementObserver = std::sync::Arc<dyn Fn(&str) + Send + Sync>;

/// Where statements run: sea-orm's pool, or held connections.
#[derive(Clone)]
pub(crate) enum Handle {
    /// An in-memory SQLite database (one connection for writer and readers), or a host's
    /// pool.
    Pool(DatabaseConnection),
    /// Connections held: on a SQLite file the one writer connection, or the readers'; on
    /// PostgreSQL the pool's, shared by writes and reads.
    Held(held::Held),
}

impl Handle {
    /// The sea-orm pool underneath, for a test that wants transactions of its own on it
    /// (SQLite's settings test).
    #[cfg(all(test, feature = "sqlite"))]
    pub(crate) fn pool(&self) -> &DatabaseConnection {
        match self {
            Handle::Pool(conn) => conn,
            Handle::Held(held) => held.pool(),
        }
    }

    /// Reports each statement run from now on to `observe` (`testing`): through the pool's
    /// metric callback, and for held connections by the statements they run.
    #[cfg(feature = "testing")]
    pub(crate) fn set_observer(&mut self, observe: StatementObserver) {
        match self {
            Handle::Pool(conn) => {
                conn.set_metric_callback(move |info| observe(&info.statement.sql));
            }
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
            Handle::Held(held) => held.begin().await.map(WriteTxn::Held),
        }
    }

    /// Runs `statements` as one transaction sent to SQLite in one piece (`BEGIN IMMEDIATE;
    /// ...; COMMIT`: one round trip to the connection instead of one per statement), and
    /// answers the rows they returned, in order (their `RETURNING` rows: SQLite's count of
    /// changes is not reset by `BEGIN` and `COMMIT`, so the driver's sum of it over a
    /// piece means nothing). A failing statement rolls back the whole.
    /// `None` where that is not available (not a held SQLite connection): run them in a
    /// [`WriteTxn`] instead.
    pub(crate) async fn query_in_one_piece(
        &self,
        statements: Vec<Statement>,
    ) -> Option<Result<Vec<QueryResult>, DbErr>> {
        match self {
            Handle::Held(held) if held.get_database_backend() == DbBackend::Sqlite => {
                Some(held.query_in_one_piece(statements).await)
            }
            _ => None,
        }
    }

    /// As [`Handle::query_in_one_piece`], answering how many rows were returned in all.
    pub(crate) async fn execute_in_one_piece(
        &self,
        statements: Vec<Statement>,
    ) -> Option<Result<u64, DbErr>> {
        let rows = self.query_in_one_piece(statements).await?;
        Some(rows.map(|rows| rows.len() as u64))
    }

    /// The writer's pool, with the held connection (if any) given back to it for as long
    /// as the answer lives, and no other write running meanwhile: for the migrator, which
    /// wants a sea-orm transaction of its own.
    pub(crate) async fn lend(&self) -> Result<Lent<'_>, DbErr> {
        match self {
            Handle::Pool(conn) => Ok(Lent {
                pool: conn,
                _held: Vec::new(),
            }),
            Handle::Held(held) => Ok(Lent {
                pool: held.pool(),
                _held: held.give_back().await,
            }),
        }
    }

    /// Checks that a connection answers.
    pub(crate) async fn ping(&self) -> Result<(), DbErr> {
        match self {
            Handle::Pool(conn) => conn.ping().await,
            Handle::Held(held) => held.ping().await,
        }
    }

    /// Gives the held connections back and closes the pool.
    pub(crate) async fn close(&self) -> Result<(), DbErr> {
        match self {
            Handle::Pool(conn) => conn.close_by_ref().await,
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
    /// On a held connection.
    Held(held::HeldTxn),
}

impl WriteTxn {
    /// Commits it.
    pub(crate) async fn commit(self) -> Result<(), DbErr> {
        match self {
            WriteTxn::Pool(txn) => txn.commit().await,
            WriteTxn::Held(txn) => txn.commit().await,
        }
    }

    /// Rolls it back.
    pub(crate) async fn rollback(self) -> Result<(), DbErr> {
        match self {
            WriteTxn::Pool(txn) => txn.rollback().await,
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

delegate_connection!(Handle, Pool, Held);
delegate_connection!(WriteTxn, Pool, Held);

pub(crate) mod held {
    //! Held connections, of either driver.

    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    use sea_orm::sqlx::pool::PoolConnection;
    use sea_orm::sqlx::{self, Connection as _};
    use sea_orm::{
        ConnectionTrait, DatabaseConnection, DbBackend, DbErr, ExecResult, QueryResult, RuntimeErr,
        Statement,
    };
    use sea_query_sqlx::SqlxValues;
    use tokio::sync::{Mutex, OwnedMutexGuard, OwnedSemaphorePermit, Semaphore};

    use super::StatementObserver;

    #[cfg(feature = "sqlite")]
    mod group;

    /// A connection taken from the pool, of its driver.
    pub(crate) enum Conn {
        #[cfg(feature = "sqlite")]
        Sqlite(PoolConnection<sqlx::Sqlite>),
        #[cfg(feature = "postgres")]
        Postgres(PoolConnection<sqlx::Postgres>),
    }

    /// A held connection and when it was last handed out.
    pub(crate) struct Kept {
        conn: Conn,
        used: Instant,
    }

    /// The place of a held connection: empty until first used, and again after it was
    /// given back to the pool or closed for being in doubt.
    pub(crate) struct Slot {
        // Declared first, so dropped first: the place is free before the turn is given
        // back, and whoever gets the turn finds it free.
        place: OwnedMutexGuard<Option<Kept>>,
        _turn: Option<OwnedSemaphorePermit>,
    }

    impl std::ops::Deref for Slot {
        type Target = Option<Kept>;
        fn deref(&self) -> &Option<Kept> {
            &self.place
        }
    }

    impl std::ops::DerefMut for Slot {
        fn deref_mut(&mut self) -> &mut Option<Kept> {
            &mut self.place
        }
    }

    /// A PostgreSQL connection idle this long is pinged before use: the server or the
    /// network may have cut it meanwhile (what the pool does for connections it lends).
    const CHECK_IF_IDLE_FOR: Duration = Duration::from_secs(30);

    /// Connections taken from a pool on first use and kept: one for the SQLite writer,
    /// whose writers queue for it on a mutex (first come, first served), or several (the
    /// SQLite readers, PostgreSQL's pool), each caller taking a free one or queueing for
    /// one in turn.
    #[derive(Clone)]
    pub(crate) struct Held {
        pool: DatabaseConnection,
        backend: DbBackend,
        slots: Arc<[Arc<Mutex<Option<Kept>>>]>,
        /// One turn per slot: a caller waits for a turn (in order of arrival), and with one
        /// in hand finds a slot free, whichever was given back first.
        turns: Arc<Semaphore>,
        next: Arc<AtomicUsize>,
        observer: Option<StatementObserver>,
        /// The SQLite writer's queue ([`group`]): every statement run outside a
        /// transaction goes through it.
        #[cfg(feature = "sqlite")]
        group: Option<group::Group>,
    }

    impl Held {
        /// Holds up to `count` connections of `pool` (at least one): the pool's size.
        pub(crate) fn new(pool: DatabaseConnection, count: u32) -> Self {
            let slots: Arc<[_]> = (0..count.max(1))
                .map(|_| Arc::new(Mutex::new(None)))
                .collect();
            Held {
                turns: Arc::new(Semaphore::new(slots.len())),
                backend: pool.get_database_backend(),
                pool,
                slots,
                next: Arc::new(AtomicUsize::new(0)),
                observer: None,
                #[cfg(feature = "sqlite")]
                group: None,
            }
        }

        /// The SQLite writer: one connection, its writes committed in groups ([`group`]).
        #[cfg(feature = "sqlite")]
        pub(crate) fn writer(pool: DatabaseConnection) -> Self {
            let mut held = Held::new(pool, 1);
            held.group = group::Group::start(held.clone());
            held
        }

        pub(crate) fn pool(&self) -> &DatabaseConnection {
            &self.pool
        }

        /// How many pieces of several writes the writer's group has run (tests).
        #[cfg(all(test, feature = "sqlite"))]
        pub(crate) fn grouped(&self) -> usize {
            self.group
                .as_ref()
                .map_or(0, |g| g.grouped.load(std::sync::atomic::Ordering::Relaxed))
        }

        #[cfg(feature = "testing")]
        pub(crate) fn pool_mut(&mut self) -> &mut DatabaseConnection {
            &mut self.pool
        }

        #[cfg(feature = "testing")]
        pub(crate) fn observe(&mut self, observe: StatementObserver) {
            self.observer = Some(observe);
        }

        /// A connection, for this caller alone until the answer is dropped.
        async fn hold(&self) -> Result<Slot, DbErr> {
            // The semaphore is never closed.
            let turn = self.turns.clone().acquire_owned().await.ok();
            let count = self.slots.len();
            let start = self.next.fetch_add(1, Ordering::Relaxed);
            let free = (0..count).find_map(|i| {
                self.slots[(start + i) % count]
                    .clone()
                    .try_lock_owned()
                    .ok()
            });
            // With a turn, a slot is free, unless the migrator is taking them all back.
            let place = match free {
                Some(place) => place,
                None => self.slots[start % count].clone().lock_owned().await,
            };
            let mut slot = Slot { place, _turn: turn };
            let now = Instant::now();
            if let Some(kept) = slot.as_mut() {
                let idle = now.saturating_duration_since(kept.used);
                if self.backend == DbBackend::Postgres
                    && idle >= CHECK_IF_IDLE_FOR
                    && kept.conn.ping().await.is_err()
                {
                    close(&mut slot);
                }
            }
            match slot.as_mut() {
                Some(kept) => kept.used = now,
                None => {
                    *slot = Some(Kept {
                        conn: Conn::acquire(&self.pool).await?,
                        used: now,
                    });
                }
            }
            Ok(slot)
        }

        /// The slots with their connections given back to the pool: nobody uses a held
        /// connection until the answer is dropped.
        pub(crate) async fn give_back(&self) -> Vec<Slot> {
            let mut all = Vec::with_capacity(self.slots.len());
            for place in self.slots.iter() {
                let turn = self.turns.clone().acquire_owned().await.ok();
                let mut slot = Slot {
                    place: place.clone().lock_owned().await,
                    _turn: turn,
                };
                drop(slot.take());
                all.push(slot);
            }
            all
        }

        pub(crate) async fn ping(&self) -> Result<(), DbErr> {
            let mut slot = self.hold().await?;
            let result = match slot.as_mut() {
                Some(kept) => kept.conn.ping().await,
                None => Err(gone()),
            };
            settle(&mut slot, result)
        }

        /// See [`super::Handle::query_in_one_piece`]; SQLite only (its driver runs a
        /// text of several statements, binding the values in order).
        pub(crate) async fn query_in_one_piece(
            &self,
            statements: Vec<Statement>,
        ) -> Result<Vec<QueryResult>, DbErr> {
            report(self.observer.as_ref(), "BEGIN");
            for stmt in &statements {
                self.report(stmt);
            }
            #[cfg(feature = "sqlite")]
            if let Some(group) = &self.group {
                let done = group.run(statements).await?;
                return Ok(done.into_iter().flat_map(|d| d.rows).collect());
            }
            let whole = piece(&statements);
            // Until the piece has answered, a transaction may be open on the connection:
            // if this future is dropped or a statement fails, the guard rolls it back
            // before anyone else writes.
            let mut txn = HeldTxn {
                slot: Mutex::new(Some(self.hold().await?)),
                backend: DbBackend::Sqlite,
                observer: None,
            };
            let result = match txn.slot.get_mut().as_mut() {
                Some(slot) => run_query_all(slot, &whole).await,
                None => Err(ended()),
            };
            let returned = result?;
            // Committed: the connection goes back as it is.
            drop(txn.slot.get_mut().take());
            Ok(returned)
        }

        /// Begins a write transaction: `BEGIN IMMEDIATE` on SQLite (see
        /// [`super::Handle::begin`]), `BEGIN` on PostgreSQL.
        pub(crate) async fn begin(&self) -> Result<HeldTxn, DbErr> {
            let mut slot = self.hold().await?;
            let begin = match self.backend {
                DbBackend::Sqlite => "BEGIN IMMEDIATE",
                _ => "BEGIN",
            };
            run_execute(&mut slot, &Statement::from_string(self.backend, begin)).await?;
            Ok(HeldTxn {
                slot: Mutex::new(Some(slot)),
                backend: self.backend,
                observer: self.observer.clone(),
            })
        }

        fn report(&self, stmt: &Statement) {
            report(self.observer.as_ref(), &stmt.sql);
        }
    }

    #[async_trait::async_trait]
    impl ConnectionTrait for Held {
        fn get_database_backend(&self) -> DbBackend {
            self.backend
        }

        async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
            self.report(&stmt);
            // The SQLite writer's statements go through its group.
            #[cfg(feature = "sqlite")]
            if let Some(group) = &self.group {
                return group.run_one(stmt).await.map(|d| d.result);
            }
            let mut slot = self.hold().await?;
            run_execute(&mut slot, &stmt).await
        }

        async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
            self.execute_raw(Statement::from_string(self.backend, sql))
                .await
        }

        async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
            self.report(&stmt);
            // The SQLite writer's statements go through its group.
            #[cfg(feature = "sqlite")]
            if let Some(group) = &self.group {
                return group.run_one(stmt).await.map(|d| d.rows.into_iter().next());
            }
            let mut slot = self.hold().await?;
            run_query_one(&mut slot, &stmt).await
        }

        async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
            self.report(&stmt);
            // The SQLite writer's statements go through its group.
            #[cfg(feature = "sqlite")]
            if let Some(group) = &self.group {
                return group.run_one(stmt).await.map(|d| d.rows);
            }
            let mut slot = self.hold().await?;
            run_query_all(&mut slot, &stmt).await
        }
    }

    /// A transaction on a held connection: `BEGIN` was run, and the connection stays this
    /// transaction's until it ends.
    pub(crate) struct HeldTxn {
        slot: Mutex<Option<Slot>>,
        backend: DbBackend,
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
                return Err(ended());
            };
            run_execute(slot, &Statement::from_string(self.backend, sql)).await?;
            // Ended cleanly: the connection goes back to the others as it is.
            drop(guard.take());
            Ok(())
        }

        async fn with_slot<T>(
            &self,
            stmt: &Statement,
            run: impl AsyncFnOnce(&mut Slot, &Statement) -> Result<T, DbErr>,
        ) -> Result<T, DbErr> {
            report(self.observer.as_ref(), &stmt.sql);
            let mut guard = self.slot.lock().await;
            let Some(slot) = guard.as_mut() else {
                return Err(ended());
            };
            run(slot, stmt).await
        }
    }

    impl Drop for HeldTxn {
        /// Unfinished (an error returned early, the future cancelled, a `COMMIT` that
        /// failed): rolled back by a task that keeps the connection until it is done, so
        /// no other caller runs inside this transaction. Without a runtime to run that, or
        /// if the `ROLLBACK` fails, the connection is closed instead (the database rolls
        /// back what a closed connection left open) and the next caller opens a fresh one.
        fn drop(&mut self) {
            let Some(mut slot) = self.slot.get_mut().take() else {
                return;
            };
            if slot.is_none() {
                return;
            }
            let backend = self.backend;
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    runtime.spawn(async move {
                        let rollback = Statement::from_string(backend, "ROLLBACK");
                        if run_execute(&mut slot, &rollback).await.is_err() {
                            close(&mut slot);
                        }
                    });
                }
                Err(_) => close(&mut slot),
            }
        }
    }

    #[async_trait::async_trait]
    impl ConnectionTrait for HeldTxn {
        fn get_database_backend(&self) -> DbBackend {
            self.backend
        }

        async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
            self.with_slot(&stmt, async |slot, stmt| run_execute(slot, stmt).await)
                .await
        }

        async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
            self.execute_raw(Statement::from_string(self.backend, sql))
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

    /// The statement's SQL and its values, bound for sqlx the way sea-orm binds them.
    fn bound(stmt: &Statement) -> (sqlx::AssertSqlSafe<&str>, SqlxValues) {
        let values = stmt.values.clone().unwrap_or(sea_orm::Values(Vec::new()));
        (sqlx::AssertSqlSafe(stmt.sql.as_str()), SqlxValues(values))
    }

    /// Runs `$body` with `$c` bound to the connection, whichever its driver: the sqlx calls
    /// are the same, their types differ.
    macro_rules! on_driver {
        ($conn:expr, $c:ident => $body:expr) => {
            match $conn {
                #[cfg(feature = "sqlite")]
                Conn::Sqlite($c) => $body,
                #[cfg(feature = "postgres")]
                Conn::Postgres($c) => $body,
            }
        };
    }

    impl Conn {
        async fn acquire(pool: &DatabaseConnection) -> Result<Conn, DbErr> {
            match pool.get_database_backend() {
                #[cfg(feature = "sqlite")]
                DbBackend::Sqlite => pool
                    .get_sqlite_connection_pool()
                    .acquire()
                    .await
                    .map(Conn::Sqlite)
                    .map_err(acquire_error),
                #[cfg(feature = "postgres")]
                DbBackend::Postgres => pool
                    .get_postgres_connection_pool()
                    .acquire()
                    .await
                    .map(Conn::Postgres)
                    .map_err(acquire_error),
                other => Err(DbErr::Custom(format!("no driver for {other:?}"))),
            }
        }

        async fn ping(&mut self) -> Result<(), DbErr> {
            on_driver!(self, c => c.ping().await.map_err(conn_error))
        }

        fn close_on_drop(&mut self) {
            on_driver!(self, c => c.close_on_drop());
        }

        async fn execute(&mut self, stmt: &Statement) -> Result<ExecResult, sqlx::Error> {
            let (sql, values) = bound(stmt);
            on_driver!(self, c => sqlx::query_with(sql, values)
                .execute(&mut **c)
                .await
                .map(ExecResult::from))
        }

        async fn fetch_optional(
            &mut self,
            stmt: &Statement,
        ) -> Result<Option<QueryResult>, sqlx::Error> {
            let (sql, values) = bound(stmt);
            on_driver!(self, c => sqlx::query_with(sql, values)
                .fetch_optional(&mut **c)
                .await
                .map(|row| row.map(QueryResult::from)))
        }

        async fn fetch_all(&mut self, stmt: &Statement) -> Result<Vec<QueryResult>, sqlx::Error> {
            let (sql, values) = bound(stmt);
            on_driver!(self, c => sqlx::query_with(sql, values)
                .fetch_all(&mut **c)
                .await
                .map(|rows| rows.into_iter().map(QueryResult::from).collect()))
        }
    }

    /// `statements` as one SQLite text, `BEGIN IMMEDIATE; ..; COMMIT`, their values bound
    /// in order (sqlx's SQLite driver runs such a text statement by statement).
    fn piece<'a>(statements: impl IntoIterator<Item = &'a Statement>) -> Statement {
        let mut sql = String::from("BEGIN IMMEDIATE;\n");
        let mut values = Vec::new();
        for stmt in statements {
            sql.push_str(&stmt.sql);
            sql.push_str(";\n");
            if let Some(v) = &stmt.values {
                values.extend(v.0.iter().cloned());
            }
        }
        sql.push_str("COMMIT");
        Statement::from_sql_and_values(DbBackend::Sqlite, sql, values)
    }

    /// Tells the test's observer (if any) of a statement.
    fn report(observer: Option<&StatementObserver>, sql: &str) {
        if let Some(observe) = observer {
            observe(sql);
        }
    }

    /// Closes the held connection (if any): the next caller opens another.
    fn close(slot: &mut Slot) {
        if let Some(mut kept) = slot.take() {
            kept.conn.close_on_drop();
        }
    }

    /// Keeps the connection after an answer, unless the error says the connection itself
    /// failed (not the statement): then it is closed, and the next caller opens another.
    fn settle<T>(slot: &mut Slot, result: Result<T, DbErr>) -> Result<T, DbErr> {
        if connection_failed(&result) {
            close(slot);
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
            sqlx::Error::Database(_)
                | sqlx::Error::RowNotFound
                | sqlx::Error::ColumnNotFound(_)
                | sqlx::Error::ColumnDecode { .. }
                | sqlx::Error::Decode(_)
        )
    }

    async fn run_execute(slot: &mut Slot, stmt: &Statement) -> Result<ExecResult, DbErr> {
        let result = match slot.as_mut() {
            Some(kept) => kept.conn.execute(stmt).await.map_err(exec_error),
            None => Err(gone()),
        };
        settle(slot, result)
    }

    async fn run_query_one(
        slot: &mut Slot,
        stmt: &Statement,
    ) -> Result<Option<QueryResult>, DbErr> {
        let result = match slot.as_mut() {
            Some(kept) => kept.conn.fetch_optional(stmt).await.map_err(query_error),
            None => Err(gone()),
        };
        settle(slot, result)
    }

    async fn run_query_all(slot: &mut Slot, stmt: &Statement) -> Result<Vec<QueryResult>, DbErr> {
        let result = match slot.as_mut() {
            Some(kept) => kept.conn.fetch_all(stmt).await.map_err(query_error),
            None => Err(gone()),
        };
        settle(slot, result)
    }

    /// The connection was closed under a transaction (its statement failed with it).
    fn gone() -> DbErr {
        DbErr::Conn(RuntimeErr::Internal(
            "the connection was closed after an error".to_owned(),
        ))
    }

    fn ended() -> DbErr {
        DbErr::Custom("the transaction has ended".to_owned())
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
            sqlx::Error::PoolTimedOut => DbErr::ConnectionAcquire(sea_orm::ConnAcquireErr::Timeout),
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

    /// The keys in table `t`, in order.
    pub(crate) async fn keys(db: &Database) -> Vec<String> {
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
        assert_eq!(
            w.execute_raw(insert("a"))
                .await
                .expect("inserts")
                .rows_affected(),
            1
        );
        let duplicate = w.execute_raw(insert("a")).await.expect_err("a duplicate");
        assert!(
            duplicate.to_string().contains("UNIQUE"),
            "the statement's error, as sea-orm reports it: {duplicate}"
        );
        w.execute_raw(insert("b"))
            .await
            .expect("the writer still writes");
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
    async fn a_piece_commits_whole_or_not_at_all() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let db = file_db(&dir).await;
        let returning = |k: &str| {
            Statement::from_sql_and_values(
                DbBackend::Sqlite,
                "INSERT INTO t (k) VALUES (?) RETURNING k",
                [k.into()],
            )
        };
        let piece = [returning("a"), returning("b")];
        let returned = db.connection().execute_in_one_piece(piece.to_vec()).await;
        assert_eq!(
            returned.map(|r| r.expect("runs")),
            Some(2),
            "both rows returned"
        );

        // The second statement fails: the first is undone with it.
        let piece = [returning("c"), returning("a")];
        let failed = db.connection().execute_in_one_piece(piece.to_vec()).await;
        assert!(
            matches!(failed, Some(Err(_))),
            "a duplicate fails the piece"
        );
        let after = tokio::time::timeout(
            Duration::from_secs(5),
            db.connection().execute_raw(insert("d")),
        )
        .await
        .expect("the writer is free again");
        after.expect("and outside any transaction");
        assert_eq!(keys(&db).await, ["a", "b", "d"]);
        db.close().await.expect("closes");
    }

    fn grouped(db: &Database) -> usize {
        match db.connection() {
            super::Handle::Held(held) => held.grouped(),
            super::Handle::Pool(_) => 0,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_commit_in_groups_and_a_failing_one_fails_alone() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let db = file_db(&dir).await;
        db.connection()
            .execute_raw(insert("k000"))
            .await
            .expect("inserts");
        let returning = |k: String| {
            Statement::from_sql_and_values(
                DbBackend::Sqlite,
                "INSERT INTO t (k) VALUES (?) RETURNING k",
                [k.into()],
            )
        };
        // 200 writers at once, all queued behind each other; k000 is taken already.
        let writers: Vec<_> = (0..200)
            .map(|i| {
                let db = db.clone();
                let stmt = returning(format!("k{i:03}"));
                tokio::spawn(async move { db.connection().query_all_raw(stmt).await })
            })
            .collect();
        for (i, writer) in writers.into_iter().enumerate() {
            let answer = writer.await.expect("the task ran");
            if i == 0 {
                let e = answer.expect_err("k000 is taken");
                assert!(e.to_string().contains("UNIQUE"), "its own error: {e}");
                continue;
            }
            let rows = answer.unwrap_or_else(|e| panic!("k{i:03} is written: {e}"));
            let returned: Vec<String> = rows
                .iter()
                .map(|r| r.try_get_by_index::<String>(0).expect("text"))
                .collect();
            assert_eq!(
                returned,
                [format!("k{i:03}")],
                "each caller gets its own row"
            );
        }
        assert!(
            grouped(&db) > 0,
            "200 writers at once are committed in fewer pieces than writes"
        );
        let all = keys(&db).await;
        assert_eq!(all.len(), 200, "every write but the duplicate, once");
        assert_eq!(all.first().map(String::as_str), Some("k000"));
        assert_eq!(all.last().map(String::as_str), Some("k199"));
        db.close().await.expect("closes");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_whose_caller_went_away_is_still_written_and_the_writer_goes_on() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let db = file_db(&dir).await;
        // Queued, then the caller stops waiting at once: the write was accepted into the
        // queue, so it is run (as a statement sent before a request was cut off).
        let queued = db.connection().execute_raw(insert("gone"));
        let cut = tokio::time::timeout(Duration::ZERO, queued).await;
        drop(cut);
        tokio::time::timeout(
            Duration::from_secs(5),
            db.connection().execute_raw(insert("next")),
        )
        .await
        .expect("the writer is not stuck")
        .expect("inserts");
        assert_eq!(keys(&db).await, ["gone", "next"]);
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
