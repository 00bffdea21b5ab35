//! Opening the database: URL, pool, SQLite durability settings, health.

use std::time::Duration;

#[cfg(feature = "sqlite")]
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, ConnectionTrait, DatabaseConnection, DbBackend, Statement};

#[cfg(feature = "testing")]
use crate::handle::StatementObserver;
use crate::handle::{Handle, WriteTxn};

use crate::error::ConnectError;
use crate::error::unavailable;
use ivpay_ports::RepositoryError;

/// Which database a [`Database`] talks to.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Backend {
    /// One file, WAL mode: the default.
    Sqlite,
    /// PostgreSQL, for several instances sharing the load.
    Postgres,
}

impl Backend {
    /// Whether this build can talk to it (`sqlite` and `postgres` features).
    pub const fn compiled_in(self) -> bool {
        match self {
            Self::Sqlite => cfg!(feature = "sqlite"),
            Self::Postgres => cfg!(feature = "postgres"),
        }
    }
}

/// How often SQLite waits for the disk (`PRAGMA synchronous`) in WAL mode.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum Durability {
    /// `synchronous=NORMAL`: commits are atomic and the file never corrupts, but the last
    /// transactions before a power loss or OS crash (not a process crash) may be rolled
    /// back. The usual WAL choice; several times faster than `Full`.
    #[default]
    Normal,
    /// `synchronous=FULL`: every commit waits for the WAL to reach the disk, so a committed
    /// transaction survives a power loss.
    Full,
}

/// Pool and SQLite settings for [`connect`]. `Default` is what the service uses.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct DatabaseOptions {
    /// Most connections in the pool. For SQLite these are readers that share one writer
    /// (WAL), and no more than twice the machine's CPUs are opened (a read of a local file
    /// keeps a core busy throughout; more readers would only hold memory); for an
    /// in-memory SQLite database the pool is forced to one connection, since
    /// each connection would otherwise see its own empty database.
    pub max_connections: std::num::NonZeroU32,
    /// Connections kept open when idle.
    pub min_connections: u32,
    /// How long opening one connection may take.
    pub connect_timeout: Duration,
    /// How long a query may wait for a free connection before failing as unavailable.
    pub acquire_timeout: Duration,
    /// SQLite only: how long a writer waits for the write lock before failing with BUSY.
    /// At least 5 seconds, or bursts of writes fail instead of queueing.
    pub busy_timeout: Duration,
    /// SQLite only: the durability trade-off, see [`Durability`].
    pub durability: Durability,
    /// Log every SQL statement (at INFO, through sqlx). Off by default: on a busy service
    /// it floods the log (crates.md trap 8).
    pub log_statements: bool,
}

impl Default for DatabaseOptions {
    fn default() -> Self {
        Self {
            max_connections: const { std::num::NonZeroU32::new(8).expect("not zero") },
            min_connections: 1,
            connect_timeout: Duration::from_secs(5),
            acquire_timeout: Duration::from_secs(10),
            busy_timeout: Duration::from_secs(5),
            durability: Durability::Normal,
            log_statements: false,
        }
    }
}

/// The SQLite settings a connection actually runs with, read back with `PRAGMA`s: what a
/// health endpoint reports, so a misconfigured deployment is visible.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SqliteSettings {
    /// `wal` when configured as intended.
    pub journal_mode: String,
    /// `OFF`, `NORMAL`, `FULL` or `EXTRA`.
    pub synchronous: String,
    /// How long a writer waits for the lock.
    pub busy_timeout: Duration,
    /// Whether foreign keys are enforced.
    pub foreign_keys: bool,
}

