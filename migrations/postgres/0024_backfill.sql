-- Rooms joined through another server, whose history before the join is fetched from the
-- servers in the room when a local user pages back to it (backfill). Backfilled events take
-- stream positions below every other (descending from 0), so /sync never sees them as new.
CREATE TABLE backfill_rooms (
    room_id          TEXT PRIMARY KEY,
    -- The server the room was joined through: the first one asked.
    joined_via       TEXT NOT NULL,
    -- The m.room.history_visibility event of the state the room was joined with: what applies
    -- to the history before the join until backfill brings that event into the timeline.
    visibility_event TEXT,
    -- The room's earliest timeline event when the servers asked had nothing older: not asked
    -- again while it is still the earliest.
    exhausted_at     TEXT
);
