//! Fresh databases for tests and benchmarks (feature `testing`): a SQLite file in a
//! temporary directory of its own, or a database of its own on a PostgreSQL server. The
//! repository suite, the end-to-end tests and the load generator all make theirs here.
//!
//! PostgreSQL comes from `IVPAY_TEST_DATABASE_URL` (a URL whose user may create
//! databases). Without it a PostgreSQL test is skipped, saying so on stderr where libtest
//! does not hide it; with `IVPAY_REQUIRE_POSTGRES=1` (CI) it fails instead.
//!
//! ```no_run
//! use ivpay_persistence::testing::TestDatabase;
//!
//! # async fn run() {
//! let sqlite = TestDatabase::sqlite();
//! if let Some(postgres) = TestDatabase::postgres("ivpay_doc_", "my_test").await {
//!     let _ = postgres.url();
//!     postgres.drop_database().await;
//! }
//! # let _ = sqlite;
//! # }
//! ```

use std::io::Write;
use std::sync::atomic::{AtomicU32, Ordering};

use sea_orm::{ConnectionTrait, DbErr};

/// The PostgreSQL server to test against, e.g. `postgres://postgres@127.0.0.1:5432/postgres`.
pub const DATABASE_URL_VAR: &str = "IVPAY_TEST_DATABASE_URL";
/// Set to `1` (CI does) to fail rather than skip when [`DATABASE_URL_VAR`] is missing.
pub const REQUIRE_POSTGRES_VAR: &str = "IVPAY_REQUIRE_POSTGRES";

/// A test database could not be made or dropped.
#[derive(Debug, thiserror::Error)]
#[error("test database {name}: {source}")]
pub struct TestDatabaseError {
    /// The database.
    pub name: String,
    /// What the server (or the URL parser) said.
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync + 'static>,
}

/// A fresh, empty database for one test. A SQLite file goes with the value; a PostgreSQL
/// database goes with [`TestDatabase::drop_database`], or, if the test never got there,
/// with a later run's sweep of databases whose process is gone.
#[derive(Debug)]
pub struct TestDatabase {
    url: String,
    /// The admin URL and the database's name, on PostgreSQL.
    postgres: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDatabase {
    /// A SQLite file in a temporary directory of its own.
    ///
    /// # Panics
    ///
    /// When no temporary directory can be made.
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("ivpay.db").display()
        );
        Self {
            url,
            postgres: None,
            _dir: Some(dir),
        }
    }

    /// A database named `{prefix}{pid}_{n}` on the server at [`DATABASE_URL_VAR`], after
    /// dropping the ones earlier runs with that prefix left behind. `None` (with a line on
    /// stderr naming `test`) when no server is configured.
    ///
    /// # Panics
    ///
    /// When no server is configured but [`REQUIRE_POSTGRES_VAR`] is `1`, or the server
    /// cannot make the database.
    pub async fn postgres(prefix: &str, test: &str) -> Option<Self> {
        let Some(admin) = std::env::var(DATABASE_URL_VAR)
            .ok()
            .filter(|u| !u.is_empty())
        else {
            let required = std::env::var(REQUIRE_POSTGRES_VAR).is_ok_and(|v| v == "1");
            assert!(
                !required,
                "{REQUIRE_POSTGRES_VAR}=1 but {DATABASE_URL_VAR} is not set: cannot run {test} on PostgreSQL"
            );
            // Straight to stderr: libtest captures `eprintln!` of passing tests, and a skip
            // must be visible.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test} on PostgreSQL: {DATABASE_URL_VAR} is not set"
            );
            return None;
        };
        static NEXT: AtomicU32 = AtomicU32::new(0);
        drop_stale_databases(&admin, prefix).await;
        let name = format!(
            "{prefix}{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let url = create_postgres_database(&admin, &name)
            .await
            .unwrap_or_else(|e| panic!("a fresh PostgreSQL database for {test}: {e}"));
        Some(Self {
            url,
            postgres: Some((admin, name)),
            _dir: None,
        })
    }

    /// Where it is.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Drops the PostgreSQL database now, even with connections still open (a SQLite file
    /// goes with the value anyway).
    ///
    /// # Panics
    ///
    /// When the server refuses.
    pub async fn drop_database(self) {
        if let Some((admin, name)) = &self.postgres {
            admin_sql(
                admin,
                name,
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        }
    }
}

/// Creates database `name` on the server at `admin_url` (dropping one an earlier run left)
/// and returns the URL that reaches it.
///
/// # Errors
///
/// [`TestDatabaseError`] when the server cannot be reached, the database cannot be made,
/// or `admin_url` is not a URL.
pub async fn create_postgres_database(
    admin_url: &str,
    name: &str,
) -> Result<String, TestDatabaseError> {
    let failed = |source: Box<dyn std::error::Error + Send + Sync>| TestDatabaseError {
        name: name.to_owned(),
        source,
    };
    let mut url = url::Url::parse(admin_url).map_err(|e| failed(Box::new(e)))?;
    admin_sql(
        admin_url,
        name,
        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    )
    .await?;
    admin_sql(admin_url, name, &format!("CREATE DATABASE {name}")).await?;
    url.set_path(&format!("/{name}"));
    Ok(url.to_string())
}

/// Runs one statement about database `name` on a connection of its own to the server.
async fn admin_sql(admin_url: &str, name: &str, sql: &str) -> Result<(), TestDatabaseError> {
    let failed = |e: DbErr| TestDatabaseError {
        name: name.to_owned(),
        source: Box::new(e),
    };
    let admin = sea_orm::Database::connect(admin_url)
        .await
        .map_err(failed)?;
    let done = admin
        .execute_unprepared(sql)
        .await
        .map(drop)
        .map_err(failed);
    let _ = admin.close().await;
    done
}

/// Drops the databases named `{prefix}{pid}_...` whose process is gone: a test that
/// panicked skipped its own cleanup. Failures are ignored (another run may be dropping the
/// same database).
async fn drop_stale_databases(admin_url: &str, prefix: &str) {
    let Ok(admin) = sea_orm::Database::connect(admin_url).await else {
        return;
    };
    let pattern = prefix.replace('_', "\\_");
    let Ok(rows) = admin
        .query_all_raw(sea_orm::Statement::from_string(
            admin.get_database_backend(),
            format!("SELECT datname FROM pg_database WHERE datname LIKE '{pattern}%'"),
        ))
        .await
    else {
        return;
    };
    for row in rows {
        let Ok(name) = row.try_get_by_index::<String>(0) else {
            continue;
        };
        let pid = name
            .strip_prefix(prefix)
            .and_then(|rest| rest.split('_').next())
            .unwrap_or_default();
        if pid != std::process::id().to_string()
            && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = admin
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await;
        }
    }
    let _ = admin.close().await;
}