/// An open connection pool to ivpay's database. Cheap to clone: clones share the pool.
///
/// Build repositories on it with [`crate::SeaOrmRepository::new`]; migrate it with
/// [`crate::migrate_up`].
#[derive(Clone)]
pub struct Database {
    /// Where writes go. On a SQLite file, one connection this process holds (see
    /// [`crate::handle`]), so its page cache and prepared statements stay warm, and
    /// writers of this process queue for it in order instead of contending for SQLite's
    /// write lock, whose busy handler backs off by sleeping and turns contention into long
    /// tails. Other processes on the same file are still covered by the busy timeout.
    /// On PostgreSQL the held connections shared with `reader`; for an in-memory database
    /// or a host's pool, that pool.
    conn: Handle,
    /// Where reads go: on a SQLite file, readers of their own, held likewise (WAL lets
    /// them read while the writer writes); elsewhere the same pool as `conn`.
    reader: Handle,
    /// Called with each transaction begun (`testing` feature): with the statements sea-orm
    /// reports, what a test counts.
    #[cfg(feature = "testing")]
    observer: Option<StatementObserver>,
}

impl std::fmt::Debug for Database {
    /// Names the backend only: nothing of the URL (which may hold a password) is shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("backend", &self.backend())
            .finish_non_exhaustive()
    }
}

/// Opens a pool on `url`: `sqlite://path/to/file.db?mode=rwc` (`mode=rwc` creates the
/// file), `sqlite::memory:`, or `postgres://user@host:5432/db`.
///
/// Every SQLite connection runs in WAL mode with the configured `synchronous`, busy
/// timeout and foreign keys on. PostgreSQL connections use no TLS.
///
/// # Errors
///
/// [`ConnectError::UnsupportedUrl`] for another scheme; [`ConnectError::Open`] when the
/// database cannot be opened or reached (the URL is kept out of the message, it may hold a
/// password).
pub async fn connect(url: &str, options: &DatabaseOptions) -> Result<Database, ConnectError> {
    let backend = if url.starts_with("sqlite:") {
        Backend::Sqlite
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Backend::Postgres
    } else {
        return Err(ConnectError::UnsupportedUrl {
            scheme: url
                .split(':')
                .next()
                .unwrap_or_default()
                .chars()
                .take(16)
                .collect(),
        });
    };
    if !backend.compiled_in() {
        return Err(ConnectError::NotCompiledIn { backend });
    }
    let in_memory =
        backend == Backend::Sqlite && (url.contains(":memory:") || url.contains("mode=memory"));

    #[cfg(feature = "sqlite")]
    let (busy_timeout, synchronous) = (
        options.busy_timeout,
        match options.durability {
            Durability::Normal => SqliteSynchronous::Normal,
            Durability::Full => SqliteSynchronous::Full,
        },
    );
    let pool = |max: u32, min: u32, keep: bool| {
        let mut opts = ConnectOptions::new(url);
        opts.max_connections(max)
            .min_connections(min)
            .connect_timeout(options.connect_timeout)
            .acquire_timeout(options.acquire_timeout)
            .sqlx_logging(options.log_statements);
        if backend == Backend::Sqlite {
            // A connection to a local file does not break in the pool: pinging it before
            // every use is one more round trip to its worker thread per statement.
            opts.test_before_acquire(false);
        } else {
            // A busy connection is known to work; one idle for a while may have been cut
            // by the server or the network, so only that one is checked before use.
            opts.test_before_acquire_if_idle_for(Duration::from_secs(30));
        }
        if keep {
            // Never closed for idleness or age: an in-memory database would go with its
            // only connection, and the writer's cache would go cold.
            opts.idle_timeout(None).max_lifetime(None);
        }
        #[cfg(feature = "sqlite")]
        opts.map_sqlx_sqlite_opts(move |o| {
            o.journal_mode(SqliteJournalMode::Wal)
                .synchronous(synchronous)
                .busy_timeout(busy_timeout)
                .foreign_keys(true)
                // 1 MiB of pages per connection (SQLite's default is 2 MB): the file's pages
                // are in the OS's cache as well, and a connection's own cache is per thread.
                .pragma("cache_size", "-1024")
        });
        opts
    };
    let open = |opts: ConnectOptions| async move {
        sea_orm::Database::connect(opts)
            .await
            .map_err(|e| ConnectError::Open {
                reason: e.to_string().replace(url, "[database url]"),
            })
    };
    let max = options.max_connections.get();
    let (conn, reader) = match backend {
        // Each connection to `:memory:` would be a database of its own: one for all.
        Backend::Sqlite if in_memory => {
            let conn = open(pool(1, 1, true)).await?;
            (Handle::Pool(conn.clone()), Handle::Pool(conn))
        }
        #[cfg(feature = "sqlite")]
        Backend::Sqlite => {
            use crate::handle::held::Held;
            // The writer first: it creates the file (`mode=rwc`) and sets WAL.
            let writer = open(pool(1, 1, true)).await?;
            let readers = max.min(sqlite_readers());
            let reader = open(pool(readers, options.min_connections.min(readers), true)).await?;
            (
                Handle::Held(Held::writer(writer)),
                Handle::Held(Held::new(reader, readers)),
            )
        }
        #[cfg(not(feature = "sqlite"))]
        Backend::Sqlite => {
            let conn = open(pool(max, options.min_connections, false)).await?;
            (Handle::Pool(conn.clone()), Handle::Pool(conn))
        }
        Backend::Postgres => {
            // Held, as on SQLite; writes and reads share them.
            let conn = open(pool(max, options.min_connections, false)).await?;
            let held = Handle::Held(crate::handle::held::Held::new(conn, max));
            (held.clone(), held)
        }
    };
    Ok(Database {
        conn,
        reader,
        #[cfg(feature = "testing")]
        observer: None,
    })
}

