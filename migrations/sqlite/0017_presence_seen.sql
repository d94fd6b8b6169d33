-- When the server last saw each user (a sync with `set_presence` other than offline, or a
-- presence change): users not seen for `presence.offline_after_secs` are set offline.
ALTER TABLE presence ADD COLUMN last_seen_ts BIGINT NOT NULL DEFAULT 0;
UPDATE presence SET last_seen_ts = last_active_ts;
CREATE INDEX presence_seen ON presence (last_seen_ts);
