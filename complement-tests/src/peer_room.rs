//! A [`FakePeer`]'s user in a room of a Hearth server: joined through `make_join` /
//! `send_join`, then building, signing and sending its own PDUs (honest or not) in `/send`
//! transactions.

use std::sync::atomic::{AtomicU64, Ordering};

use reqwest::Method;
use ruma::{CanonicalJsonObject, RoomVersionId};
use serde_json::{Value, json};

use crate::{
    Backend, Client, FakePeer, Response, TestServer, client::enc, fake_peer::Signing,
    federation::enable_federation,
};

/// The peer's user, joined to a room of `hs`.
#[derive(Clone)]
pub struct PeerRoom {
    /// The room.
    pub room_id: String,
    /// Its version.
    pub version: RoomVersionId,
    /// The peer's user (`@mallory:<peer>`).
    pub user: String,
    /// Event IDs the peer's events cite as auth events: power levels, create (before v12), its
    /// join.
    pub auth: Vec<String>,
    /// The last event the peer knows of (its next events' prev event), and its depth.
    pub prev: (String, u64),
    /// The `send_join` answer.
    pub joined: Value,
    /// The peer's join event.
    pub join_event: Value,
}

/// A Hearth server (federation on) with Alice's public room, and a fake peer introduced to it:
/// `(server, peer, Alice, room ID)`.
pub async fn resident_with_peer(backend: Backend) -> (TestServer, FakePeer, Client, String) {
    let mut hs = TestServer::start_with(backend, enable_federation).await;
    let peer = FakePeer::start().await;
    peer.introduce_to(&mut hs);
    let alice = hs.client().register("alice", "password1234").await;
    let room_id = alice.create_room(json!({ "preset": "public_chat" })).await;
    (hs, peer, alice, room_id)
}

/// The event ID of a signed PDU of a room with `version` (its reference hash).
pub fn event_id(object: &CanonicalJsonObject, version: &RoomVersionId) -> String {
    let rules = version.rules().expect("a supported room version");
    format!("${}", ruma::signatures::reference_hash(object, &rules).expect("a reference hash"))
}

impl PeerRoom {
    /// `peer`'s user joins `room_id` of `hs` (which must let it in).
    pub async fn join(peer: &FakePeer, hs: &TestServer, room_id: &str) -> PeerRoom {
        let user = format!("@mallory:{}", peer.server_name);
        let path =
            format!("/_matrix/federation/v1/make_join/{}/{}?ver=10&ver=11&ver=12", enc(room_id), enc(&user));
        let template =
            peer.request(hs, Method::GET, &path, None, Signing::Valid).await.expect_status(200).clone();
        let version = RoomVersionId::try_from(template["room_version"].as_str().expect("room_version"))
            .expect("a room version");
        let mut event: CanonicalJsonObject =
            serde_json::from_value(template["event"].clone()).expect("event");
        peer.sign_pdu(&mut event, &version);
        let join_id = event_id(&event, &version);
        let path = format!("/_matrix/federation/v2/send_join/{}/{}", enc(room_id), enc(&join_id));
        let body = serde_json::to_value(&event).expect("JSON");
        let joined = peer
            .request(hs, Method::PUT, &path, Some(&body), Signing::Valid)
            .await
            .expect_status(200)
            .clone();
        let state_id = |kind: &str| {
            joined["state"]
                .as_array()
                .and_then(|state| state.iter().find(|e| e["type"] == kind))
                .map(|e| event_id(&serde_json::from_value(e.clone()).expect("event"), &version))
        };
        // From v12 on the create event is no auth event (the room ID names it).
        let mut auth: Vec<String> = ["m.room.power_levels"].iter().filter_map(|k| state_id(k)).collect();
        if !version.rules().expect("rules").authorization.room_create_event_id_as_room_id {
            auth.extend(state_id("m.room.create"));
        }
        auth.push(join_id.clone());
        let depth = event["depth"].as_integer().map_or(1, |d| u64::try_from(i64::from(d)).unwrap_or(1));
        PeerRoom {
            room_id: room_id.to_owned(),
            version,
            user,
            auth,
            prev: (join_id, depth),
            joined,
            join_event: body,
        }
    }

