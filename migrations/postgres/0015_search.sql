-- Full-text search (POST /search): the searchable words of m.room.message (content.body),
-- m.room.name (content.name) and m.room.topic (content.topic) events, keyed by the event's
-- stream position. The words are lower-cased and split in Rust before they get here, so both
-- backends see the same tokens; the 'simple' configuration keeps them as they are (no stemming).
-- Room, sender and type are copied here so a search filters hits without reading `events`.
CREATE TABLE event_search (
    stream_ordering BIGINT PRIMARY KEY,
    room_id         TEXT NOT NULL,
    sender          TEXT NOT NULL,
    type            TEXT NOT NULL,
    words           TSVECTOR NOT NULL
);
CREATE INDEX event_search_words ON event_search USING GIN (words);
