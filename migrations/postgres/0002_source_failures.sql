-- Failures per client source (a keyed pseudonym of the address, hex) in fixed windows:
-- per-source throttling shared by every instance on this database.
CREATE TABLE source_failures (
    source       TEXT        NOT NULL,
    window_start TIMESTAMPTZ NOT NULL,
    failures     INTEGER     NOT NULL CHECK (failures > 0),
    PRIMARY KEY (source, window_start)
);
CREATE INDEX source_failures_window ON source_failures (window_start);
