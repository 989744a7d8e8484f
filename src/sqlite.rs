//! SQLite adapters of the [ports](crate::ports) (feature `sqlite`): the embedded default for
//! hosts that run one instance.
//!
//! [`SqliteStore`] is both an [`AccountStore`] and a [`MemberDirectory`] over one database:
//! a single file in WAL mode (`sqlite://path/to/afiliado.db`, created if missing) or, for tests
//! and demos, an in-memory database (`sqlite::memory:`).
//!
//! ```
//! use afiliado::ports::AccountStore;
//! use afiliado::sqlite::SqliteStore;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! rt.block_on(async {
//!     let store = SqliteStore::open("sqlite::memory:").await?;
//!     store.migrate().await?; // embedded migrations; harmless when already applied
//!     let member: afiliado::MemberId = "1710034065".parse()?;
//!     assert!(store.load(&member).await?.is_none());
//!     Ok::<(), Box<dyn std::error::Error>>(())
//! })?;
//! # Ok(())
//! # }
//! ```
//!
//! ## Schema
//!
//! The embedded migrations (`migrations/sqlite`) create:
//!
//! * `accounts` — one row per member: the [`AccountRecord`] as JSON, plus copies of its
//!   version (optimistic concurrency), state name and activation-link expiry (retention);
//! * `account_tokens` — the record's live token digests (hex), rewritten on every commit;
//! * `outbox` — queued notices with their sealed payload and delivery status;
//! * `audit` — the append-only audit log ([`AuditEvent`] as JSON);
//! * `members` — the member directory ([`MemberFacts`] as JSON).
//!
//! Instants are stored as unix microseconds (UTC); JSON columns keep full precision.
//!
//! ## Concurrency
//!
//! Every multi-statement write runs in a `BEGIN IMMEDIATE` transaction, so concurrent writers
//! queue on SQLite's write lock (waiting up to 5 s) instead of failing on a lock upgrade; of
//! two commits on one version exactly one wins and the other gets [`StoreError::Conflict`].
//!
//! ## Write faults
//!
//! A write that fails because the database files cannot be written (a full or read-only file
//! system, an I/O error, a file made immutable) returns [`StoreError::Unavailable`] and stores
//! nothing of itself. Once the fault is gone the store recovers by itself: the next write
//! succeeds, on whichever pooled connection it runs. To that end a connection returning to the
//! pool with a transaction still open is rolled back (or, failing that, closed), and a new
//! connection is only let into the pool when it can write the WAL: while the WAL cannot be
//! written, operations that need a new connection fail (reads included) rather than leave a
//! connection in the pool that could never write again.
//!
//! ### The shared-memory file and `SIGBUS`
//!
//! By default SQLite keeps a WAL database's index in a `-shm` file next to it
//! (`afiliado.db-shm`), which every connection maps into memory. If that file stops being
//! writable while the store is open (`chattr +i` on it), is truncated, or sits on storage
//! that fails, the next access to the mapping is a memory fault: the kernel kills the process
//! with `SIGBUS`, before SQLite or this crate can return an error. No SQLite setting turns
//! that into an error (`PRAGMA mmap_size` governs the database file, not the `-shm` file).
//!
//! A host that must survive this can append `?vfs=unix-excl` to the URL
//! (`sqlite://path/to/afiliado.db?vfs=unix-excl`): SQLite's `unix-excl` VFS keeps the index
//! in the process's heap and creates no `-shm` file. The price is an exclusive lock on the
//! database file while the store has connections open: no other process can read or write
//! the database meanwhile (the `sqlite3` shell, a backup tool or a second instance gets
//! "database is locked"). Connections of one store still share the database as usual.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::pool::PoolConnectionMetadata;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::{Connection as _, Row, Sqlite, Transaction, TransactionManager as _};
use time::OffsetDateTime;

use crate::core::{AccountRecord, AccountState, AuditEvent};
use crate::crypto::{Digest, TokenPurpose};
use crate::identity::MemberId;
use crate::ports::{
    AccountStore, MemberDirectory, MemberFacts, NewMessage, OutboxMessage, OutboxStatus,
    SourceThrottle, StoreError,
};

/// The embedded migrations of `migrations/sqlite`.
static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// How long a connection waits for SQLite's write lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Pool size for file databases (readers run in parallel under WAL; writers queue).
const FILE_POOL_SIZE: u32 = 8;

/// The statement every write transaction starts with.
const BEGIN_IMMEDIATE: &str = "BEGIN IMMEDIATE";

// ---------------------------------------------------------------------------------------------
// SqliteStore
// ---------------------------------------------------------------------------------------------

/// An [`AccountStore`] and [`MemberDirectory`] over one SQLite database.
///
/// Cheap to clone: clones share one connection pool. `Debug` shows only where the database
/// lives and the pool size.
///
/// Open it with [`SqliteStore::open`], then run [`SqliteStore::migrate`] once at start-up.
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    location: Arc<str>,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("location", &self.location)
            .field("connections", &self.pool.size())
            .finish()
    }
}

