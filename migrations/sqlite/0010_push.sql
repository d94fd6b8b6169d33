-- Push notifications (spec: Client-Server API › Push Notifications).
--
-- One row per (recipient, event) whose push rules said `notify`, written in the same transaction
-- as the event. Unread counts are the rows after the recipient's read receipt in a room (per
-- thread: `thread_id` is the thread root, NULL for the main timeline); `GET /notifications`
-- pages through a user's rows newest first. `actions` is the JSON array of the rule that matched.
CREATE TABLE event_push_actions (
    user_id         TEXT NOT NULL,
    room_id         TEXT NOT NULL,
    event_id        TEXT NOT NULL,
    stream_ordering BIGINT NOT NULL,
    thread_id       TEXT,
    notify          BIGINT NOT NULL,
    highlight       BIGINT NOT NULL,
    actions         TEXT NOT NULL,
    ts              BIGINT NOT NULL
);
-- Unread counts of one user in one room after a position.
CREATE INDEX event_push_actions_room ON event_push_actions (user_id, room_id, stream_ordering);
-- /notifications: one user's rows, newest first.
CREATE INDEX event_push_actions_user ON event_push_actions (user_id, stream_ordering);

-- Pushers (spec: Client-Server API › Push Notifications › Client behaviour): where a user's
-- notifications would be sent. `pusher` is the pusher as the client set it (JSON), served back
-- by `GET /pushers`. A pusher is identified by (app_id, pushkey) per user.
CREATE TABLE pushers (
    user_id    TEXT NOT NULL,
    app_id     TEXT NOT NULL,
    pushkey    TEXT NOT NULL,
    kind       TEXT NOT NULL,
    pusher     TEXT NOT NULL,
    created_ts BIGINT NOT NULL,
    PRIMARY KEY (app_id, pushkey, user_id)
);
CREATE INDEX pushers_user ON pushers (user_id);
