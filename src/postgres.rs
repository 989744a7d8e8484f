//! PostgreSQL store and member directory (feature `postgres`): the backend for hosts that
//! run several instances against one database.
//!
//! [`PostgresStore`] implements [`AccountStore`] and [`MemberDirectory`] over a connection
//! pool. Every instance of the host opens its own store on the shared database; optimistic
//! concurrency (`SELECT … FOR UPDATE` plus a version check inside one transaction) keeps the
//! counters exact across instances, and the outbox is claimed with `FOR UPDATE SKIP LOCKED`
//! so concurrent dispatchers never take the same message.
//!
//! ```no_run
//! use afiliado::postgres::{PoolSettings, PostgresStore};
//!
//! # async fn run() -> Result<(), afiliado::ports::StoreError> {
//! let store = PostgresStore::open_with(
//!     "postgres://afiliado@db.internal/afiliado",
//!     PoolSettings::default().max_connections(32),
//! )
//! .await?;
//! store.migrate().await?; // idempotent; safe to run from every instance at start-up
//! # Ok(())
//! # }
//! ```
//!
//! ## Schema
//!
//! The migrations in `migrations/postgres` create `accounts` (the record as JSONB, with its
//! version, state name and activation expiry as columns), `account_tokens` (the live token
//! digests of each record, hex, rewritten on every commit), `outbox`, `audit` and
//! `members`. Nothing secret is stored in clear: records hold digests and PHC hashes,
//! outbox payloads arrive sealed.
//!
//! ## Time
//!
//! Timestamp columns are `TIMESTAMPTZ` (microseconds, UTC). Instants are truncated to the
//! microsecond before they are written; the record, notices and audit events keep their
//! instants exactly as serialized (inside the JSONB).
//!
//! ## Errors
//!
//! A database that cannot be reached or refuses an operation gives
//! [`StoreError::Unavailable`]; data that cannot be read back gives [`StoreError::Corrupt`].
//! Neither the connection URL nor its password ever appears in an error or in `Debug`.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Executor as _, PgConnection};
use time::OffsetDateTime;

use crate::core::{AccountRecord, AccountState, AuditEvent};
use crate::crypto::{Digest, TokenPurpose};
use crate::identity::{MemberId, redact_personal_data};
use crate::ports::{
    AccountStore, MemberDirectory, MemberFacts, NewMessage, OutboxMessage, OutboxStatus,
    SourceThrottle, StoreError,
};

/// Rows per statement in [`MemberDirectory::enroll_many`] (all in one transaction).
const ENROLL_CHUNK: usize = 5_000;

/// PostgreSQL's limit on identifier length, in bytes.
const MAX_IDENTIFIER_LEN: usize = 63;

// ---------------------------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------------------------

/// How [`PostgresStore::open_with`] builds its connection pool.
///
/// ```
/// use afiliado::postgres::PoolSettings;
///
/// let settings = PoolSettings::default().max_connections(16).schema("afiliado");
/// assert_eq!(settings.max_connections, 16);
/// assert_eq!(settings.schema.as_deref(), Some("afiliado"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolSettings {
    /// Most connections the pool keeps open (default 10). Must be at least 1.
    pub max_connections: u32,
    /// A schema to keep the tables in (default `None`: the server's `search_path`, normally
    /// `public`). When set, the schema is created if missing and every connection of the pool
    /// runs `SET search_path TO "<schema>"` — handy for isolating tests or tenants in one
    /// database.
    pub schema: Option<String>,
    /// How long an operation waits for a pooled connection — and [`PostgresStore::open`]
    /// for the first one, retrying while the server is unreachable — before it fails with
    /// [`StoreError::Unavailable`] (default 30 s).
    pub acquire_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_connections: 10,
            schema: None,
            acquire_timeout: Duration::from_secs(30),
        }
    }
}

impl PoolSettings {
    /// Builder: at most `n` pooled connections.
    #[must_use]
    pub fn max_connections(mut self, n: u32) -> Self {
        self.max_connections = n;
        self
    }

    /// Builder: wait at most `timeout` for a connection.
    #[must_use]
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }

    /// Builder: keep the tables in `schema` (see [`PoolSettings::schema`](#structfield.schema)).
    #[must_use]
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = Some(schema.into());
        self
    }
}

// ---------------------------------------------------------------------------------------------
// Store
// ---------------------------------------------------------------------------------------------

/// Where a store is connected, without credentials (for `Debug`).
struct Target {
    host: String,
    port: u16,
    database: Option<String>,
    user: String,
    schema: Option<String>,
    max_connections: u32,
}