impl SqliteStore {
    /// Opens (and for a file, creates if missing) the database at `url`.
    ///
    /// * `sqlite://path/to/file.db` — a file, in WAL journal mode with `synchronous=NORMAL`,
    ///   served by a pool of several connections; missing folders on the path are created;
    /// * `sqlite::memory:` — a fresh in-memory database, private to this store (and its
    ///   clones), served by one connection that is kept open for the store's lifetime.
    ///
    /// Every connection has foreign keys on and a 5 s busy timeout. The schema is not
    /// touched: call [`migrate`](Self::migrate) next.
    ///
    /// Query parameters of the URL are passed to SQLite; `?vfs=unix-excl` keeps the WAL index
    /// in memory instead of a `-shm` file, trading other processes' access for immunity to
    /// `SIGBUS` (see [the module docs](self#the-shared-memory-file-and-sigbus)).
    ///
    /// # Errors
    ///
    /// [`StoreError::Invalid`] for a URL that is not a SQLite URL,
    /// [`StoreError::Unavailable`] when the database cannot be opened, and
    /// [`StoreError::Corrupt`] when the file is not a SQLite database.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let in_memory = is_memory_url(url)?;
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Invalid(format!("not a SQLite URL: {e}")))?
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let (options, pool_options, location) = if in_memory {
            // An in-memory database lives as long as a connection to it: one connection that
            // never retires keeps the data for the store's lifetime, and every clone sees it.
            let pool_options = SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .after_release(after_release);
            (options, pool_options, Arc::from(":memory:"))
        } else {
            let location: Arc<str> = Arc::from(options.get_filename().to_string_lossy().as_ref());
            // A file in a folder that does not exist yet (a fresh checkout, a new volume):
            // create the folder, as the file itself is created.
            if let Some(parent) = options.get_filename().parent() {
                if !parent.as_os_str().is_empty() && !parent.exists() {
                    std::fs::create_dir_all(parent).map_err(|e| {
                        StoreError::Unavailable(format!(
                            "cannot create the database folder: {}",
                            e.kind()
                        ))
                    })?;
                }
            }
            let options = options
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                // A connection opened while the WAL cannot be written (a full or read-only
                // file system, an immutable file) gets the WAL read-only for its whole life,
                // and would fail every write with "attempt to write a readonly database" long
                // after the fault is gone. A passive checkpoint needs the WAL writable, never
                // waits for a lock and only does work SQLite does anyway, so it makes opening
                // such a connection fail instead of letting it into the pool.
                .pragma("wal_checkpoint", "PASSIVE");
            let pool_options = SqlitePoolOptions::new()
                .max_connections(FILE_POOL_SIZE)
                .after_release(after_release);
            (options, pool_options, location)
        };
        // `connect_with` opens a first connection eagerly, so a bad path fails here and the
        // switch to WAL happens once, before any concurrent connection exists.
        let pool = pool_options.connect_with(options).await.map_err(db_error)?;
        Ok(Self { pool, location })
    }

    /// Applies the embedded migrations (`migrations/sqlite`) that are not applied yet.
    /// Idempotent: running it on an up-to-date database does nothing.
    ///
    /// # Errors
    ///
    /// [`StoreError::Corrupt`] when the database's migration history does not match the
    /// embedded one (a migration changed or unknown), [`StoreError::Unavailable`] otherwise.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await.map_err(migrate_error)
    }

    /// Closes every connection, waiting for those in use to be returned. Later calls on this
    /// store (or its clones) fail with [`StoreError::Unavailable`]. Dropping the last clone
    /// closes the pool too; this method just makes the moment explicit (for example before
    /// copying the database file).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Every row of every table (including SQLite's and the migrator's bookkeeping tables),
    /// one string per row, each column rendered as text: blobs as hex followed by their lossy
    /// UTF-8 reading. For tests that check nothing secret is stored in clear.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when the database cannot be read.
    #[cfg(feature = "test-util")]
    #[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
    pub async fn dump_rows(&self) -> Result<Vec<String>, StoreError> {
        use sqlx::{Column, TypeInfo, ValueRef};

        let tables: Vec<String> =
            sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
                .fetch_all(&self.pool)
                .await
                .map_err(db_error)?;
        let mut out = Vec::new();
        for table in tables {
            let sql = format!("SELECT * FROM \"{}\"", table.replace('"', "\"\""));
            let rows = sqlx::query(&sql)
                .fetch_all(&self.pool)
                .await
                .map_err(db_error)?;
            for row in rows {
                let mut line = format!("{table}:");
                for (i, column) in row.columns().iter().enumerate() {
                    let raw = row.try_get_raw(i).map_err(db_error)?;
                    let kind = if raw.is_null() {
                        "NULL".to_owned()
                    } else {
                        raw.type_info().name().to_owned()
                    };
                    let text = match kind.as_str() {
                        "NULL" => "NULL".to_owned(),
                        "INTEGER" => row.try_get::<i64, _>(i).map_err(db_error)?.to_string(),
                        "REAL" => row.try_get::<f64, _>(i).map_err(db_error)?.to_string(),
                        "TEXT" => row.try_get::<String, _>(i).map_err(db_error)?,
                        _ => {
                            let bytes: Vec<u8> = row.try_get(i).map_err(db_error)?;
                            format!("{} {}", hex(&bytes), String::from_utf8_lossy(&bytes))
                        }
                    };
                    line.push_str(&format!(" {}={}", column.name(), text));
                }
                out.push(line);
            }
        }
        Ok(out)
    }

    /// Starts a write transaction that holds SQLite's write lock from its first statement.
    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        self.pool
            .begin_with(BEGIN_IMMEDIATE)
            .await
            .map_err(db_error)
    }

    /// Runs one outbox transition guarded by `status IN ('pending', 'claimed')`: no effect on
    /// a terminal message, [`StoreError::UnknownMessage`] for a missing one.
    async fn transition<'q>(
        &self,
        id: u64,
        query: sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
    ) -> Result<(), StoreError> {
        let done = query.execute(&self.pool).await.map_err(db_error)?;
        if done.rows_affected() > 0 {
            return Ok(());
        }
        // Rows are never deleted, so a row missing now was never there.
        let key = message_key(id)?;
        let exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM outbox WHERE id = ?")
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?;
        match exists {
            Some(_) => Ok(()),
            None => Err(StoreError::UnknownMessage { id }),
        }
    }
}

