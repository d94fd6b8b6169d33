-- Account data (spec: Client-Server API › Client Config): one row per (user, room, type);
-- `room_id` is '' for global account data. Room tags are the `m.tag` room account data and the
-- fully read marker is `m.fully_read`. Every write gives the row a new, higher `stream_id`, so
-- /sync finds what changed since a token; rows are never deleted, so the highest position
-- never goes back (SQLite takes MAX + 1 inside the serialised write transaction).
CREATE TABLE account_data (
    user_id   TEXT NOT NULL,
    room_id   TEXT NOT NULL DEFAULT '',
    type      TEXT NOT NULL,
    content   TEXT NOT NULL,
    stream_id BIGINT NOT NULL,
    PRIMARY KEY (user_id, room_id, type)
);
-- What changed for one user since a position; the highest position of all.
CREATE INDEX account_data_stream ON account_data (user_id, stream_id);
CREATE INDEX account_data_position ON account_data (stream_id);

-- Presence (spec: Client-Server API › Presence): the last state a user set and when they were
-- last active, with the position of the latest change in the presence stream.
CREATE TABLE presence (
    user_id        TEXT PRIMARY KEY,
    state          TEXT NOT NULL,           -- online, unavailable or offline
    status_msg     TEXT,
    last_active_ts BIGINT NOT NULL,
    stream_id      BIGINT NOT NULL
);
CREATE INDEX presence_stream ON presence (stream_id);