/// An [`AccountStore`] and [`MemberDirectory`] on PostgreSQL.
///
/// Cloning is cheap and shares the pool. `Debug` shows host, port, database, user, schema
/// and pool size, never the password.
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
    target: Arc<Target>,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &*self.target;
        f.debug_struct("PostgresStore")
            .field("host", &t.host)
            .field("port", &t.port)
            .field("database", &t.database)
            .field("user", &t.user)
            .field("schema", &t.schema)
            .field("max_connections", &t.max_connections)
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects a pool with the default [`PoolSettings`] to `url`
    /// (`postgres://user:password@host:port/database?…`).
    ///
    /// Does not create the tables: call [`migrate`](Self::migrate) once at start-up.
    ///
    /// # Errors
    ///
    /// [`StoreError::Invalid`] for a malformed URL (the message never repeats it),
    /// [`StoreError::Unavailable`] if the first connection fails.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        Self::open_with(url, PoolSettings::default()).await
    }

    /// Connects a pool built with `settings` to `url`, creating
    /// [`settings.schema`](PoolSettings#structfield.schema) if it is set and missing.
    ///
    /// # Errors
    ///
    /// [`StoreError::Invalid`] for a malformed URL, zero `max_connections` or an empty or
    /// over-long schema name; [`StoreError::Unavailable`] if the database cannot be reached
    /// or the schema cannot be created.
    pub async fn open_with(url: &str, settings: PoolSettings) -> Result<Self, StoreError> {
        // The parser's messages may quote parts of the URL: say nothing about it.
        let options = PgConnectOptions::from_str(url)
            .map_err(|_| StoreError::Invalid("malformed PostgreSQL URL".to_owned()))?;
        if settings.max_connections == 0 {
            return Err(StoreError::Invalid(
                "max_connections must be at least 1".to_owned(),
            ));
        }
        let schema_sql = match &settings.schema {
            None => None,
            Some(s) if s.is_empty() || s.len() > MAX_IDENTIFIER_LEN || s.contains('\0') => {
                return Err(StoreError::Invalid(format!(
                    "schema name must be 1 to {MAX_IDENTIFIER_LEN} bytes without NUL"
                )));
            }
            Some(s) => Some(quote_identifier(s)),
        };
        let target = Target {
            host: options.get_host().to_owned(),
            port: options.get_port(),
            database: options.get_database().map(str::to_owned),
            user: options.get_username().to_owned(),
            schema: settings.schema.clone(),
            max_connections: settings.max_connections,
        };

        let mut pool_options = PgPoolOptions::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(settings.acquire_timeout);
        if let Some(quoted) = &schema_sql {
            let set_path: Arc<str> = Arc::from(format!("SET search_path TO {quoted}"));
            pool_options = pool_options.after_connect(move |conn: &mut PgConnection, _meta| {
                let set_path = Arc::clone(&set_path);
                Box::pin(async move {
                    conn.execute(sqlx::raw_sql(&set_path)).await?;
                    Ok(())
                })
            });
        }
        let pool = pool_options
            .connect_with(options)
            .await
            .map_err(|e| unavailable("connect", e))?;
        if let Some(quoted) = &schema_sql {
            let create = format!("CREATE SCHEMA IF NOT EXISTS {quoted}");
            if let Err(e) = pool.execute(sqlx::raw_sql(&create)).await {
                // Two instances creating the schema at once: one of them loses the race on
                // the catalog's unique index, and the schema exists all the same.
                if !is_unique_violation(&e) {
                    return Err(unavailable("create schema", e));
                }
            }
        }
        Ok(Self {
            pool,
            target: Arc::new(target),
        })
    }

    /// Creates or upgrades the tables (the embedded migrations of `migrations/postgres`).
    /// Idempotent, and safe to run from several instances at once (the migrator holds an
    /// advisory lock).
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] if a migration cannot be applied, or if the database holds
    /// migrations this version of the crate does not know.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::migrate!("./migrations/postgres")
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Unavailable(format!("migrate: {e}")))
    }

    /// The schema the tables live in, when [`PoolSettings::schema`](#structfield.schema)
    /// chose one.
    pub fn schema(&self) -> Option<&str> {
        self.target.schema.as_deref()
    }

    /// Closes the pool: waits for checked-out connections to come back and closes them all.
    /// Later operations on this store (and its clones) fail with
    /// [`StoreError::Unavailable`].
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// `"name"`, with embedded quotes doubled.
fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// SQLSTATE of a database error.
fn sqlstate(e: &sqlx::Error) -> Option<String> {
    match e {
        sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
        _ => None,
    }
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    sqlstate(e).as_deref() == Some("23505")
}

/// Unique violation, serialization failure or deadlock: a concurrent writer won.
fn is_concurrency_failure(e: &sqlx::Error) -> bool {
    matches!(sqlstate(e).as_deref(), Some("23505" | "40001" | "40P01"))
}