/// Whether `url` names an in-memory database (`sqlite::memory:`, `sqlite://:memory:`,
/// `…?mode=memory`).
fn is_memory_url(url: &str) -> Result<bool, StoreError> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .ok_or_else(|| StoreError::Invalid("a SQLite URL starts with `sqlite:`".to_owned()))?;
    let (database, params) = rest.split_once('?').unwrap_or((rest, ""));
    Ok(database == ":memory:" || params.split('&').any(|p| p == "mode=memory"))
}

/// The pool's `after_release` hook: whether a connection coming back to the pool may serve
/// again (`Ok(true)`) or must be closed (`Ok(false)` or an error, after which the pool opens a
/// fresh connection when one is needed).
fn after_release(
    conn: &mut SqliteConnection,
    _meta: PoolConnectionMetadata,
) -> Pin<Box<dyn Future<Output = Result<bool, sqlx::Error>> + Send + '_>> {
    Box::pin(leave_no_transaction_open(conn))
}

/// Makes sure `conn` has no transaction open, in SQLite and in sqlx's own count, before it
/// returns to the pool; `Ok(false)` (close it) when that cannot be made sure.
///
/// Why: sqlx counts the transactions it opened on a connection and lowers the count only when
/// its `COMMIT` or `ROLLBACK` succeeds. When a write fails with an I/O error (the WAL or the
/// disk cannot be written) or `SQLITE_FULL`, SQLite may roll the transaction back by itself;
/// the `COMMIT` then fails, the `ROLLBACK` that follows fails too ("no transaction is active"),
/// and the connection came back to the pool still counted as inside a transaction. Every later
/// `BEGIN IMMEDIATE` on it failed ("attempted to call begin_with at non-zero transaction
/// depth") until the process restarted, long after the fault was gone. Checking here, rather
/// than where each transaction ends, covers every path: a failed commit, a failed rollback, a
/// future dropped mid-transaction, and any write path added later.
///
/// Repairing (rather than always closing) keeps an in-memory database alive: it lives only as
/// long as its one connection.
async fn leave_no_transaction_open(conn: &mut SqliteConnection) -> Result<bool, sqlx::Error> {
    if !conn.is_in_transaction() {
        return Ok(true);
    }
    // A dropped `Transaction` queues its ROLLBACK on the connection's worker thread; one round
    // trip through that worker lets it run before deciding.
    conn.ping().await?;
    if !conn.is_in_transaction() {
        return Ok(true);
    }
    // Never nested here; a savepoint left open means something unforeseen: close.
    if <Sqlite as sqlx::Database>::TransactionManager::get_transaction_depth(conn) != 1 {
        return Ok(false);
    }
    // sqlx's ROLLBACK only succeeds (and only then lowers the count) while SQLite has a
    // transaction open. When SQLite already rolled back by itself, open a deferred one (it takes
    // no lock and touches no file) for that ROLLBACK to end; when SQLite's transaction is still
    // open this BEGIN fails harmlessly and the ROLLBACK ends that one.
    let _ = sqlx::Executor::execute(&mut *conn, "BEGIN").await;
    <Sqlite as sqlx::Database>::TransactionManager::rollback(conn).await?;
    Ok(!conn.is_in_transaction())
}

