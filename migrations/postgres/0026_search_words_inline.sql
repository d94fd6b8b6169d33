-- PostgreSQL keeps each indexed event's words (what `rank` order scores, search::rank) in its
-- index row, `event_search.words_text`, instead of in `event_search_text` beside it: the GIN
-- bitmap scan reads the matching rows anyway, where looking the newest 2 000 matches up in a
-- second table cost 2 000 index probes (a medium word in ten rooms: 31–50 ms against 18–27 ms,
-- docs/BENCHMARKS.md › Search). SQLite's FTS5 table is contentless and keeps its
-- `event_search_text`. Written anew in stream order, like 0018.
CREATE TABLE event_search_inline (
    stream_ordering BIGINT PRIMARY KEY,
    words           TSVECTOR NOT NULL,
    words_text      TEXT NOT NULL
);
INSERT INTO event_search_inline (stream_ordering, words, words_text)
    SELECT s.stream_ordering, s.words, COALESCE(t.words, '')
    FROM event_search s LEFT JOIN event_search_text t ON t.stream_ordering = s.stream_ordering
    ORDER BY s.stream_ordering;
DROP TABLE event_search;
DROP TABLE event_search_text;
ALTER TABLE event_search_inline RENAME TO event_search;
ALTER INDEX event_search_inline_pkey RENAME TO event_search_pkey;
-- As in 0018: a short pending list.
CREATE INDEX event_search_words ON event_search USING GIN (words) WITH (gin_pending_list_limit = 256);
ANALYZE event_search;