/// Maps a driver error. Decoding problems mean stored data is unreadable; an unencodable
/// argument means the request was out of range; anything else is the database refusing or
/// being unreachable. Addresses and cédula-like numbers a server message might quote are
/// masked.
fn unavailable(what: &str, e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::ColumnIndexOutOfBounds { .. }
        | sqlx::Error::TypeNotFound { .. } => {
            StoreError::Corrupt(redact_personal_data(&format!("{what}: {e}")))
        }
        sqlx::Error::Encode(_) => StoreError::Invalid(redact_personal_data(&format!(
            "{what}: value out of range for PostgreSQL: {e}"
        ))),
        _ => StoreError::Unavailable(redact_personal_data(&format!("{what}: {e}"))),
    }
}

/// Describes a serde_json failure without quoting the offending data.
fn json_problem(e: &serde_json::Error) -> String {
    format!(
        "{:?} error at line {} column {}",
        e.classify(),
        e.line(),
        e.column()
    )
}

fn to_json<T: serde::Serialize>(what: &str, value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| {
        StoreError::Invalid(format!("{what} does not serialize: {}", json_problem(&e)))
    })
}

fn from_json<T: serde::de::DeserializeOwned>(what: &str, json: &str) -> Result<T, StoreError> {
    serde_json::from_str(json)
        .map_err(|e| StoreError::Corrupt(format!("{what} does not decode: {}", json_problem(&e))))
}

/// `t` in UTC, truncated to the microsecond (TIMESTAMPTZ precision), so that every value
/// written is stored exactly. An instant whose UTC date is out of range is refused here
/// (the driver's own conversion would panic).
fn micros(t: OffsetDateTime) -> Result<OffsetDateTime, StoreError> {
    let utc = t
        .checked_to_offset(time::UtcOffset::UTC)
        .ok_or_else(|| StoreError::Invalid("instant out of range".to_owned()))?;
    let sub = i64::from(utc.nanosecond() % 1_000);
    Ok(utc
        .checked_sub(time::Duration::nanoseconds(sub))
        .unwrap_or(utc))
}

fn version_to_db(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Invalid(format!("version {v} out of range")))
}

/// A member id as it may appear in an error (which can reach logs): masked, never whole.
fn masked(member: &str) -> String {
    member
        .parse::<MemberId>()
        .map(|m| m.masked())
        .unwrap_or_else(|_| "<unparseable id>".to_owned())
}

fn version_from_db(member: &str, v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| {
        StoreError::Corrupt(format!(
            "negative version {v} for member {}",
            masked(member)
        ))
    })
}