/// The most SQLite readers worth having: twice the CPUs. A read of a local file keeps its
/// connection's thread on a core from start to end (no network to wait on), so more
/// readers than that only add threads to switch between and page caches to hold.
#[cfg(feature = "sqlite")]
fn sqlite_readers() -> u32 {
    let cpus = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
    u32::try_from(cpus.saturating_mul(2))
        .unwrap_or(u32::MAX)
        .max(2)
}

impl Database {
    /// Runs on a sea-orm connection the host already has (its pool, its options), for
    /// reads and writes alike. The host's pool settings apply as they are: on SQLite,
    /// WAL mode and a busy timeout are the host's to set, and writers share its pool
    /// rather than one writer connection of ours.
    pub fn from_connection(conn: DatabaseConnection) -> Self {
        Database {
            reader: Handle::Pool(conn.clone()),
            conn: Handle::Pool(conn),
            #[cfg(feature = "testing")]
            observer: None,
        }
    }

    /// Where writes go, for this crate's repositories and migrations.
    pub(crate) fn connection(&self) -> &Handle {
        &self.conn
    }

    /// Where reads go (on a SQLite file, the readers' connections).
    pub(crate) fn reader(&self) -> &Handle {
        &self.reader
    }

    /// Begins a transaction that writes, on the writer ([`Handle::begin`]).
    pub(crate) async fn begin_write(&self) -> Result<WriteTxn, sea_orm::DbErr> {
        #[cfg(feature = "testing")]
        if let Some(observe) = &self.observer {
            observe("BEGIN");
        }
        self.conn.begin().await
    }

    /// Calls `observe` with every statement this handle runs from now on (its SQL), and
    /// with `BEGIN` for every transaction: what a test counts to keep the statements of a
    /// use case from growing unnoticed. `COMMIT` and `ROLLBACK` are not reported.
    #[cfg(feature = "testing")]
    pub fn observe_statements(&mut self, observe: impl Fn(&str) + Send + Sync + 'static) {
        let observe: StatementObserver = std::sync::Arc::new(observe);
        self.conn.set_observer(observe.clone());
        self.reader.set_observer(observe.clone());
        self.observer = Some(observe);
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        match self.conn.get_database_backend() {
            DbBackend::Postgres => Backend::Postgres,
            // Only the SQLite and PostgreSQL drivers are compiled in.
            _ => Backend::Sqlite,
        }
    }

    /// Checks that a connection can be had and answers, for readiness probes.
    ///
    /// # Errors
    ///
    /// [`RepositoryError::Unavailable`].
    pub async fn ping(&self) -> Result<(), RepositoryError> {
        self.conn.ping().await.map_err(unavailable)?;
        self.reader.ping().await.map_err(unavailable)
    }

