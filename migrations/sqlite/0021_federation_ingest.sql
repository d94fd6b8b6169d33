-- Transactions received from other servers (PUT /_matrix/federation/v1/send/{txnId}), kept so a
-- retried transaction gets the same answer without being processed twice.
CREATE TABLE federation_txns (
    origin     TEXT NOT NULL,
    txn_id     TEXT NOT NULL,
    response   TEXT NOT NULL,   -- the JSON answered
    created_ts BIGINT NOT NULL,
    PRIMARY KEY (origin, txn_id)
);

-- The state group of a room's state when its graph has several forward extremities (the
-- resolution of their states, which no single event carries); NULL otherwise.
ALTER TABLE rooms ADD COLUMN forked_state_group BIGINT;

-- Invites of local users to rooms this server is not in, received over federation: the room's
-- stripped state the inviting server sent along (JSON array), which /sync shows with the invite.
CREATE TABLE remote_invites (
    event_id       TEXT PRIMARY KEY,
    room_id        TEXT NOT NULL,
    stripped_state TEXT NOT NULL
);