fn limit_to_db(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

fn decode_record(member: &str, version: i64, json: &str) -> Result<AccountRecord, StoreError> {
    let mut record: AccountRecord =
        from_json(&format!("account record of {}", masked(member)), json)?;
    record.version = version_from_db(member, version)?;
    Ok(record)
}

fn parse_member(s: &str) -> Result<MemberId, StoreError> {
    // Not even an unparseable id is quoted: it may still be most of a cédula or an address.
    s.parse()
        .map_err(|_| StoreError::Corrupt("stored member id does not parse".to_owned()))
}

/// The activation expiry indexed for [`AccountStore::expired_pending`].
fn pending_expiry(record: &AccountRecord) -> Option<OffsetDateTime> {
    match &record.state {
        AccountState::PendingActivation(p) => Some(p.link.expires_at),
        _ => None,
    }
}

/// An outbox row as selected by [`OUTBOX_COLUMNS`].
type OutboxRow = (
    i64,
    String,
    String,
    String,
    Vec<u8>,
    OffsetDateTime,
    i32,
    OffsetDateTime,
    String,
    Option<OffsetDateTime>,
    Option<OffsetDateTime>,
    Option<String>,
);

const OUTBOX_COLUMNS: &str = "id, idempotency_key, member_id, notice::text, sealed, created_at, \
     attempts, next_attempt_at, status, lease_until, done_at, dead_reason";

fn decode_message(row: OutboxRow) -> Result<OutboxMessage, StoreError> {
    let (
        id,
        idempotency_key,
        member,
        notice,
        sealed,
        created_at,
        attempts,
        next_attempt_at,
        status,
        lease_until,
        done_at,
        dead_reason,
    ) = row;
    let id =
        u64::try_from(id).map_err(|_| StoreError::Corrupt(format!("negative outbox id {id}")))?;
    let missing = |col: &str| StoreError::Corrupt(format!("outbox message {id}: {col} missing"));
    let status = match status.as_str() {
        "pending" => OutboxStatus::Pending,
        "claimed" => OutboxStatus::Claimed {
            lease_until: lease_until.ok_or_else(|| missing("lease_until"))?,
        },
        "sent" => OutboxStatus::Sent {
            at: done_at.ok_or_else(|| missing("done_at"))?,
        },
        "dead" => OutboxStatus::DeadLetter {
            at: done_at.ok_or_else(|| missing("done_at"))?,
            reason: dead_reason.unwrap_or_default(),
        },
        other => {
            return Err(StoreError::Corrupt(format!(
                "outbox message {id}: unknown status {other:?}"
            )));
        }
    };
    Ok(OutboxMessage {
        id,
        idempotency_key,
        member: parse_member(&member)?,
        notice: from_json(&format!("notice of outbox message {id}"), &notice)?,
        sealed,
        created_at,
        attempts: u32::try_from(attempts).unwrap_or(0),
        next_attempt_at,
        status,
    })
}

/// The outbox id as stored, or `UnknownMessage` for ids no row can have.
fn message_id(id: u64) -> Result<i64, StoreError> {
    i64::try_from(id).map_err(|_| StoreError::UnknownMessage { id })
}

// ---------------------------------------------------------------------------------------------
// AccountStore
// ---------------------------------------------------------------------------------------------

/// Everything a commit writes, prepared before the transaction opens.
struct CommitRows {
    member: String,
    expected: i64,
    version: i64,
    state: String,
    pending_expires_at: Option<OffsetDateTime>,
    record: String,
    token_purposes: Vec<String>,
    token_digests: Vec<String>,
    outbox_keys: Vec<String>,
    outbox_members: Vec<String>,
    outbox_notices: Vec<String>,
    outbox_sealed: Vec<Vec<u8>>,
    outbox_created: Vec<OffsetDateTime>,
    audit_members: Vec<String>,
    audit_at: Vec<OffsetDateTime>,
    audit_events: Vec<String>,
}

impl CommitRows {
    fn new(
        record: &AccountRecord,
        expected_version: u64,
        outbox: Vec<NewMessage>,
        audit: Vec<AuditEvent>,
    ) -> Result<Self, StoreError> {
        let version_u = expected_version
            .checked_add(1)
            .ok_or_else(|| StoreError::Invalid("version overflow".to_owned()))?;
        let version = version_to_db(version_u)?;
        let expected = version_to_db(expected_version)?;
        let member = record.member.as_str().to_owned();
        let mut stored = record.clone();
        stored.version = version_u;

        let mut seen = HashSet::new();
        let (mut token_purposes, mut token_digests) = (Vec::new(), Vec::new());
        for (purpose, digest) in record.token_digests() {
            let hex = digest.to_hex();
            if seen.insert((purpose, hex.clone())) {
                token_purposes.push(purpose.as_str().to_owned());
                token_digests.push(hex);
            }
        }

        let mut rows = Self {
            state: record.state.kind().to_string(),
            pending_expires_at: pending_expiry(record).map(micros).transpose()?,
            record: to_json("account record", &stored)?,
            member,
            expected,
            version,
            token_purposes,
            token_digests,
            outbox_keys: Vec::with_capacity(outbox.len()),
            outbox_members: Vec::with_capacity(outbox.len()),
            outbox_notices: Vec::with_capacity(outbox.len()),
            outbox_sealed: Vec::with_capacity(outbox.len()),
            outbox_created: Vec::with_capacity(outbox.len()),
            audit_members: Vec::with_capacity(audit.len()),
            audit_at: Vec::with_capacity(audit.len()),
            audit_events: Vec::with_capacity(audit.len()),
        };
        for msg in outbox {
            rows.outbox_notices.push(to_json("notice", &msg.notice)?);
            rows.outbox_keys.push(msg.idempotency_key);
            rows.outbox_members.push(msg.member.as_str().to_owned());
            rows.outbox_sealed.push(msg.sealed);
            rows.outbox_created.push(micros(msg.created_at)?);
        }
        for event in audit {
            rows.audit_events.push(to_json("audit event", &event)?);
            rows.audit_members.push(event.member.as_str().to_owned());
            rows.audit_at.push(micros(event.at)?);
        }
        Ok(rows)
    }
}

/// How a commit attempt ended short of success.
enum CommitFailure {
    /// The stored version differs (`None`: unknown, re-read it).
    Conflict(Option<Option<i64>>),
    /// Anything else.
    Store(StoreError),
}

impl From<StoreError> for CommitFailure {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

/// Maps a statement error inside a commit: a concurrent writer's win is a conflict.
fn commit_error(what: &'static str) -> impl Fn(sqlx::Error) -> CommitFailure {
    move |e| {
        if is_concurrency_failure(&e) {
            CommitFailure::Conflict(None)
        } else {
            CommitFailure::Store(unavailable(what, e))
        }
    }
}

impl PostgresStore {
    async fn try_commit(&self, rows: &CommitRows) -> Result<(), CommitFailure> {
        let mut tx = self.pool.begin().await.map_err(commit_error("begin"))?;
        let found: Option<i64> =
            sqlx::query_scalar("SELECT version FROM accounts WHERE member_id = $1 FOR UPDATE")
                .bind(&rows.member)
                .fetch_optional(&mut *tx)
                .await
                .map_err(commit_error("lock record"))?;
        if found.unwrap_or(0) != rows.expected {
            return Err(CommitFailure::Conflict(Some(found)));
        }
        let written = if found.is_none() {
            sqlx::query(
                "INSERT INTO accounts (member_id, version, state, pending_expires_at, record) \
                 VALUES ($1, $2, $3, $4, $5::jsonb) ON CONFLICT (member_id) DO NOTHING",
            )
            .bind(&rows.member)
            .bind(rows.version)
            .bind(&rows.state)
            .bind(rows.pending_expires_at)
            .bind(&rows.record)
            .execute(&mut *tx)
            .await
            .map_err(commit_error("insert record"))?
        } else {
            sqlx::query(
                "UPDATE accounts SET version = $2, state = $3, pending_expires_at = $4, \
                 record = $5::jsonb WHERE member_id = $1 AND version = $6",
            )
            .bind(&rows.member)
            .bind(rows.version)
            .bind(&rows.state)
            .bind(rows.pending_expires_at)
            .bind(&rows.record)
            .bind(rows.expected)
            .execute(&mut *tx)
            .await
            .map_err(commit_error("update record"))?
        };
        if written.rows_affected() != 1 {
            // A concurrent first commit inserted the record after our snapshot.
            return Err(CommitFailure::Conflict(None));
        }

        sqlx::query("DELETE FROM account_tokens WHERE member_id = $1")
            .bind(&rows.member)
            .execute(&mut *tx)
            .await
            .map_err(commit_error("clear tokens"))?;
        if !rows.token_digests.is_empty() {
            sqlx::query(
                "INSERT INTO account_tokens (purpose, digest, member_id) \
                 SELECT p, d, $3 FROM UNNEST($1::text[], $2::text[]) AS t(p, d) \
                 ON CONFLICT (purpose, digest) DO UPDATE SET member_id = EXCLUDED.member_id",
            )
            .bind(&rows.token_purposes)
            .bind(&rows.token_digests)
            .bind(&rows.member)
            .execute(&mut *tx)
            .await
            .map_err(commit_error("index tokens"))?;
        }
        if !rows.outbox_keys.is_empty() {
            sqlx::query(
                "INSERT INTO outbox (idempotency_key, member_id, notice, sealed, created_at, \
                 attempts, next_attempt_at, status) \
                 SELECT k, m, n::jsonb, s, c, 0, c, 'pending' \
                 FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bytea[], $5::timestamptz[]) \
                 WITH ORDINALITY AS t(k, m, n, s, c, o) ORDER BY o \
                 ON CONFLICT (idempotency_key) DO NOTHING",
            )
            .bind(&rows.outbox_keys)
            .bind(&rows.outbox_members)
            .bind(&rows.outbox_notices)
            .bind(&rows.outbox_sealed)
            .bind(&rows.outbox_created)
            .execute(&mut *tx)
            .await
            .map_err(commit_error("queue outbox"))?;
        }
        if !rows.audit_events.is_empty() {
            sqlx::query(
                "INSERT INTO audit (member_id, at, event) SELECT m, a, e::jsonb \
                 FROM UNNEST($1::text[], $2::timestamptz[], $3::text[]) \
                 WITH ORDINALITY AS t(m, a, e, o) ORDER BY o",
            )
            .bind(&rows.audit_members)
            .bind(&rows.audit_at)
            .bind(&rows.audit_events)
            .execute(&mut *tx)
            .await
            .map_err(commit_error("append audit"))?;
        }
        tx.commit().await.map_err(commit_error("commit"))?;
        Ok(())
    }

    /// The stored version of `member`, for a conflict report (best effort).
    async fn current_version(&self, member: &str) -> Option<u64> {
        let found: Option<i64> =
            sqlx::query_scalar("SELECT version FROM accounts WHERE member_id = $1")
                .bind(member)
                .fetch_optional(&self.pool)
                .await
                .ok()
                .flatten();
        found.and_then(|v| u64::try_from(v).ok())
    }

    async fn settle(
        &self,
        id: u64,
        sql: &str,
        at: OffsetDateTime,
        reason: Option<&str>,
    ) -> Result<(), StoreError> {
        let db_id = message_id(id)?;
        let mut query = sqlx::query(sql).bind(db_id).bind(micros(at)?);
        if let Some(reason) = reason {
            query = query.bind(reason);
        }
        let done = query
            .execute(&self.pool)
            .await
            .map_err(|e| unavailable("outbox update", e))?;
        if done.rows_affected() > 0 {
            return Ok(());
        }
        let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM outbox WHERE id = $1)")
            .bind(db_id)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| unavailable("outbox lookup", e))?;
        if exists {
            Ok(())
        } else {
            Err(StoreError::UnknownMessage { id })
        }
    }
}

