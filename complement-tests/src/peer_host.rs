//! A room hosted by a [`FakePeer`]: its events built and signed by the peer (honestly or not),
//! which answers `make_join`, `send_join` and `/backfill` for it, so that Hearth users can join
//! it and page back through its history.

use reqwest::Method;
use ruma::{
    CanonicalJsonObject, RoomVersionId,
    serde::{Base64, base64::Standard},
};
use serde_json::{Value, json};

use crate::{FakePeer, peer_room::event_id};

/// A room of version 11 on a fake peer, its host user `@host:<peer>` joined.
pub struct HostedRoom {
    /// The room.
    pub room_id: String,
    /// The host user.
    pub host: String,
    /// Every event of the room, oldest first: `(event ID, JSON)`.
    pub events: Vec<(String, Value)>,
}

const VERSION: RoomVersionId = RoomVersionId::V11;

impl HostedRoom {
    /// Creates the room (create, the host's join, power levels, public join rules) with
    /// `history_visibility` as its visibility.
    pub fn create(peer: &FakePeer, history_visibility: &str) -> HostedRoom {
        let host = format!("@host:{}", peer.server_name);
        let room_id = format!("!hosted:{}", peer.server_name);
        let mut room = HostedRoom { room_id, host: host.clone(), events: Vec::new() };
        room.event(peer, &host, ("m.room.create", Some("")), json!({ "room_version": "11" }), false);
        room.event(peer, &host, ("m.room.member", Some(&host)), json!({ "membership": "join" }), false);
        let levels = json!({ "users": { host.clone(): 100 } });
        room.event(peer, &host, ("m.room.power_levels", Some("")), levels, false);
        room.event(peer, &host, ("m.room.join_rules", Some("")), json!({ "join_rule": "public" }), false);
        let visibility = json!({ "history_visibility": history_visibility });
        room.event(peer, &host, ("m.room.history_visibility", Some("")), visibility, false);
        room
    }

    /// A message of the host after the room's last event; its ID. A `forged` one carries a
    /// signature that does not verify.
    pub fn message(&mut self, peer: &FakePeer, body: &str, forged: bool) -> String {
        let content = json!({ "msgtype": "m.text", "body": body });
        let host = self.host.clone();
        self.event(peer, &host, ("m.room.message", None), content, forged)
    }

    /// An event of `sender` after the room's last event, citing the create event, the power
    /// levels and the host's join as its auth events; its ID. A `forged` one carries a
    /// signature that does not verify.
    pub fn event(
        &mut self,
        peer: &FakePeer,
        sender: &str,
        (kind, state_key): (&str, Option<&str>),
        content: Value,
        forged: bool,
    ) -> String {
        let auth: Vec<&str> = self.events.iter().take(3).map(|(id, _)| id.as_str()).collect();
        let prev: Vec<&str> = self.events.last().map(|(id, _)| id.as_str()).into_iter().collect();
        let mut event: CanonicalJsonObject = serde_json::from_value(json!({
            "room_id": self.room_id,
            "sender": sender,
            "type": kind,
            "content": content,
            "prev_events": prev,
            "auth_events": auth,
            "depth": self.events.len() + 1,
            "origin_server_ts": 1_700_000_000_000_u64 + self.events.len() as u64,
        }))
        .expect("canonical JSON");
        if let Some(state_key) = state_key {
            event.insert("state_key".to_owned(), state_key.into());
        }
        peer.sign_pdu(&mut event, &VERSION);
        let id = event_id(&event, &VERSION);
        let mut event = serde_json::to_value(&event).expect("JSON");
        if forged {
            // The event ID (a hash without the signatures) stays; the signature is wrong.
            let signature = &mut event["signatures"][&peer.server_name][peer.key_id()];
            *signature = json!(Base64::<Standard, _>::new(vec![7_u8; 64]).encode());
        }
        self.events.push((id.clone(), event));
        id
    }

    /// The room's state events.
    pub fn state(&self) -> Vec<Value> {
        self.events.iter().filter(|(_, e)| e.get("state_key").is_some()).map(|(_, e)| e.clone()).collect()
    }

    /// Scripts the peer's answers for `joiner`: [`serve_join`](Self::serve_join) with the
    /// room's state and `/backfill` with every event, newest first.
    pub fn serve(&self, peer: &FakePeer, joiner: &str) {
        self.serve_join(peer, joiner, "11", &self.state());
        let newest_first: Vec<&Value> = self.events.iter().rev().map(|(_, e)| e).collect();
        let backfill = json!({ "origin": peer.server_name, "origin_server_ts": 1_700_000_200_000_u64, "pdus": newest_first });
        peer.respond(Method::GET, "/_matrix/federation/v1/backfill/*", 200, backfill);
    }

    /// Scripts `make_join` (a template in room version `version` after the room's last event)
    /// and `send_join` (`state`, and as the auth chain those of its events that are the room's
    /// first four).
    pub fn serve_join(&self, peer: &FakePeer, joiner: &str, version: &str, state: &[Value]) {
        let id = |n: usize| self.events[n].0.clone();
        let template = json!({
            "room_id": self.room_id,
            "sender": joiner,
            "state_key": joiner,
            "type": "m.room.member",
            "content": { "membership": "join" },
            "prev_events": [self.events.last().map(|(id, _)| id)],
            "auth_events": [id(0), id(2), id(3)],
            "depth": self.events.len() + 1,
            // Now: a re-join must come after the leave it follows, also for state resolution's
            // tie-break by timestamp.
            "origin_server_ts": now_ms(),
        });
        let make_join = json!({ "room_version": version, "event": template });
        peer.respond(Method::GET, "/_matrix/federation/v1/make_join/*", 200, make_join);
        let first: Vec<&Value> = self.events[..4].iter().map(|(_, e)| e).collect();
        let auth_chain: Vec<&Value> = state.iter().filter(|e| first.contains(e)).collect();
        let answer = json!({ "state": state, "auth_chain": auth_chain });
        peer.respond(Method::PUT, "/_matrix/federation/v2/send_join/*", 200, answer);
    }
}

/// Milliseconds since the Unix epoch.
fn now_ms() -> u64 {
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX)
}
