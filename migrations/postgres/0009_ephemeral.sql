-- Read receipts (spec: Client-Server API › Receipts): one row per (room, user, receipt type,
-- thread), replaced by each newer receipt and given a new position in the receipts stream, so
-- /sync finds what changed in a room since a token. `thread_id` is '' for an unthreaded receipt,
-- 'main' or a thread root's event ID for a threaded one. `event_stream_ordering` copies the
-- event's position in the room event stream: unread counts compare with it without a join, and
-- a receipt only ever moves forward. Typing notifications are not stored (memory only).
CREATE TABLE receipts (
    room_id               TEXT NOT NULL,
    user_id               TEXT NOT NULL,
    receipt_type          TEXT NOT NULL,    -- m.read or m.read.private
    thread_id             TEXT NOT NULL,
    event_id              TEXT NOT NULL,
    event_stream_ordering BIGINT NOT NULL,
    ts                    BIGINT NOT NULL,
    stream_id             BIGINT NOT NULL,
    PRIMARY KEY (room_id, user_id, receipt_type, thread_id)
);
-- What changed in a room between two positions.
CREATE INDEX receipts_room_stream ON receipts (room_id, stream_id);

-- Send-to-device messages (spec: Client-Server API › Send-to-Device messaging) waiting for a
-- local device, in order of `stream_id` (one position per /sendToDevice request, so a device has
-- at most one message per position). Rows are deleted once the device acknowledges them by
-- syncing with a later token, and with the device.
CREATE TABLE device_inbox (
    user_id   TEXT NOT NULL,
    device_id TEXT NOT NULL,
    stream_id BIGINT NOT NULL,
    sender    TEXT NOT NULL,
    type      TEXT NOT NULL,
    content   TEXT NOT NULL,
    PRIMARY KEY (user_id, device_id, stream_id),
    FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, device_id) ON DELETE CASCADE
);
