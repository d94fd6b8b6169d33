-- Gaps inside a room's timeline: the history a room's other servers wrote while no local user
-- was in it, between a leave and a join through another server. The join takes its stream
-- position above a block of positions nothing else takes; backfill fills the block downwards
-- from just below the join when a local user pages back across it, so those events sort
-- between the leave and the join without ever appearing to /sync as new.
CREATE TABLE timeline_gaps (
    room_id   TEXT NOT NULL,
    -- The event above the gap (the join) and its stream position.
    event_id  TEXT NOT NULL,
    position  BIGINT NOT NULL,
    -- The lowest position of the block, and the next one backfill takes (descending).
    lowest    BIGINT NOT NULL,
    next_free BIGINT NOT NULL,
    -- 1 while history may be missing there; 0 once the gap is closed (the events below the
    -- join are all here, the block is full, or the servers had nothing more).
    open      BIGINT NOT NULL,
    PRIMARY KEY (room_id, position)
);
