-- Accounts, devices, access tokens and the bookkeeping of user-interactive auth.
CREATE TABLE users (
    user_id       TEXT PRIMARY KEY,
    password_hash TEXT,
    displayname   TEXT,
    avatar_url    TEXT,
    is_admin      BIGINT NOT NULL DEFAULT 0,  -- 0 or 1: sqlx's Any driver has no SQLite booleans
    deactivated   BIGINT NOT NULL DEFAULT 0,
    created_ts    BIGINT NOT NULL
);

CREATE TABLE devices (
    user_id      TEXT NOT NULL REFERENCES users (user_id),
    device_id    TEXT NOT NULL,
    display_name TEXT,
    last_seen_ts BIGINT,
    last_seen_ip TEXT,
    created_ts   BIGINT NOT NULL,
    PRIMARY KEY (user_id, device_id)
);

-- Tokens are stored as SHA-256 hex digests: a leaked database leaks no usable token.
CREATE TABLE access_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL,
    device_id  TEXT NOT NULL,
    created_ts BIGINT NOT NULL,
    FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, device_id) ON DELETE CASCADE
);
CREATE INDEX access_tokens_device ON access_tokens (user_id, device_id);

-- One user-interactive auth session; `completed` is a JSON array of finished stage types.
CREATE TABLE uia_sessions (
    session_id TEXT PRIMARY KEY,
    user_id    TEXT,
    completed  TEXT NOT NULL,
    created_ts BIGINT NOT NULL
);

-- Nonces handed out by the shared-secret admin registration API; each may be used once.
CREATE TABLE registration_nonces (
    nonce      TEXT PRIMARY KEY,
    created_ts BIGINT NOT NULL
);

CREATE TABLE filters (
    user_id     TEXT NOT NULL,
    filter_id   TEXT NOT NULL,
    filter_json TEXT NOT NULL,
    PRIMARY KEY (user_id, filter_id)
);
