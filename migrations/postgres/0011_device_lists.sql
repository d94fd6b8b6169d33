-- Device list changes (spec: Client-Server API › End-to-End Encryption › Tracking the device
-- list for a user): one row per change of a local user's devices, identity keys or
-- cross-signing keys and signatures, at its position in the `device_lists` stream. `/sync`
-- (`device_lists.changed`) and `/keys/changes` read the users whose rows fall between two
-- positions. Rows are never updated: a change after the range must not hide one inside it.
CREATE TABLE device_list_changes (
    stream_id BIGINT PRIMARY KEY,
    user_id   TEXT NOT NULL
);
