//! Cross-crate tests of ivpay. The tests live in `e2e/` (one module per behaviour area,
//! one test binary) and the load generator in `bench/`; this library holds what both
//! need: making fresh PostgreSQL databases on a test server.
//!
//! **May depend on:** every ivpay crate, as a user of them would, and `sea-orm` to
//! administer the test server.

use sea_orm::{ConnectionTrait, DbErr};

/// Creates database `name` on the server at `admin_url` (dropping one left by an earlier
/// run) and returns the URL that reaches it.
///
/// # Errors
///
/// [`DbErr`] when the server cannot be reached, the database cannot be made, or
/// `admin_url` is not a URL.
pub async fn fresh_postgres_database(admin_url: &str, name: &str) -> Result<String, DbErr> {
    let mut url =
        url::Url::parse(admin_url).map_err(|e| DbErr::Custom(format!("admin URL: {e}")))?;
    let admin = sea_orm::Database::connect(admin_url).await?;
    admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await?;
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await?;
    let _ = admin.close().await;
    url.set_path(&format!("/{name}"));
    Ok(url.to_string())
}

/// Drops the databases named `{prefix}{pid}_...` whose process is gone: runs end without
/// an async drop, so each run cleans up after the previous ones. Failures are ignored
/// (another run may be dropping the same database).
pub async fn drop_stale_databases(admin_url: &str, prefix: &str) {
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