#[cfg(feature = "test-util")]
fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len().saturating_mul(2));
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Conversions
// ---------------------------------------------------------------------------------------------

/// Unix microseconds of `t` (floored), as stored.
fn micros(t: OffsetDateTime) -> Result<i64, StoreError> {
    let us = t.unix_timestamp_nanos().div_euclid(1_000);
    i64::try_from(us).map_err(|_| StoreError::Invalid("instant out of range".to_owned()))
}

/// The instant of stored unix microseconds, in UTC.
fn from_micros(us: i64, what: &str) -> Result<OffsetDateTime, StoreError> {
    i128::from(us)
        .checked_mul(1_000)
        .and_then(|ns| OffsetDateTime::from_unix_timestamp_nanos(ns).ok())
        .ok_or_else(|| StoreError::Corrupt(format!("{what}: instant out of range")))
}

/// A stored version as `u64`.
fn stored_version(v: i64, member: &MemberId) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| {
        StoreError::Corrupt(format!("negative version for member {}", member.masked()))
    })
}

/// The key of outbox message `id` (ids beyond `i64` cannot exist).
fn message_key(id: u64) -> Result<i64, StoreError> {
    i64::try_from(id).map_err(|_| StoreError::UnknownMessage { id })
}

/// A `LIMIT` value.
fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

fn to_json<T: Serialize>(value: &T, what: &str) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| {
        StoreError::Invalid(format!(
            "{what} cannot be encoded ({:?} error)",
            e.classify()
        ))
    })
}

/// Decodes a JSON column. The message names the column and the position of the problem, never
/// the stored text.
fn from_json<T: DeserializeOwned>(text: &str, what: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| {
        StoreError::Corrupt(format!(
            "{what}: undecodable JSON ({:?} error at line {}, column {})",
            e.classify(),
            e.line(),
            e.column()
        ))
    })
}

fn parse_member(text: &str, what: &str) -> Result<MemberId, StoreError> {
    text.parse()
        .map_err(|_| StoreError::Corrupt(format!("{what}: malformed member id")))
}

fn db_error(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::Database(db) => {
            // SQLITE_CORRUPT (11) and SQLITE_NOTADB (26), possibly with extended codes.
            let primary = db
                .code()
                .and_then(|c| c.parse::<i64>().ok())
                .map(|c| c & 0xff);
            match primary {
                Some(11 | 26) => StoreError::Corrupt(db.message().to_owned()),
                _ => StoreError::Unavailable(db.message().to_owned()),
            }
        }
        e @ (sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::ColumnIndexOutOfBounds { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::TypeNotFound { .. }
        | sqlx::Error::RowNotFound) => StoreError::Corrupt(e.to_string()),
        e => StoreError::Unavailable(e.to_string()),
    }
}

fn migrate_error(e: MigrateError) -> StoreError {
    match e {
        MigrateError::Execute(e) | MigrateError::ExecuteMigration(e, _) => db_error(e),
        e @ (MigrateError::VersionMissing(_)
        | MigrateError::VersionMismatch(_)
        | MigrateError::VersionNotPresent(_)
        | MigrateError::VersionTooOld(_, _)
        | MigrateError::VersionTooNew(_, _)
        | MigrateError::Dirty(_)) => StoreError::Corrupt(format!("migrations: {e}")),
        e => StoreError::Unavailable(format!("migrations: {e}")),
    }
}

/// Decodes an `accounts` row (`member_id`, `version`, `record`).
fn record_from_row(row: &SqliteRow) -> Result<AccountRecord, StoreError> {
    let member_id: String = row.try_get("member_id").map_err(db_error)?;
    let member = parse_member(&member_id, "account")?;
    let version: i64 = row.try_get("version").map_err(db_error)?;
    let text: String = row.try_get("record").map_err(db_error)?;
    let mut record: AccountRecord =
        from_json(&text, &format!("account record of {}", member.masked()))?;
    if record.member != member {
        return Err(StoreError::Corrupt(format!(
            "account record filed under member {} belongs to another member",
            member.masked()
        )));
    }
    record.version = stored_version(version, &member)?;
    Ok(record)
}

