-- Two tables beside the search index (storage::search).
--
-- `search_terms`: every indexed word, so that a query word names the indexed words it begins
-- (storage::search::word_matches) instead of asking FTS5 for a prefix match, which merges the
-- postings of every matching word in memory before the first row. Words are never taken out: a
-- word no event holds any more costs a query one empty posting lookup.
--
-- `event_search_text`: each indexed event's words, what `rank` order scores (search::rank):
-- a compact row per event, where reading the event JSON of two thousand hits spread over the
-- whole history cost more than the search itself. The contentless FTS table keeps no text.
CREATE TABLE search_terms (
    term TEXT PRIMARY KEY
) WITHOUT ROWID;

CREATE TABLE event_search_text (
    stream_ordering INTEGER PRIMARY KEY,
    words           TEXT NOT NULL
);

-- The words already indexed (the `words` column; `meta` holds room, sender and type tokens).
CREATE VIRTUAL TABLE temp.event_search_vocabulary USING fts5vocab(main, event_search, col);
INSERT INTO search_terms (term)
    SELECT DISTINCT term FROM temp.event_search_vocabulary WHERE col = 'words';
DROP TABLE temp.event_search_vocabulary;

-- The searched text of the events indexed so far, as stored (scoring splits and lower-cases it
-- as the index did). A row for an event not in the index is never read.
INSERT INTO event_search_text (stream_ordering, words)
    SELECT stream_ordering, text FROM (
        SELECT stream_ordering, CASE type
            WHEN 'm.room.message' THEN json_extract(json, '$.content.body')
            WHEN 'm.room.name' THEN json_extract(json, '$.content.name')
            ELSE json_extract(json, '$.content.topic')
        END AS text
        FROM events
        WHERE type IN ('m.room.message', 'm.room.name', 'm.room.topic')
            AND stream_ordering IS NOT NULL AND redacted_by IS NULL
    ) WHERE typeof(text) = 'text';