#[async_trait]
impl AccountStore for PostgresStore {
    async fn load(&self, member: &MemberId) -> Result<Option<AccountRecord>, StoreError> {
        let row: Option<(i64, String)> =
            sqlx::query_as("SELECT version, record::text FROM accounts WHERE member_id = $1")
                .bind(member.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| unavailable("load", e))?;
        row.map(|(v, json)| decode_record(member.as_str(), v, &json))
            .transpose()
    }

    async fn load_by_token(
        &self,
        purpose: TokenPurpose,
        digest: &Digest,
    ) -> Result<Option<AccountRecord>, StoreError> {
        let row: Option<(String, i64, String)> = sqlx::query_as(
            "SELECT a.member_id, a.version, a.record::text FROM account_tokens t \
             JOIN accounts a ON a.member_id = t.member_id \
             WHERE t.purpose = $1 AND t.digest = $2",
        )
        .bind(purpose.as_str())
        .bind(digest.to_hex())
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| unavailable("load by token", e))?;
        row.map(|(m, v, json)| decode_record(&m, v, &json))
            .transpose()
    }

    async fn commit(
        &self,
        record: &AccountRecord,
        expected_version: u64,
        outbox: Vec<NewMessage>,
        audit: Vec<AuditEvent>,
    ) -> Result<u64, StoreError> {
        let rows = CommitRows::new(record, expected_version, outbox, audit)?;
        match self.try_commit(&rows).await {
            Ok(()) => version_from_db(&rows.member, rows.version),
            Err(CommitFailure::Store(e)) => Err(e),
            Err(CommitFailure::Conflict(found)) => {
                let found = match found {
                    Some(found) => found.and_then(|v| u64::try_from(v).ok()),
                    None => self.current_version(&rows.member).await,
                };
                Err(StoreError::Conflict {
                    member: record.member.clone(),
                    expected: expected_version,
                    found,
                })
            }
        }
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
        if limit == 0 {
            return Ok(Vec::new());
        }
        let sql = format!(
            "UPDATE outbox SET status = 'claimed', lease_until = $2, \
             attempts = CASE WHEN attempts < 2147483647 THEN attempts + 1 ELSE attempts END \
             WHERE id IN (SELECT id FROM outbox \
                 WHERE (status = 'pending' AND next_attempt_at <= $1) \
                    OR (status = 'claimed' AND lease_until <= $1) \
                 ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED) \
             RETURNING {OUTBOX_COLUMNS}"
        );
        let rows: Vec<OutboxRow> = sqlx::query_as(&sql)
            .bind(micros(now)?)
            .bind(micros(lease_until)?)
            .bind(limit_to_db(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| unavailable("claim outbox", e))?;
        let mut claimed = rows
            .into_iter()
            .map(decode_message)
            .collect::<Result<Vec<_>, _>>()?;
        claimed.sort_by_key(|m| m.id);
        Ok(claimed)
    }

    async fn mark_sent(&self, id: u64, now: OffsetDateTime) -> Result<(), StoreError> {
        self.settle(
            id,
            "UPDATE outbox SET status = 'sent', done_at = $2, lease_until = NULL \
             WHERE id = $1 AND status IN ('pending', 'claimed')",
            now,
            None,
        )
        .await
    }

    async fn retry_later(&self, id: u64, at: OffsetDateTime) -> Result<(), StoreError> {
        self.settle(
            id,
            "UPDATE outbox SET status = 'pending', next_attempt_at = $2, lease_until = NULL \
             WHERE id = $1 AND status IN ('pending', 'claimed')",
            at,
            None,
        )
        .await
    }

    async fn dead_letter(
        &self,
        id: u64,
        now: OffsetDateTime,
        reason: &str,
    ) -> Result<(), StoreError> {
        let db_id = message_id(id)?;
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(|e| unavailable("dead letter", e))?;
        let row: Option<(String, String)> = sqlx::query_as(
            "UPDATE outbox SET status = 'dead', done_at = $2, dead_reason = $3, \
             lease_until = NULL WHERE id = $1 AND status IN ('pending', 'claimed') \
             RETURNING member_id, idempotency_key",
        )
        .bind(db_id)
        .bind(micros(now)?)
        .bind(reason)
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| unavailable("dead letter", e))?;
        let Some((member, key)) = row else {
            let _ = tx.rollback().await;
            let exists: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM outbox WHERE id = $1)")
                    .bind(db_id)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(|e| unavailable("outbox lookup", e))?;
            return if exists {
                Ok(())
            } else {
                Err(StoreError::UnknownMessage { id })
            };
        };
        let member: MemberId = member
            .parse()
            .map_err(|_| StoreError::Corrupt("outbox member id does not parse".to_owned()))?;
        let event = AuditEvent::dead_letter(now, member, &key, reason);
        sqlx::query("INSERT INTO audit (member_id, at, event) VALUES ($1, $2, $3::jsonb)")
            .bind(event.member.as_str())
            .bind(micros(event.at)?)
            .bind(to_json("audit event", &event)?)
            .execute(&mut *tx)
            .await
            .map_err(|e| unavailable("dead letter audit", e))?;
        tx.commit()
            .await
            .map_err(|e| unavailable("dead letter", e))?;
        Ok(())
    }

    async fn audit_log(&self, member: &MemberId) -> Result<Vec<AuditEvent>, StoreError> {
        let rows: Vec<String> =
            sqlx::query_scalar("SELECT event::text FROM audit WHERE member_id = $1 ORDER BY id")
                .bind(member.as_str())
                .fetch_all(&self.pool)
                .await
                .map_err(|e| unavailable("audit log", e))?;
        rows.iter()
            .map(|json| from_json(&format!("audit event of {}", member.masked()), json))
            .collect()
    }

    async fn expired_pending(
        &self,
        now: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<AccountRecord>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let rows: Vec<(String, i64, String)> = sqlx::query_as(
            "SELECT member_id, version, record::text FROM accounts \
             WHERE pending_expires_at <= $1 AND state = 'pending_activation' \
             ORDER BY pending_expires_at, member_id LIMIT $2",
        )
        .bind(micros(now)?)
        .bind(limit_to_db(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| unavailable("expired pending", e))?;
        let mut out = Vec::with_capacity(rows.len());
        for (member, version, json) in rows {
            let record = decode_record(&member, version, &json)?;
            // The column holds the expiry truncated to the microsecond: check it exactly.
            if pending_expiry(&record).is_some_and(|at| at <= now) {
                out.push(record);
            }
        }
        Ok(out)
    }

    async fn purge_audit(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM audit WHERE at < $1")
            .bind(micros(before)?)
            .execute(&self.pool)
            .await
            .map_err(|e| unavailable("purge audit", e))?;
        Ok(done.rows_affected())
    }

    async fn purge_sent(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM outbox WHERE status = 'sent' AND done_at < $1")
            .bind(micros(before)?)
            .execute(&self.pool)
            .await
            .map_err(|e| unavailable("purge sent mail", e))?;
        Ok(done.rows_affected())
    }

    async fn unregistered(
        &self,
        after: Option<&MemberId>,
        limit: usize,
    ) -> Result<Vec<AccountRecord>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let rows: Vec<(String, i64, String)> = sqlx::query_as(
            "SELECT member_id, version, record::text FROM accounts \
             WHERE state = 'unregistered' AND member_id > $1 ORDER BY member_id LIMIT $2",
        )
        .bind(after.map_or("", MemberId::as_str))
        .bind(limit_to_db(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| unavailable("unregistered records", e))?;
        rows.iter()
            .map(|(member, version, json)| decode_record(member, *version, json))
            .collect()
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
            "DELETE FROM accounts WHERE member_id = $1 AND version = $2 AND state = 'unregistered'",
        )
        .bind(member.as_str())
        .bind(version)
        .execute(&self.pool)
        .await
        .map_err(|e| unavailable("delete unregistered record", e))?;
        Ok(done.rows_affected() == 1)
    }
}

