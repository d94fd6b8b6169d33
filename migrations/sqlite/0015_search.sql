-- Full-text search (POST /search): the searchable words of m.room.message (content.body),
-- m.room.name (content.name) and m.room.topic (content.topic) events, keyed by the event's
-- stream position (rowid = events.stream_ordering). The words are lower-cased and split in Rust
-- before they get here, so both backends see the same tokens. `meta` holds one token each for
-- the room, the sender and the type (hashes, see storage::search), so that every filter of a
-- search is part of the full-text query and no hit needs a lookup in `events` to be kept or
-- dropped. Contentless: the text already lives in the event JSON, only the index is stored;
-- contentless_delete lets a redaction take its target out.
CREATE VIRTUAL TABLE event_search USING fts5(
    words,
    meta,
    content = '',
    contentless_delete = 1,
    tokenize = 'unicode61'
);
