-- Push notifications stored per event instead of per recipient (see storage::push_actions):
-- an event's default notification, which applies to every local member joined since before it
-- except its sender. `event_push_actions` keeps only the recipients whose outcome differs
-- (notify = 0 when they are not notified); its existing rows are all such exceptions already.
CREATE TABLE event_notifications (
    stream_ordering BIGINT PRIMARY KEY,
    room_id         TEXT NOT NULL,
    sender          TEXT NOT NULL,
    thread_id       TEXT,
    highlight       BIGINT NOT NULL,
    actions         TEXT NOT NULL
);
-- Unread counts of one room after a position.
CREATE INDEX event_notifications_room ON event_notifications (room_id, stream_ordering);

-- Where the member's current unbroken run of `join` began (NULL unless joined): the first
-- event a default notification can be theirs for. Display name changes keep it.
ALTER TABLE current_state ADD COLUMN joined_at BIGINT;
UPDATE current_state SET joined_at = (
    SELECT e.stream_ordering FROM events e WHERE e.event_nid = current_state.event_nid
) WHERE membership = 'join';
