-- Two tables beside the search index (storage::search).
--
-- `search_terms`: every indexed word, so that a query word names the indexed words it begins
-- (storage::search::word_matches) instead of a prefix match (`word:*`), which GIN answers by
-- merging the postings of every matching word before the first row. "C" collation: the prefix
-- range is bytewise. Words are never taken out: a word no event holds any more costs a query one
-- empty posting lookup.
--
-- `event_search_text`: each indexed event's words, what `rank` order scores (search::rank):
-- a compact row per event, where reading the event JSON of two thousand hits spread over the
-- whole history cost more than the search itself.
CREATE TABLE search_terms (
    term TEXT COLLATE "C" PRIMARY KEY
);
INSERT INTO search_terms (term) SELECT word FROM ts_stat('SELECT words FROM event_search');

CREATE TABLE event_search_text (
    stream_ordering BIGINT PRIMARY KEY,
    words           TEXT NOT NULL
);
-- The searched text of the events indexed so far, as stored (scoring splits and lower-cases it
-- as the index did).
INSERT INTO event_search_text (stream_ordering, words)
    SELECT stream_ordering, text FROM (
        SELECT s.stream_ordering, CASE s.type
            WHEN 'm.room.message' THEN e.json::json -> 'content' ->> 'body'
            WHEN 'm.room.name' THEN e.json::json -> 'content' ->> 'name'
            ELSE e.json::json -> 'content' ->> 'topic'
        END AS text
        FROM event_search s JOIN events e ON e.stream_ordering = s.stream_ordering
    ) indexed WHERE text IS NOT NULL;

-- Room, sender and type become lexemes of the tsvector, as SQLite's `meta` tokens, so that GIN
-- intersects a word's postings with the rooms' instead of the heap dropping other rooms' hits.
-- A `~` marks them: words are letters and digits, so no word or prefix matches them. Hashes as in
-- storage::search::matching (the first 128 bits of SHA-256, hex). The copied columns go. The
-- table is written anew, in stream order, rather than updated in place (which would leave it
-- twice its size, each position's row away from its neighbours).
CREATE TABLE event_search_tokens (
    stream_ordering BIGINT PRIMARY KEY,
    words           TSVECTOR NOT NULL
);
INSERT INTO event_search_tokens (stream_ordering, words)
    SELECT stream_ordering, words || array_to_tsvector(ARRAY[
        '~r' || substr(encode(sha256(convert_to(room_id, 'UTF8')), 'hex'), 1, 32),
        '~s' || substr(encode(sha256(convert_to(sender, 'UTF8')), 'hex'), 1, 32),
        '~t' || lower(regexp_replace(type, '[^A-Za-z0-9]', '', 'g'))
    ])
    FROM event_search ORDER BY stream_ordering;
DROP TABLE event_search;
ALTER TABLE event_search_tokens RENAME TO event_search;
ALTER INDEX event_search_tokens_pkey RENAME TO event_search_pkey;
-- A short pending list (256 kB, default 4 MB): every search scans the entries not yet merged
-- into the index, which cost ~20 ms at 4 MB; without any (fastupdate off) each message's entries
-- went into the index one by one, and bulk writes took 2.5 times as long.
CREATE INDEX event_search_words ON event_search USING GIN (words) WITH (gin_pending_list_limit = 256);
-- The planner's word frequencies choose between the GIN index and a walk down the newest
-- positions.
ANALYZE event_search;