    /// A message of the peer's user after its last event, signed; `(event ID, JSON)`. It
    /// becomes the peer's last event.
    pub fn message(&mut self, peer: &FakePeer, body: &str) -> (String, Value) {
        let content = json!({ "msgtype": "m.text", "body": body });
        let prev = vec![self.prev.0.clone()];
        let (id, json) = self.event(peer, ("m.room.message", None), content, prev, self.prev.1 + 1);
        self.prev = (id.clone(), self.prev.1 + 1);
        (id, json)
    }

    /// A copy whose events cite `power_levels` as the room's power levels.
    pub fn clone_with_auth(&self, power_levels: &str) -> PeerRoom {
        let mut room = self.clone();
        room.auth[0] = power_levels.to_owned();
        room
    }

    /// Any event of the peer's user (`(type, state_key)`), signed, with these prev events and
    /// depth; `(ID, JSON)`.
    pub fn event(
        &self,
        peer: &FakePeer,
        (kind, state_key): (&str, Option<&str>),
        content: Value,
        prev: Vec<String>,
        depth: u64,
    ) -> (String, Value) {
        static TS: AtomicU64 = AtomicU64::new(1_700_000_000_000);
        let mut event: CanonicalJsonObject = serde_json::from_value(json!({
            "room_id": self.room_id,
            "sender": self.user,
            "type": kind,
            "content": content,
            "prev_events": prev,
            "auth_events": self.auth,
            "depth": depth,
            "origin_server_ts": TS.fetch_add(1, Ordering::Relaxed),
        }))
        .expect("canonical JSON");
        if let Some(state_key) = state_key {
            event.insert("state_key".to_owned(), state_key.into());
        }
        peer.sign_pdu(&mut event, &self.version);
        (event_id(&event, &self.version), serde_json::to_value(&event).expect("JSON"))
    }

    /// Sends `pdus` to `hs` in one transaction with this ID.
    pub async fn send(peer: &FakePeer, hs: &TestServer, txn: &str, pdus: Vec<Value>) -> Response {
        let body = json!({
            "origin": peer.server_name,
            "origin_server_ts": 1_700_000_000_000_u64,
            "pdus": pdus,
        });
        let path = format!("/_matrix/federation/v1/send/{txn}");
        peer.request(hs, Method::PUT, &path, Some(&body), Signing::Valid).await
    }
}

impl FakePeer {
    /// Scripts the peer as a server that cannot list missing events (`/get_missing_events`
    /// answers none) but answers `/event` for `prev` and for each of `state` and `auth_chain`,
    /// and `/state` and `/state_ids` at `prev` with them; `room` is `(room ID, version)`.
    pub fn serve_state_at(
        &self,
        (room_id, version): (&str, &RoomVersionId),
        prev: &Value,
        state: &[Value],
        auth_chain: &[Value],
    ) {
        let fed = "/_matrix/federation/v1";
        let ids = |events: &[Value]| -> Vec<String> {
            events
                .iter()
                .map(|e| event_id(&serde_json::from_value(e.clone()).expect("canonical JSON"), version))
                .collect()
        };
        self.respond(
            Method::POST,
            &format!("{fed}/get_missing_events/{room_id}"),
            200,
            json!({ "events": [] }),
        );
        for event in std::iter::once(prev).chain(state).chain(auth_chain) {
            let id = &ids(std::slice::from_ref(event))[0];
            let answer = json!({ "origin": self.server_name, "origin_server_ts": 1, "pdus": [event] });
            self.respond(Method::GET, &format!("{fed}/event/{id}"), 200, answer);
        }
        let state_ids = json!({ "pdu_ids": ids(state), "auth_chain_ids": ids(auth_chain) });
        self.respond(Method::GET, &format!("{fed}/state_ids/{room_id}"), 200, state_ids);
        let full = json!({ "pdus": state, "auth_chain": auth_chain });
        self.respond(Method::GET, &format!("{fed}/state/{room_id}"), 200, full);
    }
}
