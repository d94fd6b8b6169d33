-- Event relationships (spec: Client-Server API › Forming relationships between events): one
-- row per event whose content carries `m.relates_to` with a `rel_type`. The parent is kept as an
-- event ID because it may not have arrived yet. A redacted child loses its relation: its row is
-- deleted.
CREATE TABLE event_relations (
    event_nid       BIGINT PRIMARY KEY,    -- the child
    room_id         TEXT NOT NULL,
    parent_id       TEXT NOT NULL,
    rel_type        TEXT NOT NULL,
    aggregation_key TEXT                   -- `key` of m.annotation relations
);
CREATE INDEX event_relations_parent ON event_relations (parent_id, rel_type);
CREATE INDEX event_relations_room ON event_relations (room_id, rel_type);

-- timestamp_to_event looks events up by origin_server_ts within a room.
CREATE INDEX events_room_ts ON events (room_id, origin_server_ts);
