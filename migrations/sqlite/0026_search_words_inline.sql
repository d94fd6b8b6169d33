-- Nothing to do on SQLite: PostgreSQL moved each indexed event's words into its index row
-- (postgres/0026); SQLite's FTS5 table is contentless, so they stay in `event_search_text`.
SELECT 1;
