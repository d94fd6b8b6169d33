-- Reading history: a user's membership changes and the history visibility changes of a room
-- are looked up by (room, type, state_key) in stream order. Only state events are indexed.
-- (`unsigned.transaction_id` looks transaction IDs up by event: see transaction_ids_event.)
CREATE INDEX events_room_state_key ON events (room_id, type, state_key, stream_ordering)
    WHERE state_key IS NOT NULL;
