-- afiliado: SQLite schema, version 1.
-- Instants are INTEGER unix microseconds (UTC); JSON columns hold the crate's serde forms.

-- One row per member with an account record. `record` is the whole AccountRecord as JSON;
-- `version`, `state` and `pending_expires_at` are copies kept for concurrency control and
-- for the retention query.
CREATE TABLE accounts (
    member_id          TEXT    PRIMARY KEY NOT NULL,
    version            INTEGER NOT NULL,
    state              TEXT    NOT NULL,
    pending_expires_at INTEGER NULL,
    record             TEXT    NOT NULL
);
CREATE INDEX accounts_pending_expires_at ON accounts (pending_expires_at);

-- The live token digests of each record (AccountRecord::token_digests), rewritten on every
-- commit of the member.
CREATE TABLE account_tokens (
    purpose   TEXT NOT NULL,
    digest    TEXT NOT NULL,
    member_id TEXT NOT NULL REFERENCES accounts (member_id) ON DELETE CASCADE,
    PRIMARY KEY (purpose, digest)
);
CREATE INDEX account_tokens_member_id ON account_tokens (member_id);

-- Transactional outbox. `sealed` is the already-encrypted payload; status is one of
-- pending, claimed, sent, dead.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    idempotency_key TEXT    NOT NULL UNIQUE,
    member_id       TEXT    NOT NULL,
    notice          TEXT    NOT NULL,
    sealed          BLOB    NOT NULL,
    created_at      INTEGER NOT NULL,
    attempts        INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    status          TEXT    NOT NULL CHECK (status IN ('pending', 'claimed', 'sent', 'dead')),
    lease_until     INTEGER NULL,
    done_at         INTEGER NULL,
    dead_reason     TEXT    NULL
);
CREATE INDEX outbox_status_next_attempt_at ON outbox (status, next_attempt_at);

-- Append-only audit log; `event` is the whole AuditEvent as JSON.
CREATE TABLE audit (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    member_id TEXT    NOT NULL,
    at        INTEGER NOT NULL,
    event     TEXT    NOT NULL
);
CREATE INDEX audit_member_id_id ON audit (member_id, id);
CREATE INDEX audit_at ON audit (at);

-- The member directory (MemberFacts as JSON).
CREATE TABLE members (
    member_id TEXT PRIMARY KEY NOT NULL,
    facts     TEXT NOT NULL
);
