//! Server → client frames of the simple vocabulary, derived from each sync response the socket
//! receives (so they say nothing a `/sync` would not):
//!
//! - `new_message` for every `m.room.message` in a timeline;
//! - `message_status` `sent` for the user's own messages as they appear, then `delivered` and
//!   `read` for each of them once another member's `io.hearth.delivered` or `m.read` receipt is
//!   at or after it;
//! - `typing_update` for each user who started or stopped typing (the `m.typing` lists
//!   compared with the previous ones);
//! - `user_online` for every presence change.
//!
//! The little state this needs (who was typing, the user's recent messages, how far each reader
//! was reported) lives per socket and starts empty on every connection.

use std::collections::{HashMap, VecDeque};

use hearth_core::{Homeserver, Result, receipts, rooms::timeline};
use ruma::{EventId, OwnedUserId};
use serde_json::{Map, Value, json};

/// How many of the user's own messages per room are kept to report `read` for.
const OWN_MESSAGES_KEPT: usize = 100;

/// The vocabulary state of one socket.
#[derive(Debug)]
pub(super) struct Vocabulary {
    me: OwnedUserId,
    /// Per room, the users other than `me` typing at the last `m.typing`.
    typing: HashMap<String, Vec<String>>,
    /// Per room, the user's own recent messages, oldest first.
    own: HashMap<String, VecDeque<OwnMessage>>,
    /// Per (room, reader, status), the stream position up to which the status was reported.
    reported: HashMap<(String, String, &'static str), i64>,
}

#[derive(Debug)]
struct OwnMessage {
    event_id: String,
    /// The stream position, looked up when a receipt first asks.
    position: Option<i64>,
}

/// A receipt of another user that gives a status (`read`, `delivered`).
#[derive(Debug, PartialEq)]
struct Receipt {
    room_id: String,
    event_id: String,
    reader: String,
    status: &'static str,
}

/// The receipt types that give a status.
const STATUSES: [(&str, &str); 2] = [("m.read", "read"), (receipts::DELIVERED, "delivered")];

impl Vocabulary {
    pub(super) fn new(me: OwnedUserId) -> Self {
        Self { me, typing: HashMap::new(), own: HashMap::new(), reported: HashMap::new() }
    }

    /// The vocabulary frames of one sync response, in order: per room its messages (each own one
    /// followed by its `sent`), typing changes and `read` statuses; then presence.
    pub(super) async fn frames(&mut self, hs: &Homeserver, sync: &Value) -> Result<Vec<Value>> {
        let mut frames = Vec::new();
        let mut receipts = Vec::new();
        for section in ["join", "leave"] {
            let Some(rooms) = sync["rooms"][section].as_object() else { continue };
            for (room_id, room) in rooms {
                self.messages(room_id, room, &mut frames);
                self.typing(room_id, room, &mut frames);
                receipts.extend(self.receipts(room_id, room));
            }
        }
        if !receipts.is_empty() {
            let positions = self.positions(hs, &receipts).await?;
            self.statuses(&receipts, &positions, &mut frames);
        }
        for event in events(&sync["presence"]) {
            if let (Some(user_id), Some(status)) =
                (event["sender"].as_str(), event["content"]["presence"].as_str())
            {
                frames.push(json!({ "type": "user_online", "user_id": user_id, "status": status }));
            }
        }
        Ok(frames)
    }

    fn messages(&mut self, room_id: &str, room: &Value, frames: &mut Vec<Value>) {
        for event in events(&room["timeline"]) {
            let Some(mut frame) = message(room_id, event) else { continue };
            frame.insert("type".to_owned(), json!("new_message"));
            frames.push(Value::Object(frame));
            // `message` found both strings.
            let (event_id, sender) = (
                event["event_id"].as_str().unwrap_or_default(),
                event["sender"].as_str().unwrap_or_default(),
            );
            if sender == self.me.as_str() {
                frames.push(status(event_id, room_id, "sent", sender));
                let own = self.own.entry(room_id.to_owned()).or_default();
                if own.len() == OWN_MESSAGES_KEPT {
                    own.pop_front();
                }
                own.push_back(OwnMessage { event_id: event_id.to_owned(), position: None });
            }
        }
    }

