-- /sync reads a user's latest membership event in every room: member events by target user.
CREATE INDEX events_members ON events (state_key, room_id, stream_ordering) WHERE type = 'm.room.member';
