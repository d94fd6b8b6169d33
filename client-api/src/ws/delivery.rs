//! Delivery status: which messages a device of the user has received, recorded as
//! `io.hearth.delivered` receipts (`receipts::delivered`) once the client has shown it read the
//! frames carrying them. Proof is the pong to a ping sent right after the batch — a client
//! answers a ping only after reading every earlier frame, and browsers answer by themselves — or
//! an `ack` frame.

use std::collections::HashMap;

use hearth_core::{Homeserver, Result, receipts};
use ruma::{EventId, OwnedEventId, OwnedRoomId, OwnedUserId, UserId};
use serde_json::Value;

/// The payload of the ping that asks for proof of delivery.
pub(super) const PING: &[u8] = b"delivered";

/// Per room, the last event of another user written to the socket and not yet proven received.
#[derive(Debug, Default)]
pub(super) struct Pending(HashMap<OwnedRoomId, (OwnedEventId, OwnedUserId)>);

impl Pending {
    /// Notes the last event of others in each joined room's timeline of a written sync response;
    /// whether there was any (then a delivery ping is due).
    pub(super) fn note(&mut self, me: &UserId, response: &Value) -> bool {
        let mut any = false;
        let Some(rooms) = response["rooms"]["join"].as_object() else { return false };
        for (room_id, room) in rooms {
            let events = room["timeline"]["events"].as_array().into_iter().flatten();
            let last = events.rev().find(|e| e["sender"].as_str().is_some_and(|s| s != me.as_str()));
            let Some(last) = last else { continue };
            let (Ok(room_id), Some(Ok(event_id)), Some(Ok(sender))) = (
                OwnedRoomId::try_from(room_id.as_str()),
                last["event_id"].as_str().map(EventId::parse),
                last["sender"].as_str().map(UserId::parse),
            ) else {
                continue;
            };
            self.0.insert(room_id, (event_id, sender));
            any = true;
        }
        any
    }

    /// Records everything noted as delivered to `user`.
    pub(super) async fn confirm(&mut self, hs: &Homeserver, user: &UserId) -> Result<()> {
        for (room_id, (event_id, sender)) in self.0.drain() {
            receipts::delivered(hs, user, &room_id, &event_id, &sender).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_last_event_of_others_per_room_is_noted() {
        let me = ruma::user_id!("@me:hs.test");
        let event = |id: &str, sender: &str| json!({ "event_id": id, "sender": sender });
        let response = json!({ "rooms": { "join": {
            "!a:hs.test": { "timeline": { "events": [
                event("$1", "@you:hs.test"), event("$2", "@them:hs.test"), event("$3", "@me:hs.test"),
            ] } },
            "!b:hs.test": { "timeline": { "events": [event("$4", "@me:hs.test")] } },
        } } });
        let mut pending = Pending::default();

        assert!(pending.note(me, &response));
        let noted: Vec<_> =
            pending.0.iter().map(|(room, (event, _))| (room.as_str(), event.as_str())).collect();
        assert_eq!(noted, [("!a:hs.test", "$2")]);
        assert!(!pending.note(me, &json!({ "rooms": {} })));
    }
}