// ---------------------------------------------------------------------------------------------
// SourceThrottle
// ---------------------------------------------------------------------------------------------

#[async_trait]
impl SourceThrottle for PostgresStore {
    async fn source_failures(
        &self,
        source: &Digest,
        window: OffsetDateTime,
    ) -> Result<u32, StoreError> {
        let n: Option<i32> = sqlx::query_scalar(
            "SELECT failures FROM source_failures WHERE source = $1 AND window_start = $2",
        )
        .bind(source.to_hex())
        .bind(micros(window)?)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| unavailable("source failures", e))?;
        Ok(n.map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX)))
    }

    async fn add_source_failure(
        &self,
        source: &Digest,
        window: OffsetDateTime,
    ) -> Result<u32, StoreError> {
        // One atomic upsert: concurrent instances never lose an increment.
        let n: i32 = sqlx::query_scalar(
            "INSERT INTO source_failures (source, window_start, failures) VALUES ($1, $2, 1) \
             ON CONFLICT (source, window_start) \
             DO UPDATE SET failures = LEAST(source_failures.failures, 2147483646) + 1 \
             RETURNING failures",
        )
        .bind(source.to_hex())
        .bind(micros(window)?)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| unavailable("add source failure", e))?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    async fn purge_sources(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM source_failures WHERE window_start < $1")
            .bind(micros(before)?)
            .execute(&self.pool)
            .await
            .map_err(|e| unavailable("purge sources", e))?;
        Ok(done.rows_affected())
    }
}

