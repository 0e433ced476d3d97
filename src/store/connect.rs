//! The Store itself: opening the database (SQLite or PostgreSQL) and bringing its schema up
//! to date. Queries written once for both backends run through `on_pool!`, which expands each
//! body for the backend in use.
//!
//! SQLite: WAL mode, a busy timeout, synchronous=FULL. PostgreSQL: a pool per process; the
//! migrator holds an advisory lock, so instances starting together migrate once.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::Connection;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

use super::{DatabaseUrl, StoreError};

static SQLITE_MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATOR: Migrator = sqlx::migrate!("migrations/postgres");

#[derive(Clone)]
pub(super) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

#[derive(Clone)]
pub struct Store {
    pub(super) pool: Pool,
    /// SQLite: the process's writers of the delivery hot path (claims, outcomes, releases,
    /// renewals, plans) take turns here. SQLite has one writer at a time, and a connection
    /// that finds the database locked sleeps in its busy handler for milliseconds; waiting
    /// for this lock instead wakes the next writer the moment the last one commits.
    /// (Other processes on the same file still meet the busy timeout.)
    write_turn: Option<Arc<tokio::sync::Mutex<()>>>,
}

/// Connections of one process to PostgreSQL, at most.
const PG_MAX_CONNECTIONS: u32 = 8;

/// How long opening a PostgreSQL connection (or waiting for one of the pool) may take.
const PG_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

impl Store {
    /// Opens the database at `url` (`sqlite://PATH`, created if missing, or `postgres://…`)
    /// and brings its schema up to date.
    pub async fn connect(url: &DatabaseUrl) -> Result<Self, StoreError> {
        Self::connect_warm(url, 0).await
    }

    /// Opens the database like `connect`; on PostgreSQL, `extra` more connections are opened
    /// in the background meanwhile. A pass that plans and sends uses several at once (the
    /// plan's lock and its writes, the claims, the outcomes): opened one by one as each is
    /// first needed, every one of them (TCP, TLS, a new server process) held up the first
    /// emails. Failing to open them is no error: they are opened again when needed.
    pub async fn connect_warm(url: &DatabaseUrl, extra: u32) -> Result<Self, StoreError> {
        if url.is_postgres() {
            Self::connect_postgres(url, extra).await
        } else {
            Self::connect_sqlite(url).await
        }
    }

    async fn connect_postgres(url: &DatabaseUrl, extra: u32) -> Result<Self, StoreError> {
        let open = |cause| StoreError::Open {
            url: url.clone(),
            cause,
        };
        let opts = PgConnectOptions::from_str(url.expose_secret()).map_err(open)?;
        // The first connection is opened here, not by the pool: the pool takes a refused
        // connection for a server still starting and tries again until its time-out, then
        // says only "pool timed out". Opened directly, the cause comes back at once.
        let first = tokio::time::timeout(PG_CONNECT_TIMEOUT, PgConnection::connect_with(&opts))
            .await
            .map_err(|_| {
                format!(
                    "no answer within {}",
                    humantime::format_duration(PG_CONNECT_TIMEOUT)
                )
            })
            .and_then(|r| {
                r.map_err(|e| match e {
                    sqlx::Error::Io(io) => io.to_string(),
                    other => other.to_string(),
                })
            })
            .map_err(|cause| StoreError::Connect {
                url: url.clone(),
                server: server_of(&opts),
                cause,
            })?;
        let _ = first.close().await;
        let pool = PgPoolOptions::new()
            .max_connections(PG_MAX_CONNECTIONS)
            .acquire_timeout(PG_CONNECT_TIMEOUT)
            .connect_with(opts)
            .await
            .map_err(open)?;
        if extra > 0 {
            let pool = pool.clone();
            tokio::spawn(async move {
                let mut opening = tokio::task::JoinSet::new();
                // All held until all are open, so that each is a connection of its own.
                for _ in 0..extra.min(PG_MAX_CONNECTIONS - 1) {
                    let pool = pool.clone();
                    opening.spawn(async move { pool.acquire().await });
                }
                for r in opening.join_all().await {
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "opening a database connection ahead");
                    }
                }
            });
        }
        POSTGRES_MIGRATOR
            .run(&pool)
            .await
            .map_err(|cause| StoreError::Migrate {
                url: url.clone(),
                cause,
            })?;
        Ok(Self {
            pool: Pool::Postgres(pool),
            write_turn: None,
        })
    }

    async fn connect_sqlite(url: &DatabaseUrl) -> Result<Self, StoreError> {
        let open = |cause| StoreError::Open {
            url: url.clone(),
            cause,
        };
        let opts = SqliteConnectOptions::from_str(url.expose_secret())
            .map_err(open)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        if let Some(parent) = opts.get_filename().parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent).map_err(|e| {
                let e = std::io::Error::new(
                    e.kind(),
                    format!("creating its directory {}: {e}", parent.display()),
                );
                open(sqlx::Error::Io(e))
            })?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts)
            .await
            .map_err(open)?;
        // SQLite has no migration lock: two processes starting on a new file (the service
        // and a command) can race; the loser finds the work done when it tries again.
        let mut tries = 0;
        loop {
            match SQLITE_MIGRATOR.run(&pool).await {
                Ok(()) => break,
                Err(_) if tries < 5 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(100 * tries)).await;
                }
                Err(cause) => {
                    return Err(StoreError::Migrate {
                        url: url.clone(),
                        cause,
                    });
                }
            }
        }
        Ok(Self {
            pool: Pool::Sqlite(pool),
            write_turn: Some(Arc::new(tokio::sync::Mutex::new(()))),
        })
    }

    /// This process's turn to write (SQLite; PostgreSQL writers need none).
    pub(super) async fn write_turn(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match &self.write_turn {
            Some(m) => Some(m.lock().await),
            None => None,
        }
    }

    pub async fn close(&self) {
        on_pool!(self, p => p.close().await)
    }

    /// Connections open in this store's pool, idle or in use (for the tests).
    #[doc(hidden)]
    pub fn open_connections(&self) -> u32 {
        on_pool!(self, p => p.size())
    }
}

/// Where a PostgreSQL connection goes: `host:port`, or the Unix socket.
fn server_of(opts: &PgConnectOptions) -> String {
    match opts.get_socket() {
        Some(dir) => format!(
            "the socket {}",
            dir.join(format!(".s.PGSQL.{}", opts.get_port())).display()
        ),
        None if opts.get_host().contains(':') => {
            format!("[{}]:{}", opts.get_host(), opts.get_port())
        }
        None => format!("{}:{}", opts.get_host(), opts.get_port()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_backends_have_the_same_migration_history() {
        let history = |m: &Migrator| -> Vec<(i64, String)> {
            m.iter()
                .map(|m| (m.version, m.description.to_string()))
                .collect()
        };
        assert_eq!(history(&SQLITE_MIGRATOR), history(&POSTGRES_MIGRATOR));
        assert!(SQLITE_MIGRATOR.iter().count() >= 5);
    }
}