    fn typing(&mut self, room_id: &str, room: &Value, frames: &mut Vec<Value>) {
        let Some(typing) = events(&room["ephemeral"]).filter(|e| e["type"] == "m.typing").last() else {
            return;
        };
        let now: Vec<String> = typing["content"]["user_ids"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .filter(|user| *user != self.me.as_str())
            .map(str::to_owned)
            .collect();
        let before = self.typing.remove(room_id).unwrap_or_default();
        let update = |user: &str, is_typing| json!({ "type": "typing_update", "conversation_id": room_id, "user_id": user, "is_typing": is_typing });
        frames.extend(now.iter().filter(|u| !before.contains(u)).map(|u| update(u, true)));
        frames.extend(before.iter().filter(|u| !now.contains(u)).map(|u| update(u, false)));
        if !now.is_empty() {
            self.typing.insert(room_id.to_owned(), now);
        }
    }

    /// The receipts of others in a room where the user has messages to report on.
    fn receipts(&self, room_id: &str, room: &Value) -> Vec<Receipt> {
        if !self.own.contains_key(room_id) {
            return Vec::new();
        }
        let mut receipts = Vec::new();
        for receipt in events(&room["ephemeral"]).filter(|e| e["type"] == "m.receipt") {
            let Some(content) = receipt["content"].as_object() else { continue };
            for (event_id, types) in content {
                for (receipt_type, status) in STATUSES {
                    let Some(readers) = types[receipt_type].as_object() else { continue };
                    let others = readers.keys().filter(|reader| *reader != self.me.as_str());
                    receipts.extend(others.map(|reader| Receipt {
                        room_id: room_id.to_owned(),
                        event_id: event_id.clone(),
                        reader: reader.clone(),
                        status,
                    }));
                }
            }
        }
        receipts
    }

    /// The stream positions of the receipts' events and of the own messages not looked up yet.
    async fn positions(&mut self, hs: &Homeserver, receipts: &[Receipt]) -> Result<HashMap<String, i64>> {
        let mut positions = HashMap::new();
        for receipt in receipts {
            if !positions.contains_key(&receipt.event_id)
                && let Some(position) = position(hs, &receipt.event_id).await?
            {
                positions.insert(receipt.event_id.clone(), position);
            }
            for message in self.own.get_mut(&receipt.room_id).into_iter().flatten() {
                if message.position.is_none() {
                    message.position = position(hs, &message.event_id).await?;
                }
            }
        }
        Ok(positions)
    }

    /// The receipt's status for each own message at or before it and after what was reported of
    /// its reader.
    fn statuses(&mut self, receipts: &[Receipt], positions: &HashMap<String, i64>, frames: &mut Vec<Value>) {
        for receipt in receipts {
            let Some(&upto) = positions.get(&receipt.event_id) else { continue };
            let key = (receipt.room_id.clone(), receipt.reader.clone(), receipt.status);
            let from = self.reported.get(&key).copied().unwrap_or(i64::MIN);
            for message in self.own.get(&receipt.room_id).into_iter().flatten() {
                if message.position.is_some_and(|p| p > from && p <= upto) {
                    frames.push(status(&message.event_id, &receipt.room_id, receipt.status, &receipt.reader));
                }
            }
            self.reported.insert(key, upto.max(from));
        }
    }
}

/// The chat vocabulary's message (`message_id`, `conversation_id`, `sender`, `content`,
/// `timestamp`) of a client-format event: the fields of a `new_message` frame and of the REST
/// facade's messages, so both surfaces agree. `None` for anything but an `m.room.message`.
pub(crate) fn message(room_id: &str, event: &Value) -> Option<Map<String, Value>> {
    if event["type"] != "m.room.message" {
        return None;
    }
    let (event_id, sender) = (event["event_id"].as_str()?, event["sender"].as_str()?);
    let fields = [
        ("message_id", json!(event_id)),
        ("conversation_id", json!(room_id)),
        ("sender", json!(sender)),
        ("content", event["content"].clone()),
        ("timestamp", event["origin_server_ts"].clone()),
    ];
    Some(fields.into_iter().map(|(key, value)| (key.to_owned(), value)).collect())
}

async fn position(hs: &Homeserver, event_id: &str) -> Result<Option<i64>> {
    let Ok(event_id) = EventId::parse(event_id) else { return Ok(None) };
    Ok(timeline::locate(hs, &event_id).await?.map(|(_, position)| position))
}

fn status(message_id: &str, room_id: &str, status: &str, user_id: &str) -> Value {
    json!({
        "type": "message_status",
        "message_id": message_id,
        "conversation_id": room_id,
        "status": status,
        "user_id": user_id,
    })
}

/// The events of a `{"events": [...]}` section (none when absent).
fn events(section: &Value) -> impl Iterator<Item = &Value> {
    section["events"].as_array().into_iter().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocabulary() -> Vocabulary {
        Vocabulary::new(ruma::owned_user_id!("@me:hs.test"))
    }

    fn message(event_id: &str, sender: &str) -> Value {
        json!({
            "type": "m.room.message", "event_id": event_id, "sender": sender,
            "origin_server_ts": 7, "content": { "msgtype": "m.text", "body": "hi" },
        })
    }

    fn room(timeline: Vec<Value>, ephemeral: Vec<Value>) -> Value {
        json!({ "timeline": { "events": timeline }, "ephemeral": { "events": ephemeral } })
    }

    fn typing(users: &[&str]) -> Value {
        json!({ "type": "m.typing", "content": { "user_ids": users } })
    }

    #[test]
    fn messages_become_new_message_frames_and_own_ones_are_sent() {
        let mut vocabulary = vocabulary();
        let mut frames = Vec::new();
        let timeline = vec![
            message("$a", "@you:hs.test"),
            json!({ "type": "m.room.topic" }),
            message("$b", "@me:hs.test"),
        ];
        vocabulary.messages("!r:hs.test", &room(timeline, vec![]), &mut frames);

        let kinds: Vec<_> = frames.iter().map(|f| f["type"].as_str().unwrap_or_default()).collect();
        assert_eq!(kinds, ["new_message", "new_message", "message_status"]);
        assert_eq!(frames[0]["message_id"], "$a");
        assert_eq!(frames[0]["conversation_id"], "!r:hs.test");
        assert_eq!(frames[0]["content"]["body"], "hi");
        assert_eq!(frames[0]["timestamp"], 7);
        assert_eq!(frames[2], status("$b", "!r:hs.test", "sent", "@me:hs.test"));
    }

    #[test]
    fn typing_lists_become_deltas_without_oneself() {
        let mut vocabulary = vocabulary();
        let mut frames = Vec::new();
        vocabulary.typing(
            "!r:hs.test",
            &room(vec![], vec![typing(&["@a:hs.test", "@me:hs.test"])]),
            &mut frames,
        );
        vocabulary.typing("!r:hs.test", &room(vec![], vec![typing(&["@b:hs.test"])]), &mut frames);
        vocabulary.typing("!r:hs.test", &room(vec![], vec![]), &mut frames);

        let deltas: Vec<_> = frames.iter().map(|f| (f["user_id"].clone(), f["is_typing"].clone())).collect();
        assert_eq!(
            deltas,
            [
                (json!("@a:hs.test"), json!(true)),
                (json!("@b:hs.test"), json!(true)),
                (json!("@a:hs.test"), json!(false)),
            ]
        );
    }

    #[test]
    fn a_receipt_reads_own_messages_up_to_it_once_per_reader() {
        let mut vocabulary = vocabulary();
        let mut frames = Vec::new();
        let timeline =
            vec![message("$1", "@me:hs.test"), message("$2", "@me:hs.test"), message("$3", "@me:hs.test")];
        vocabulary.messages("!r:hs.test", &room(timeline, vec![]), &mut frames);
        for (message, position) in vocabulary.own.get_mut("!r:hs.test").into_iter().flatten().zip(1..) {
            message.position = Some(position);
        }
        let receipt = |event_id: &str, reader: &str| json!({ "type": "m.receipt", "content": { event_id: { "m.read": { reader: { "ts": 1 } } } } });
        let delivery = |event_id: &str, reader: &str| {
            let content = json!({ event_id: { receipts::DELIVERED: { reader: { "ts": 1 } } } });
            json!({ "type": "m.receipt", "content": content })
        };
        let positions = HashMap::from([("$2".to_owned(), 2), ("$x".to_owned(), 9)]);
        let mut read = |ephemeral: Value| {
            let receipts = vocabulary.receipts("!r:hs.test", &room(vec![], vec![ephemeral]));
            let mut frames = Vec::new();
            vocabulary.statuses(&receipts, &positions, &mut frames);
            let described = frames.iter().map(|f| format!("{} {}", f["message_id"], f["status"]));
            described.map(|d| d.replace('"', "")).collect::<Vec<_>>()
        };

        assert_eq!(read(delivery("$x", "@you:hs.test")), ["$1 delivered", "$2 delivered", "$3 delivered"]);
        assert_eq!(read(receipt("$2", "@you:hs.test")), ["$1 read", "$2 read"]);
        // Later: only what is new for that reader; another reader starts from the beginning.
        assert_eq!(read(receipt("$x", "@you:hs.test")), ["$3 read"]);
        assert_eq!(read(receipt("$2", "@them:hs.test")), ["$1 read", "$2 read"]);
        // One's own receipts report nothing.
        assert!(read(receipt("$x", "@me:hs.test")).is_empty());
    }
}
