-- Rooms and their event graph. Every room event is a signed PDU stored as the exact canonical
-- JSON that its hashes and signatures cover, beside the columns queries need.
CREATE TABLE rooms (
    room_id      TEXT PRIMARY KEY,
    room_version TEXT NOT NULL,
    creator      TEXT NOT NULL,
    is_public    BIGINT NOT NULL DEFAULT 0,  -- listed in the room directory
    created_ts   BIGINT NOT NULL
);

-- event_nid interns the event ID; stream_ordering is the global order /sync and /messages
-- follow (NULL for outliers, which are not part of any timeline).
CREATE TABLE events (
    event_nid        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id         TEXT NOT NULL UNIQUE,
    room_id          TEXT NOT NULL,
    type             TEXT NOT NULL,
    state_key        TEXT,
    sender           TEXT NOT NULL,
    depth            BIGINT NOT NULL,
    origin_server_ts BIGINT NOT NULL,
    stream_ordering  BIGINT UNIQUE,
    state_group      BIGINT,                 -- the room state after this event
    json             TEXT NOT NULL,
    outlier          BIGINT NOT NULL DEFAULT 0,
    rejected         BIGINT NOT NULL DEFAULT 0,
    soft_failed      BIGINT NOT NULL DEFAULT 0,
    redacted_by      TEXT
);
CREATE INDEX events_room_stream ON events (room_id, stream_ordering);

-- (type, state_key) pairs interned to integers.
CREATE TABLE state_keys (
    state_key_nid BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    type          TEXT NOT NULL,
    state_key     TEXT NOT NULL,
    UNIQUE (type, state_key)
);

-- State snapshots stored as deltas against a parent; chains are cut by a full snapshot every
-- few links, so loading any state reads a bounded number of groups.
CREATE TABLE state_groups (
    group_id  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    room_id   TEXT NOT NULL,
    parent    BIGINT,
    chain_len BIGINT NOT NULL
);
CREATE TABLE state_group_entries (
    group_id      BIGINT NOT NULL,
    state_key_nid BIGINT NOT NULL,
    event_nid     BIGINT NOT NULL,
    PRIMARY KEY (group_id, state_key_nid)
);

-- The room's state now, for fast membership and state queries.
CREATE TABLE current_state (
    room_id       TEXT NOT NULL,
    type          TEXT NOT NULL,
    state_key     TEXT NOT NULL,
    event_nid     BIGINT NOT NULL,
    membership    TEXT,                      -- for m.room.member events
    PRIMARY KEY (room_id, type, state_key)
);
CREATE INDEX current_state_by_key ON current_state (type, state_key);

-- Events with no children yet: the prev_events of the next event sent in the room.
CREATE TABLE forward_extremities (
    room_id   TEXT NOT NULL,
    event_nid BIGINT NOT NULL,
    PRIMARY KEY (room_id, event_nid)
);

-- Idempotency of PUT /send and friends: one event per (user, device, transaction ID).
CREATE TABLE transaction_ids (
    user_id   TEXT NOT NULL,
    device_id TEXT NOT NULL,
    txn_id    TEXT NOT NULL,
    event_id  TEXT NOT NULL,
    PRIMARY KEY (user_id, device_id, txn_id)
);

-- Stream positions come from a sequence on PostgreSQL (several writers); SQLite has one writer
-- and takes MAX + 1.
CREATE SEQUENCE events_stream_seq;

CREATE TABLE room_aliases (
    alias      TEXT PRIMARY KEY,
    room_id    TEXT NOT NULL,
    creator    TEXT NOT NULL,
    created_ts BIGINT NOT NULL
);
CREATE INDEX room_aliases_room ON room_aliases (room_id);

-- Rooms a user has forgotten after leaving them.
CREATE TABLE forgotten_rooms (
    user_id TEXT NOT NULL,
    room_id TEXT NOT NULL,
    PRIMARY KEY (user_id, room_id)
);