/// Decodes an `outbox` row (all columns).
fn message_from_row(row: &SqliteRow) -> Result<OutboxMessage, StoreError> {
    let key: i64 = row.try_get("id").map_err(db_error)?;
    let id = u64::try_from(key)
        .map_err(|_| StoreError::Corrupt("outbox: negative message id".to_owned()))?;
    let what = format!("outbox message {id}");
    let member_id: String = row.try_get("member_id").map_err(db_error)?;
    let notice: String = row.try_get("notice").map_err(db_error)?;
    let attempts: i64 = row.try_get("attempts").map_err(db_error)?;
    let status: String = row.try_get("status").map_err(db_error)?;
    let lease_until: Option<i64> = row.try_get("lease_until").map_err(db_error)?;
    let done_at: Option<i64> = row.try_get("done_at").map_err(db_error)?;
    let dead_reason: Option<String> = row.try_get("dead_reason").map_err(db_error)?;
    let missing = |column: &str| StoreError::Corrupt(format!("{what}: {column} missing"));
    let status = match status.as_str() {
        "pending" => OutboxStatus::Pending,
        "claimed" => OutboxStatus::Claimed {
            lease_until: from_micros(lease_until.ok_or_else(|| missing("lease_until"))?, &what)?,
        },
        "sent" => OutboxStatus::Sent {
            at: from_micros(done_at.ok_or_else(|| missing("done_at"))?, &what)?,
        },
        "dead" => OutboxStatus::DeadLetter {
            at: from_micros(done_at.ok_or_else(|| missing("done_at"))?, &what)?,
            reason: dead_reason.unwrap_or_default(),
        },
        _ => return Err(StoreError::Corrupt(format!("{what}: unknown status"))),
    };
    Ok(OutboxMessage {
        id,
        idempotency_key: row.try_get("idempotency_key").map_err(db_error)?,
        member: parse_member(&member_id, &what)?,
        notice: from_json(&notice, &what)?,
        sealed: row.try_get("sealed").map_err(db_error)?,
        created_at: from_micros(row.try_get("created_at").map_err(db_error)?, &what)?,
        attempts: u32::try_from(attempts)
            .map_err(|_| StoreError::Corrupt(format!("{what}: attempts out of range")))?,
        next_attempt_at: from_micros(row.try_get("next_attempt_at").map_err(db_error)?, &what)?,
        status,
    })
}

