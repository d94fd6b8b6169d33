//! Room and sync helpers shared by scenarios: sending, joining, inviting, and picking apart
//! `/sync` responses.

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};

use crate::{Client, client::enc};

const V3: &str = "/_matrix/client/v3";

impl Client {
    /// Sends an `m.text` message with a fresh transaction ID; its event ID.
    pub async fn send_text(&self, room_id: &str, body: &str) -> String {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let txn = format!("h{}", NEXT.fetch_add(1, Ordering::Relaxed));
        let path = format!("{V3}/rooms/{}/send/m.room.message/{txn}", enc(room_id));
        let response = self.put(&path, json!({ "msgtype": "m.text", "body": body })).await;
        response.expect_status(200)["event_id"].as_str().expect("event_id").to_owned()
    }

    /// Joins a room by ID or alias (must succeed).
    pub async fn join_room(&self, room_id: &str) {
        self.post(&format!("{V3}/join/{}", enc(room_id)), json!({})).await.expect_status(200);
    }

    /// Invites `user_id` to a room (must succeed).
    pub async fn invite_user(&self, room_id: &str, user_id: &str) {
        let path = format!("{V3}/rooms/{}/invite", enc(room_id));
        self.post(&path, json!({ "user_id": user_id })).await.expect_status(200);
    }
}

impl Client {
    /// Long-polls `/sync` (so it waits on the server, never sleeps) from the start, keeping the
    /// room's timeline events, until `done(events)` holds; panics after 15 s.
    pub async fn timeline_until(&self, room_id: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let start = std::time::Instant::now();
        let (mut since, mut events): (Option<String>, Vec<Value>) = (None, Vec::new());
        while !done(&events) {
            assert!(start.elapsed() < std::time::Duration::from_secs(15), "timed out; timeline: {events:?}");
            let sync = self.sync(since.as_deref(), None, 1_000).await;
            events.extend(timeline(&sync, room_id).iter().cloned());
            since = Some(next_batch(&sync));
        }
        events
    }
}

impl Client {
    /// Long-polls `/sync` from `since` (the start for `None`) until `pick` finds something in a
    /// response; returns it and that response's `next_batch`. Panics after 20 s.
    pub async fn sync_until<T>(
        &self,
        since: Option<&str>,
        what: &str,
        pick: impl Fn(&Value) -> Option<T>,
    ) -> (T, String) {
        let start = std::time::Instant::now();
        let mut since = since.map(str::to_owned);
        loop {
            assert!(start.elapsed() < std::time::Duration::from_secs(20), "timed out waiting for {what}");
            let sync = self.sync(since.as_deref(), None, 2_000).await;
            let next = next_batch(&sync);
            if let Some(found) = pick(&sync) {
                return (found, next);
            }
            since = Some(next);
        }
    }
}

/// The event IDs of `events`.
pub fn event_ids(events: &[Value]) -> Vec<&str> {
    events.iter().filter_map(|e| e["event_id"].as_str()).collect()
}

/// The `next_batch` of a sync response.
pub fn next_batch(sync: &Value) -> String {
    sync["next_batch"].as_str().expect("next_batch").to_owned()
}

/// The timeline events of a joined room in a sync response.
pub fn timeline<'a>(sync: &'a Value, room_id: &str) -> &'a [Value] {
    sync["rooms"]["join"][room_id]["timeline"]["events"].as_array().map_or(&[], Vec::as_slice)
}

/// The ephemeral events of a joined room in a sync response.
pub fn ephemeral<'a>(sync: &'a Value, room_id: &str) -> &'a [Value] {
    sync["rooms"]["join"][room_id]["ephemeral"]["events"].as_array().map_or(&[], Vec::as_slice)
}

/// The bodies of the `m.room.message` events among `events`.
pub fn bodies(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["type"] == "m.room.message")
        .map(|e| e["content"]["body"].as_str().unwrap_or_default().to_owned())
        .collect()
}
