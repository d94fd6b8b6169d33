-- The last position handed out in each stream that is not the room event stream (account data,
-- presence, receipts, to-device, device lists). A writer bumps its stream's row inside its write
-- transaction (`UPDATE ... RETURNING`): the row lock serialises the stream's writers until commit,
-- so positions become visible in the order they were handed out, on SQLite and PostgreSQL alike,
-- and positions never go back even when rows are deleted (to-device messages are).
CREATE TABLE stream_positions (
    stream   TEXT PRIMARY KEY,
    position BIGINT NOT NULL
);
INSERT INTO stream_positions (stream, position)
    SELECT 'account_data', COALESCE(MAX(stream_id), 0) FROM account_data;
INSERT INTO stream_positions (stream, position)
    SELECT 'presence', COALESCE(MAX(stream_id), 0) FROM presence;
INSERT INTO stream_positions (stream, position) VALUES ('receipts', 0), ('to_device', 0), ('device_lists', 0);
DROP SEQUENCE account_data_stream_seq;
DROP SEQUENCE presence_stream_seq;