/// Ends `tx` after its work produced `result`: commits on success, rolls back on any error.
async fn settle<T>(
    tx: Transaction<'static, Sqlite>,
    result: Result<T, StoreError>,
) -> Result<T, StoreError> {
    match result {
        Ok(value) => {
            tx.commit().await.map_err(db_error)?;
            Ok(value)
        }
        Err(e) => {
            // The rollback's own failure adds nothing: whatever state the failure left, the
            // pool's `after_release` hook (`leave_no_transaction_open`) ends the transaction, or
            // closes the connection, before the connection serves again.
            let _ = tx.rollback().await;
            Err(e)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// AccountStore
// ---------------------------------------------------------------------------------------------

/// Writes `record` (as version `version`), its tokens, `outbox` and `audit` in `tx`, after
/// checking the stored version is `expected_version`.
async fn commit_in(
    conn: &mut SqliteConnection,
    record: &AccountRecord,
    expected_version: u64,
    outbox: Vec<NewMessage>,
    audit: Vec<AuditEvent>,
) -> Result<u64, StoreError> {
    let member = &record.member;
    let found: Option<i64> = sqlx::query_scalar("SELECT version FROM accounts WHERE member_id = ?")
        .bind(member.as_str())
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_error)?;
    let found = found.map(|v| stored_version(v, member)).transpose()?;
    if found.unwrap_or(0) != expected_version {
        return Err(StoreError::Conflict {
            member: member.clone(),
            expected: expected_version,
            found,
        });
    }
    let version = expected_version
        .checked_add(1)
        .and_then(|v| i64::try_from(v).ok().map(|k| (v, k)))
        .ok_or_else(|| StoreError::Invalid("version overflow".to_owned()))?;

    let mut stored = record.clone();
    stored.version = version.0;
    let pending_expires_at = match &stored.state {
        AccountState::PendingActivation(p) => Some(micros(p.link.expires_at)?),
        _ => None,
    };
    sqlx::query(
        "INSERT INTO accounts (member_id, version, state, pending_expires_at, record) \
         VALUES (?, ?, ?, ?, ?) \
         ON CONFLICT (member_id) DO UPDATE SET version = excluded.version, \
         state = excluded.state, pending_expires_at = excluded.pending_expires_at, \
         record = excluded.record",
    )
    .bind(member.as_str())
    .bind(version.1)
    .bind(stored.state.kind().to_string())
    .bind(pending_expires_at)
    .bind(to_json(&stored, "account record")?)
    .execute(&mut *conn)
    .await
    .map_err(db_error)?;

    sqlx::query("DELETE FROM account_tokens WHERE member_id = ?")
        .bind(member.as_str())
        .execute(&mut *conn)
        .await
        .map_err(db_error)?;
    for (purpose, digest) in stored.token_digests() {
        sqlx::query(
            "INSERT INTO account_tokens (purpose, digest, member_id) VALUES (?, ?, ?) \
             ON CONFLICT (purpose, digest) DO UPDATE SET member_id = excluded.member_id",
        )
        .bind(purpose.as_str())
        .bind(digest.to_hex())
        .bind(member.as_str())
        .execute(&mut *conn)
        .await
        .map_err(db_error)?;
    }

    for msg in outbox {
        let created_at = micros(msg.created_at)?;
        sqlx::query(
            "INSERT INTO outbox (idempotency_key, member_id, notice, sealed, created_at, \
             attempts, next_attempt_at, status) VALUES (?, ?, ?, ?, ?, 0, ?, 'pending') \
             ON CONFLICT (idempotency_key) DO NOTHING",
        )
        .bind(msg.idempotency_key.as_str())
        .bind(msg.member.as_str())
        .bind(to_json(&msg.notice, "notice")?)
        .bind(msg.sealed.as_slice())
        .bind(created_at)
        .bind(created_at)
        .execute(&mut *conn)
        .await
        .map_err(db_error)?;
    }

    for event in audit {
        sqlx::query("INSERT INTO audit (member_id, at, event) VALUES (?, ?, ?)")
            .bind(event.member.as_str())
            .bind(micros(event.at)?)
            .bind(to_json(&event, "audit event")?)
            .execute(&mut *conn)
            .await
            .map_err(db_error)?;
    }
    Ok(version.0)
}

/// Dead-letters a pending or claimed message and appends its audit event, in the open
/// transaction on `conn`; `false` when no message changed.
async fn dead_letter_in(
    conn: &mut SqliteConnection,
    id: u64,
    now: OffsetDateTime,
    reason: &str,
) -> Result<bool, StoreError> {
    let row: Option<(String, String)> = sqlx::query_as(
        "UPDATE outbox SET status = 'dead', done_at = ?, dead_reason = ?, \
         lease_until = NULL WHERE id = ? AND status IN ('pending', 'claimed') \
         RETURNING member_id, idempotency_key",
    )
    .bind(micros(now)?)
    .bind(reason.to_owned())
    .bind(message_key(id)?)
    .fetch_optional(&mut *conn)
    .await
    .map_err(db_error)?;
    let Some((member, key)) = row else {
        return Ok(false);
    };
    let member: MemberId = member
        .parse()
        .map_err(|_| StoreError::Corrupt("outbox member id does not parse".to_owned()))?;
    let event = AuditEvent::dead_letter(now, member, &key, reason);
    sqlx::query("INSERT INTO audit (member_id, at, event) VALUES (?, ?, ?)")
        .bind(event.member.as_str())
        .bind(micros(event.at)?)
        .bind(to_json(&event, "audit event")?)
        .execute(&mut *conn)
        .await
        .map_err(db_error)?;
    Ok(true)
}

/// Claims up to `limit` due messages in the open transaction on `conn`.
async fn claim_in(
    conn: &mut SqliteConnection,
    now: i64,
    lease_until: i64,
    limit: usize,
) -> Result<Vec<OutboxMessage>, StoreError> {
    let rows = sqlx::query(
        "UPDATE outbox SET status = 'claimed', lease_until = ?, \
             attempts = MIN(attempts + 1, 4294967295) \
             WHERE id IN (SELECT id FROM outbox \
               WHERE (status = 'pending' AND next_attempt_at <= ?) \
                  OR (status = 'claimed' AND lease_until <= ?) \
               ORDER BY id LIMIT ?) \
             RETURNING *",
    )
    .bind(lease_until)
    .bind(now)
    .bind(now)
    .bind(sql_limit(limit))
    .fetch_all(&mut *conn)
    .await
    .map_err(db_error)?;
    rows.iter()
        .map(message_from_row)
        .collect::<Result<Vec<_>, _>>()
}

#[async_trait]
impl AccountStore for SqliteStore {
    async fn load(&self, member: &MemberId) -> Result<Option<AccountRecord>, StoreError> {
        let row =
            sqlx::query("SELECT member_id, version, record FROM accounts WHERE member_id = ?")
                .bind(member.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(db_error)?;
        row.as_ref().map(record_from_row).transpose()
    }

    async fn load_by_token(
        &self,
        purpose: TokenPurpose,
        digest: &Digest,
    ) -> Result<Option<AccountRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT a.member_id, a.version, a.record FROM account_tokens t \
             JOIN accounts a ON a.member_id = t.member_id \
             WHERE t.purpose = ? AND t.digest = ?",
        )
        .bind(purpose.as_str())
        .bind(digest.to_hex())
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        row.as_ref().map(record_from_row).transpose()
    }

    async fn commit(
        &self,
        record: &AccountRecord,
        expected_version: u64,
        outbox: Vec<NewMessage>,
        audit: Vec<AuditEvent>,
    ) -> Result<u64, StoreError> {
        let mut tx = self.begin_write().await?;
        let result = commit_in(&mut tx, record, expected_version, outbox, audit).await;
        settle(tx, result).await
    }

    async fn claim_due(
        &self,
        now: OffsetDateTime,
        lease: time::Duration,
        limit: usize,
    ) -> Result<Vec<OutboxMessage>, StoreError> {
        let lease_until = now
            .checked_add(lease)
            .ok_or_else(|| StoreError::Invalid("lease out of range".to_owned()))?;
        let lease_until = micros(lease_until)?;
        let now = micros(now)?;
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut tx = self.begin_write().await?;
        let result = claim_in(&mut tx, now, lease_until, limit).await;
        let mut claimed = settle(tx, result).await?;
        claimed.sort_by_key(|m| m.id);
        Ok(claimed)
    }

    async fn mark_sent(&self, id: u64, now: OffsetDateTime) -> Result<(), StoreError> {
        let query = sqlx::query(
            "UPDATE outbox SET status = 'sent', done_at = ?, lease_until = NULL \
             WHERE id = ? AND status IN ('pending', 'claimed')",
        )
        .bind(micros(now)?)
        .bind(message_key(id)?);
        self.transition(id, query).await
    }

    async fn retry_later(&self, id: u64, at: OffsetDateTime) -> Result<(), StoreError> {
        let query = sqlx::query(
            "UPDATE outbox SET status = 'pending', next_attempt_at = ?, lease_until = NULL \
             WHERE id = ? AND status IN ('pending', 'claimed')",
        )
        .bind(micros(at)?)
        .bind(message_key(id)?);
        self.transition(id, query).await
    }

    async fn dead_letter(
        &self,
        id: u64,
        now: OffsetDateTime,
        reason: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let result = dead_letter_in(&mut tx, id, now, reason).await;
        match settle(tx, result).await? {
            true => Ok(()),
            // Nothing changed: a terminal message (no effect) or an unknown id.
            false => {
                let exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM outbox WHERE id = ?")
                    .bind(message_key(id)?)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_error)?;
                exists.map(|_| ()).ok_or(StoreError::UnknownMessage { id })
            }
        }
    }

    async fn audit_log(&self, member: &MemberId) -> Result<Vec<AuditEvent>, StoreError> {
        let events: Vec<String> =
            sqlx::query_scalar("SELECT event FROM audit WHERE member_id = ? ORDER BY id")
                .bind(member.as_str())
                .fetch_all(&self.pool)
                .await
                .map_err(db_error)?;
        let what = format!("audit event of {}", member.masked());
        events.iter().map(|e| from_json(e, &what)).collect()
    }

    async fn expired_pending(
        &self,
        now: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<AccountRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT member_id, version, record FROM accounts \
             WHERE pending_expires_at <= ? AND state = 'pending_activation' \
             ORDER BY pending_expires_at, member_id LIMIT ?",
        )
        .bind(micros(now)?)
        .bind(sql_limit(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        rows.iter().map(record_from_row).collect()
    }

    async fn purge_sent(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM outbox WHERE status = 'sent' AND done_at < ?")
            .bind(micros(before)?)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(done.rows_affected())
    }

    async fn unregistered(
        &self,
        after: Option<&MemberId>,
        limit: usize,
    ) -> Result<Vec<AccountRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT member_id, version, record FROM accounts \
             WHERE state = 'unregistered' AND member_id > ? ORDER BY member_id LIMIT ?",
        )
        .bind(after.map_or("", MemberId::as_str))
        .bind(sql_limit(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        rows.iter().map(record_from_row).collect()
    }

    async fn delete_unregistered(
        &self,
        member: &MemberId,
        version: u64,
    ) -> Result<bool, StoreError> {
        let Ok(version) = i64::try_from(version) else {
            return Ok(false);
        };
        let done = sqlx::query(
            "DELETE FROM accounts WHERE member_id = ? AND version = ? AND state = 'unregistered'",
        )
        .bind(member.as_str())
        .bind(version)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(done.rows_affected() == 1)
    }

    async fn purge_audit(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM audit WHERE at < ?")
            .bind(micros(before)?)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(done.rows_affected())
    }
}

// ---------------------------------------------------------------------------------------------
// SourceThrottle
// ---------------------------------------------------------------------------------------------

#[async_trait]
impl SourceThrottle for SqliteStore {
    async fn source_failures(
        &self,
        source: &Digest,
        window: OffsetDateTime,
    ) -> Result<u32, StoreError> {
        let n: Option<i64> = sqlx::query_scalar(
            "SELECT failures FROM source_failures WHERE source = ? AND window_start = ?",
        )
        .bind(source.to_hex())
        .bind(micros(window)?)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(n.map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX)))
    }

    async fn add_source_failure(
        &self,
        source: &Digest,
        window: OffsetDateTime,
    ) -> Result<u32, StoreError> {
        // One statement: atomic, and serialised by SQLite's write lock.
        let n: i64 = sqlx::query_scalar(
            "INSERT INTO source_failures (source, window_start, failures) VALUES (?, ?, 1) \
             ON CONFLICT (source, window_start) DO UPDATE SET failures = MIN(failures, 2147483646) + 1 \
             RETURNING failures",
        )
        .bind(source.to_hex())
        .bind(micros(window)?)
        .fetch_one(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    async fn purge_sources(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM source_failures WHERE window_start < ?")
            .bind(micros(before)?)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(done.rows_affected())
    }
}

// ---------------------------------------------------------------------------------------------
// MemberDirectory
// ---------------------------------------------------------------------------------------------

/// The upsert of one member's facts.
const ENROLL: &str = "INSERT INTO members (member_id, facts) VALUES (?, ?) \
                      ON CONFLICT (member_id) DO UPDATE SET facts = excluded.facts";

/// Upserts `batch` in the open transaction on `conn`.
async fn enroll_in(conn: &mut SqliteConnection, batch: &[MemberFacts]) -> Result<u64, StoreError> {
    // Multi-row upserts: one statement per 500 members (1,000 bound parameters).
    const ROWS_PER_STATEMENT: usize = 500;
    let mut n = 0u64;
    for chunk in batch.chunks(ROWS_PER_STATEMENT) {
        let rows = chunk
            .iter()
            .map(|f| Ok((f.member.as_str(), to_json(f, "member facts")?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let mut q =
            sqlx::QueryBuilder::<sqlx::Sqlite>::new("INSERT INTO members (member_id, facts) ");
        q.push_values(rows, |mut b, (id, facts)| {
            b.push_bind(id).push_bind(facts);
        });
        q.push(" ON CONFLICT(member_id) DO UPDATE SET facts = excluded.facts");
        q.build().execute(&mut *conn).await.map_err(db_error)?;
        n = n.saturating_add(chunk.len() as u64);
    }
    Ok(n)
}

#[async_trait]
impl MemberDirectory for SqliteStore {
    async fn find(&self, member: &MemberId) -> Result<Option<MemberFacts>, StoreError> {
        let facts: Option<String> =
            sqlx::query_scalar("SELECT facts FROM members WHERE member_id = ?")
                .bind(member.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(db_error)?;
        facts
            .map(|f| from_json(&f, &format!("member facts of {}", member.masked())))
            .transpose()
    }

    async fn enroll(&self, facts: MemberFacts) -> Result<(), StoreError> {
        sqlx::query(ENROLL)
            .bind(facts.member.as_str())
            .bind(to_json(&facts, "member facts")?)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    /// Writes the whole batch in one transaction: all of it or none of it.
    async fn enroll_many(&self, batch: Vec<MemberFacts>) -> Result<u64, StoreError> {
        let mut tx = self.begin_write().await?;
        let result = enroll_in(&mut tx, &batch).await;
        settle(tx, result).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_urls_are_recognised() {
        assert_eq!(is_memory_url("sqlite::memory:"), Ok(true));
        assert_eq!(is_memory_url("sqlite://:memory:"), Ok(true));
        assert_eq!(is_memory_url("sqlite://x?mode=memory"), Ok(true));
        assert_eq!(is_memory_url("sqlite://data/afiliado.db"), Ok(false));
        assert!(is_memory_url("postgres://x").is_err());
    }

    /// SQLite ends a transaction behind sqlx's back (as it does after an I/O error), so the
    /// ROLLBACK fails and sqlx still counts the transaction open: the connection must serve the
    /// next write all the same, and an in-memory database must survive the repair.
    #[tokio::test]
    async fn a_connection_left_counted_in_a_transaction_is_repaired() {
        let store = SqliteStore::open("sqlite::memory:").await.unwrap();
        store.migrate().await.unwrap();
        store
            .enroll(MemberFacts::new(
                "1710034065".parse().unwrap(),
                "ANA",
                time::macros::date!(1990 - 01 - 01),
            ))
            .await
            .unwrap();
        for _ in 0..3 {
            let mut tx = store.begin_write().await.unwrap();
            sqlx::Executor::execute(&mut *tx, "ROLLBACK").await.unwrap();
            assert!(tx.rollback().await.is_err(), "sqlx's ROLLBACK fails");
            // The next write transaction on the pool's only connection works.
            let tx = store.begin_write().await.unwrap();
            settle(tx, Ok(())).await.unwrap();
        }
        let member = "1710034065".parse().unwrap();
        assert!(store.find(&member).await.unwrap().is_some(), "data kept");
    }

    #[test]
    fn micros_round_trip_and_floor() {
        let t = time::macros::datetime!(2026-11-22 19:36:00.123456 -5);
        let us = micros(t).unwrap();
        assert_eq!(from_micros(us, "t").unwrap(), t);
        let before_epoch = time::macros::datetime!(1969-12-31 23:59:59.9999995 UTC);
        assert_eq!(micros(before_epoch).unwrap(), -1);
        assert_eq!(
            micros(OffsetDateTime::UNIX_EPOCH).unwrap(),
            0,
            "epoch is zero"
        );
    }
}
