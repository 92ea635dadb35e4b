-- Times are seconds since the Unix epoch (UTC), audit.ts milliseconds; digests are the
-- lowercase hex of the SHA-256 of the key.
CREATE TABLE consumers (
    name       TEXT PRIMARY KEY NOT NULL,
    plan       TEXT,
    created_at BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id         TEXT PRIMARY KEY NOT NULL,
    consumer   TEXT NOT NULL,
    prefix     TEXT NOT NULL,
    digest     TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    revoked_at BIGINT
);
CREATE INDEX api_keys_consumer ON api_keys (consumer);

CREATE TABLE quota_usage (
    consumer   TEXT NOT NULL,
    period     TEXT NOT NULL,
    used       BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (consumer, period)
);

CREATE TABLE audit (
    seq    BIGSERIAL PRIMARY KEY,
    ts     BIGINT NOT NULL,
    actor  TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT,
    result TEXT NOT NULL,
    detail TEXT
);
CREATE INDEX audit_ts ON audit (ts);

-- Bumped in the same transaction as every consumer or key write: instances poll this one
-- row and reload their key index only when it moved.
CREATE TABLE sync_revision (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n  BIGINT NOT NULL
);
INSERT INTO sync_revision (id, n) VALUES (1, 0);