// ---------------------------------------------------------------------------------------------
// MemberDirectory
// ---------------------------------------------------------------------------------------------

#[async_trait]
impl MemberDirectory for PostgresStore {
    async fn find(&self, member: &MemberId) -> Result<Option<MemberFacts>, StoreError> {
        let row: Option<String> =
            sqlx::query_scalar("SELECT facts::text FROM members WHERE member_id = $1")
                .bind(member.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| unavailable("find member", e))?;
        row.map(|json| from_json(&format!("member facts of {}", member.masked()), &json))
            .transpose()
    }

    async fn enroll(&self, facts: MemberFacts) -> Result<(), StoreError> {
        let json = to_json("member facts", &facts)?;
        sqlx::query(
            "INSERT INTO members (member_id, facts) VALUES ($1, $2::jsonb) \
             ON CONFLICT (member_id) DO UPDATE SET facts = EXCLUDED.facts",
        )
        .bind(facts.member.as_str())
        .bind(json)
        .execute(&self.pool)
        .await
        .map_err(|e| unavailable("enroll member", e))?;
        Ok(())
    }

    /// One transaction for the whole batch; a member listed twice ends with its last facts,
    /// as if enrolled one by one. Returns the batch's length.
    async fn enroll_many(&self, batch: Vec<MemberFacts>) -> Result<u64, StoreError> {
        let total = u64::try_from(batch.len()).unwrap_or(u64::MAX);
        if batch.is_empty() {
            return Ok(0);
        }
        // ON CONFLICT DO UPDATE cannot touch one row twice in a statement: keep the last.
        let mut last: HashMap<String, usize> = HashMap::with_capacity(batch.len());
        for (i, facts) in batch.iter().enumerate() {
            last.insert(facts.member.as_str().to_owned(), i);
        }
        let mut ids = Vec::with_capacity(last.len());
        let mut docs = Vec::with_capacity(last.len());
        for (i, facts) in batch.iter().enumerate() {
            if last.get(facts.member.as_str()) == Some(&i) {
                ids.push(facts.member.as_str().to_owned());
                docs.push(to_json("member facts", facts)?);
            }
        }
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(|e| unavailable("enroll batch", e))?;
        for (ids, docs) in ids.chunks(ENROLL_CHUNK).zip(docs.chunks(ENROLL_CHUNK)) {
            sqlx::query(
                "INSERT INTO members (member_id, facts) \
                 SELECT m, f::jsonb FROM UNNEST($1::text[], $2::text[]) AS t(m, f) \
                 ON CONFLICT (member_id) DO UPDATE SET facts = EXCLUDED.facts",
            )
            .bind(ids)
            .bind(docs)
            .execute(&mut *tx)
            .await
            .map_err(|e| unavailable("enroll batch", e))?;
        }
        tx.commit()
            .await
            .map_err(|e| unavailable("enroll batch", e))?;
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn micros_truncates_sub_microseconds_only() {
        let t = time::macros::datetime!(2026-11-22 19:36:00.123_456_789 -5);
        assert_eq!(
            micros(t).unwrap(),
            time::macros::datetime!(2026-11-22 19:36:00.123_456 -5)
        );
        let exact = time::macros::datetime!(2026-11-22 19:36:00.123_456 UTC);
        assert_eq!(micros(exact).unwrap(), exact);
    }

    /// The driver converts to UTC with a panicking `to_offset`: an instant whose UTC date
    /// leaves the representable range is refused before it gets there.
    #[test]
    fn instants_beyond_the_utc_range_are_refused_not_bound() {
        let edge = time::macros::datetime!(+9999-12-31 23:59:59 -5);
        assert!(matches!(micros(edge), Err(StoreError::Invalid(_))));
        let edge = time::macros::datetime!(-9999-01-01 00:00 +5);
        assert!(matches!(micros(edge), Err(StoreError::Invalid(_))));
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_identifier("plain"), "\"plain\"");
        assert_eq!(quote_identifier("a\"b"), "\"a\"\"b\"");
    }

