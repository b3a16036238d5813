#![doc = include_str!("../README.md")]

pub mod batches;
pub mod finished;
pub mod jobs;
pub mod keys;
pub mod limits;
pub mod models;
pub mod notifications;
pub mod outbox;
pub mod projects;
pub mod schema;
pub mod sessions;
pub mod webhook_secrets;

use std::time::Duration;

use diesel_async::AsyncPgConnection;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::pooled_connection::AsyncDieselConnectionManager;
use diesel_async::pooled_connection::PoolableConnection;
use diesel_async::pooled_connection::deadpool::PoolError;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

pub use diesel_async::scoped_futures::ScopedFutureExt;
pub use diesel_async::{AsyncConnection, RunQueryDsl};

/// The project's migrations, compiled into every binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations");

pub type Conn = deadpool::managed::Object<Manager>;

/// A connection checked out again within this time of its last check-out is handed over
/// without a test query; one idle for longer is tested first (`SELECT 1`).
const VERIFY_AFTER_IDLE: Duration = Duration::from_secs(1);

/// diesel-async's manager, except that recycling skips the test query for connections in
/// recent use. Verifying every check-out cost a round trip per use (three per submit). A
/// connection whose server went away is still never handed out once its socket is closed
/// (`is_broken` looks at that), and one idle for a while is still tested.
pub struct Manager(AsyncDieselConnectionManager<AsyncPgConnection>);

impl deadpool::managed::Manager for Manager {
    type Type = AsyncPgConnection;
    type Error = diesel_async::pooled_connection::PoolError;

    async fn create(&self) -> Result<AsyncPgConnection, Self::Error> {
        self.0.create().await
    }

    async fn recycle(
        &self,
        conn: &mut AsyncPgConnection,
        metrics: &deadpool::managed::Metrics,
    ) -> deadpool::managed::RecycleResult<Self::Error> {
        if metrics.last_used() < VERIFY_AFTER_IDLE && !std::thread::panicking() && !conn.is_broken()
        {
            return Ok(());
        }
        self.0.recycle(conn, metrics).await
    }
}

/// Database errors, sorted by what the caller can do about them.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// PostgreSQL cannot be reached, or the pool is exhausted: retry later (`503`).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
}

impl DbError {
    pub fn is_unavailable(&self) -> bool {
        match self {
            DbError::Unavailable(_) => true,
            DbError::Query(diesel::result::Error::DatabaseError(kind, _)) => {
                matches!(kind, diesel::result::DatabaseErrorKind::ClosedConnection)
            }
            DbError::Query(diesel::result::Error::BrokenTransactionManager) => true,
            _ => false,
        }
    }

    pub fn is_unique_violation(&self) -> bool {
        matches!(
            self,
            DbError::Query(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _
            ))
        )
    }
}

impl From<PoolError> for DbError {
    fn from(e: PoolError) -> Self {
        DbError::Unavailable(e.to_string())
    }
}

/// A cloneable handle on the connection pool.
///
/// Connections are opened on demand, so a process started while PostgreSQL is down, or
/// one that lived through an outage, works again as soon as the server is back.
#[derive(Clone)]
pub struct Db {
    pool: deadpool::managed::Pool<Manager>,
}

impl Db {
    pub fn new(url: &str, max_size: usize) -> anyhow::Result<Self> {
        let manager = Manager(AsyncDieselConnectionManager::<AsyncPgConnection>::new(url));
        let pool = deadpool::managed::Pool::builder(manager)
            .max_size(max_size)
            .runtime(deadpool::Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(5)))
            .create_timeout(Some(Duration::from_secs(5)))
            .recycle_timeout(Some(Duration::from_secs(5)))
            .build()?;
        Ok(Db { pool })
    }

    pub async fn conn(&self) -> Result<Conn, DbError> {
        Ok(self.pool.get().await?)
    }

    /// Cheap readiness probe.
    pub async fn ping(&self) -> Result<(), DbError> {
        let mut conn = self.conn().await?;
        diesel::sql_query("SELECT 1").execute(&mut conn).await?;
        Ok(())
    }
}

/// Applies pending migrations; retries while the server is unreachable, for up to `patience`.
pub async fn migrate(url: &str, patience: Duration) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + patience;
    let mut delay = Duration::from_millis(200);
    loop {
        let url = url.to_string();
        let result = tokio::task::spawn_blocking(move || -> anyhow::Result<usize> {
            let mut conn: AsyncConnectionWrapper<AsyncPgConnection> =
                diesel::Connection::establish(&url)?;
            // Every process migrates at start-up; the lock makes concurrent starts take turns.
            diesel::RunQueryDsl::execute(
                diesel::sql_query("SELECT pg_advisory_lock(72426001)"),
                &mut conn,
            )?;
            let applied = conn
                .run_pending_migrations(MIGRATIONS)
                .map_err(|e| anyhow::anyhow!("failed to apply migrations: {e}"))?;
            Ok(applied.len())
        })
        .await?;
        match result {
            Ok(n) => {
                if n > 0 {
                    tracing::info!(applied = n, "database migrations applied");
                }
                return Ok(());
            }
            Err(e) if tokio::time::Instant::now() + delay < deadline => {
                tracing::warn!(error = %e, "database not ready for migrations, retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            Err(e) => return Err(e),
        }
    }
}
