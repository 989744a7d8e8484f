-- afiliado: PostgreSQL schema, version 1.
-- Unqualified names: the tables live in the first schema of the connection's search_path.

CREATE TABLE accounts (
    member_id          TEXT PRIMARY KEY,
    version            BIGINT NOT NULL CHECK (version > 0),
    state              TEXT NOT NULL,
    pending_expires_at TIMESTAMPTZ NULL,
    record             JSONB NOT NULL
);
CREATE INDEX accounts_pending_expires_at ON accounts (pending_expires_at)
    WHERE pending_expires_at IS NOT NULL;

-- Live token digests of each record (AccountRecord::token_digests), rewritten on every commit.
CREATE TABLE account_tokens (
    purpose   TEXT NOT NULL,
    digest    TEXT NOT NULL,
    member_id TEXT NOT NULL REFERENCES accounts (member_id) ON DELETE CASCADE,
    PRIMARY KEY (purpose, digest)
);
CREATE INDEX account_tokens_member_id ON account_tokens (member_id);

CREATE TABLE outbox (
    id              BIGSERIAL PRIMARY KEY,
    idempotency_key TEXT NOT NULL UNIQUE,
    member_id       TEXT NOT NULL,
    notice          JSONB NOT NULL,
    sealed          BYTEA NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    attempts        INT NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'claimed', 'sent', 'dead')),
    lease_until     TIMESTAMPTZ NULL,
    done_at         TIMESTAMPTZ NULL,
    dead_reason     TEXT NULL
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
CREATE INDEX outbox_lease ON outbox (lease_until) WHERE status = 'claimed';

CREATE TABLE audit (
    id        BIGSERIAL PRIMARY KEY,
    member_id TEXT NOT NULL,
    at        TIMESTAMPTZ NOT NULL,
    event     JSONB NOT NULL
);
CREATE INDEX audit_member ON audit (member_id, id);
CREATE INDEX audit_at ON audit (at);

CREATE TABLE members (
    member_id TEXT PRIMARY KEY,
    facts     JSONB NOT NULL
);