    #[test]
    fn settings_builder() {
        let s = PoolSettings::default().max_connections(3).schema("x");
        assert_eq!(s.max_connections, 3);
        assert_eq!(s.schema.as_deref(), Some("x"));
        assert_eq!(PoolSettings::default().schema, None);
    }

    #[test]
    fn row_errors_never_carry_a_whole_member_id() {
        // A cédula with a wrong check digit, an address, a valid cédula.
        for stored in ["1710034064", "ana.quishpe@example.ec", "1710034065"] {
            let mut errors = vec![
                version_from_db(stored, -1).err(),
                decode_record(stored, 1, "{").err(),
            ];
            if stored != "1710034065" {
                errors.push(parse_member(stored).err());
            }
            for err in errors {
                let err = err.expect("an error");
                for text in [err.to_string(), format!("{err:?}")] {
                    assert!(!text.contains(stored), "{text}");
                    assert!(!text.contains("ana.quishpe"), "{text}");
                }
            }
        }
    }

    #[tokio::test]
    async fn bad_url_never_echoes_it() {
        let err = PostgresStore::open("postgres://u:s3cret@host:notaport/db")
            .await
            .err();
        let text = format!("{err:?}");
        assert!(!text.contains("s3cret"), "{text}");
        assert!(matches!(err, Some(StoreError::Invalid(_))));
    }
}
