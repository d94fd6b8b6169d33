-- Full-text search (POST /search): the searchable words of m.room.message (content.body),
-- m.room.name (content.name) and m.room.topic (content.topic) events, keyed by the event's
-- stream position (rowid = events.stream_ordering). Contentless: the text already lives in the
-- event JSON, so only the index is stored; contentless_delete lets a redaction take its target
-- out. The words are lower-cased and split in Rust before they get here, so both backends see
-- the same tokens.
CREATE VIRTUAL TABLE event_search USING fts5(
    words,
    content = '',
    contentless_delete = 1,
    tokenize = 'unicode61'
);
