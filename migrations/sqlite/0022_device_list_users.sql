-- Device list changes of other servers' users (spec: Server-Server API › Device Management):
-- an `m.device_list_update` or `m.signing_key_update` EDU adds a row for the remote user, so
-- local users sharing a room with them see them in `/sync`'s `device_lists.changed`. Each
-- local change is also sent to other servers with the user's previous position as `prev_id`,
-- which this index finds without scanning the table.
CREATE INDEX device_list_changes_user ON device_list_changes (user_id, stream_id);