    /// The effective SQLite settings of one pooled connection, or `None` on PostgreSQL.
    ///
    /// # Errors
    ///
    /// [`RepositoryError::Unavailable`]; [`RepositoryError::Corrupt`] if SQLite answers a
    /// `PRAGMA` with something unexpected.
    pub async fn sqlite_settings(&self) -> Result<Option<SqliteSettings>, RepositoryError> {
        if self.backend() != Backend::Sqlite {
            return Ok(None);
        }
        read_sqlite_settings(&self.conn).await.map(Some)
    }

    /// Closes the pool, waiting for connections to be returned.
    ///
    /// # Errors
    ///
    /// [`RepositoryError::Unavailable`] if closing fails.
    pub async fn close(self) -> Result<(), RepositoryError> {
        self.reader.close().await.map_err(unavailable)?;
        self.conn.close().await.map_err(unavailable)
    }
}

/// Reads the settings through `conn`: a pool, or one transaction to pin a connection.
pub(crate) async fn read_sqlite_settings(
    conn: &impl ConnectionTrait,
) -> Result<SqliteSettings, RepositoryError> {
    async fn pragma<T: sea_orm::TryGetable>(
        conn: &impl ConnectionTrait,
        name: &str,
    ) -> Result<T, RepositoryError> {
        let row = conn
            .query_one_raw(Statement::from_string(
                DbBackend::Sqlite,
                format!("PRAGMA {name}"),
            ))
            .await
            .map_err(unavailable)?
            .ok_or_else(|| RepositoryError::Corrupt(format!("PRAGMA {name} returned no row")))?;
        row.try_get_by_index::<T>(0)
            .map_err(|e| RepositoryError::Corrupt(format!("PRAGMA {name}: {e}")))
    }
    let synchronous = match pragma::<i64>(conn, "synchronous").await? {
        0 => "OFF",
        1 => "NORMAL",
        2 => "FULL",
        3 => "EXTRA",
        other => {
            return Err(RepositoryError::Corrupt(format!(
                "PRAGMA synchronous = {other}"
            )));
        }
    };
    let busy_ms = pragma::<i64>(conn, "busy_timeout").await?;
    Ok(SqliteSettings {
        journal_mode: pragma::<String>(conn, "journal_mode")
            .await?
            .to_ascii_lowercase(),
        synchronous: synchronous.to_owned(),
        busy_timeout: Duration::from_millis(u64::try_from(busy_ms).unwrap_or(0)),
        foreign_keys: pragma::<i64>(conn, "foreign_keys").await? == 1,
    })
}

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    use super::*;
    use sea_orm::TransactionTrait;

    fn file_url(dir: &tempfile::TempDir, name: &str) -> String {
        format!("sqlite://{}?mode=rwc", dir.path().join(name).display())
    }

    /// On a SQLite file, writes go through one writer connection and reads through a pool
    /// of their own: a read is answered while a write transaction is open.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_readers_read_while_the_one_writer_writes() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let db = connect(&file_url(&dir, "split.db"), &DatabaseOptions::default())
            .await
            .expect("opens");
        let writing = db.begin_write().await.expect("the writer begins");
        let read = tokio::time::timeout(Duration::from_secs(2), read_sqlite_settings(db.reader()))
            .await
            .expect("a read does not wait for the writer")
            .expect("pragmas");
        assert_eq!(read.journal_mode, "wal");
        let second_writer =
            tokio::time::timeout(Duration::from_millis(300), db.begin_write()).await;
        assert!(
            second_writer.is_err(),
            "one writer connection: a second write waits"
        );
        writing.rollback().await.expect("rolls back");
        db.close().await.expect("closes");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_pooled_sqlite_connection_runs_wal_normal_with_busy_timeout_and_foreign_keys() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let options = DatabaseOptions {
            max_connections: const { std::num::NonZeroU32::new(4).expect("not zero") },
            min_connections: 4,
            ..DatabaseOptions::default()
        };
        let db = connect(&file_url(&dir, "pool.db"), &options)
            .await
            .expect("opens");
        // Hold four transactions on the readers and one on the writer at once, so each
        // reads through its own connection: every one of the five is checked.
        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(db.reader().pool().begin().await.expect("begins"));
        }
        let writer = db.begin_write().await.expect("the writer begins");
        let expected = SqliteSettings {
            journal_mode: "wal".to_owned(),
            synchronous: "NORMAL".to_owned(),
            busy_timeout: Duration::from_secs(5),
            foreign_keys: true,
        };
        for txn in &held {
            let settings = read_sqlite_settings(txn).await.expect("pragmas");
            assert_eq!(settings, expected);
        }
        let settings = read_sqlite_settings(&writer).await.expect("pragmas");
        assert_eq!(settings, expected, "the writer");
        writer.rollback().await.expect("rolls back");
        drop(held);
        assert_eq!(
            db.sqlite_settings()
                .await
                .expect("pragmas")
                .map(|s| s.journal_mode),
            Some("wal".to_owned())
        );
        db.close().await.expect("closes");
    }

    #[tokio::test]
    async fn durability_and_busy_timeout_follow_the_options() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let options = DatabaseOptions {
            durability: Durability::Full,
            busy_timeout: Duration::from_millis(7_500),
            ..DatabaseOptions::default()
        };
        let db = connect(&file_url(&dir, "full.db"), &options)
            .await
            .expect("opens");
        let settings = db
            .sqlite_settings()
            .await
            .expect("pragmas")
            .expect("sqlite");
        assert_eq!(settings.synchronous, "FULL");
        assert_eq!(settings.busy_timeout, Duration::from_millis(7_500));
        assert_eq!(db.backend(), Backend::Sqlite);
        assert_eq!(format!("{db:?}"), "Database { backend: Sqlite, .. }");
        db.ping().await.expect("answers");
    }

    #[tokio::test]
    async fn mode_rwc_creates_the_file_and_a_missing_file_is_not_created_without_it() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("new.db");
        let missing = format!("sqlite://{}", path.display());
        let err = connect(&missing, &DatabaseOptions::default())
            .await
            .expect_err("no such file");
        assert!(matches!(err, ConnectError::Open { .. }), "{err:?}");
        assert!(!path.exists());

        let db = connect(&file_url(&dir, "new.db"), &DatabaseOptions::default())
            .await
            .expect("opens");
        assert!(path.exists());
        db.close().await.expect("closes");
    }

    #[tokio::test]
    async fn other_schemes_are_refused_and_urls_stay_out_of_errors() {
        let err = connect("mysql://root:hunter2@db/x", &DatabaseOptions::default())
            .await
            .expect_err("unsupported");
        assert!(
            matches!(&err, ConnectError::UnsupportedUrl { scheme } if scheme == "mysql"),
            "{err:?}"
        );
        assert!(!err.to_string().contains("hunter2"));

        let url = "postgres://user:hunter2@127.0.0.1:1/nothing";
        let options = DatabaseOptions {
            connect_timeout: Duration::from_millis(500),
            acquire_timeout: Duration::from_millis(500),
            min_connections: 0,
            ..DatabaseOptions::default()
        };
        let err = connect(url, &options).await.expect_err("nothing listens");
        if Backend::Postgres.compiled_in() {
            assert!(matches!(err, ConnectError::Open { .. }), "{err:?}");
        } else {
            assert!(
                matches!(
                    err,
                    ConnectError::NotCompiledIn {
                        backend: Backend::Postgres
                    }
                ),
                "a build without the postgres feature says so: {err:?}"
            );
        }
        assert!(!format!("{err} {err:?}").contains("hunter2"), "{err:?}");
    }

    #[tokio::test]
    async fn an_in_memory_database_keeps_its_schema_across_queries() {
        let db = connect("sqlite::memory:", &DatabaseOptions::default())
            .await
            .expect("opens");
        crate::migrate_up(&db).await.expect("migrates");
        assert!(
            !crate::applied_migrations(&db)
                .await
                .expect("reads")
                .is_empty(),
            "the pool's one connection still holds the migrated database"
        );
    }
}
