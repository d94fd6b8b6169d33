//! Delivery status (issue 6): a message is *delivered* once a device of a recipient has received
//! it — a `/sync` response or WebSocket batch carrying it was acknowledged (the next `/sync`
//! request with that `next_batch`, a WebSocket pong or `ack`). It is recorded as an
//! [`io.hearth.delivered`](receipts::DELIVERED) receipt at the last event of others per room.
//!
//! What a `/sync` response carried waits here, per device, until the next request names its
//! `next_batch` ([`SyncDeliveries`]). It lives in memory: a response acknowledged on another
//! process, or across a restart, is simply not recorded as delivered (the next message will be).

use std::{
    collections::HashMap,
    sync::{Mutex, MutexGuard},
};

use ruma::{EventId, OwnedDeviceId, OwnedEventId, OwnedRoomId, OwnedUserId, UserId};
use serde_json::Value;

use crate::{Homeserver, Result, receipts};

/// The last event of another user in one room of a response.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    /// The room.
    pub room_id: OwnedRoomId,
    /// The event.
    pub event_id: OwnedEventId,
    /// Its sender, who is told.
    pub sender: OwnedUserId,
}

/// Per joined room of a sync response, the last timeline event sent by someone other than `me`.
pub fn carried(me: &UserId, response: &Value) -> Vec<Delivery> {
    let Some(rooms) = response["rooms"]["join"].as_object() else { return Vec::new() };
    let mut deliveries = Vec::new();
    for (room_id, room) in rooms {
        let events = room["timeline"]["events"].as_array().into_iter().flatten();
        let Some(last) = events.rev().find(|e| e["sender"].as_str().is_some_and(|s| s != me.as_str())) else {
            continue;
        };
        if let (Ok(room_id), Some(Ok(event_id)), Some(Ok(sender))) = (
            OwnedRoomId::try_from(room_id.as_str()),
            last["event_id"].as_str().map(EventId::parse),
            last["sender"].as_str().map(UserId::parse),
        ) {
            deliveries.push(Delivery { room_id, event_id, sender });
        }
    }
    deliveries
}

/// Records `deliveries` as received by a device of `user`. Recipients acknowledge a message at
/// about the same moment (500 members of a room, one transaction each, queued the sends behind
/// them for seconds), so deliveries are written in batches: each caller queues its own, then
/// whoever holds the writer's lock writes everything queued. A caller whose deliveries an earlier
/// batch took returns once that batch is written; a failed batch is reported to its writer only.
pub async fn record(hs: &Homeserver, user: &UserId, deliveries: &[Delivery]) -> Result<()> {
    if deliveries.is_empty() {
        return Ok(());
    }
    let queue = hs.delivery_queue();
    queue.queued().extend(deliveries.iter().map(|delivery| (user.to_owned(), delivery.clone())));
    let _writing = queue.writer.lock().await;
    let batch = std::mem::take(&mut *queue.queued());
    if batch.is_empty() {
        return Ok(());
    }
    receipts::write_delivered(hs, &batch).await
}

/// Deliveries waiting for the next batch, and the lock of the batch writer (see [`record`]).
#[derive(Default)]
pub struct DeliveryQueue {
    queued: Mutex<Vec<(OwnedUserId, Delivery)>>,
    writer: tokio::sync::Mutex<()>,
}

impl DeliveryQueue {
    fn queued(&self) -> MutexGuard<'_, Vec<(OwnedUserId, Delivery)>> {
        // Held for a push or a take only, never across an await.
        self.queued.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Per device, the `next_batch` of its last `/sync` response and what it carried.
#[derive(Default)]
pub struct SyncDeliveries(Mutex<HashMap<DeviceKey, (String, Vec<Delivery>)>>);

type DeviceKey = (OwnedUserId, OwnedDeviceId);

impl SyncDeliveries {
    fn lock(&self) -> MutexGuard<'_, HashMap<DeviceKey, (String, Vec<Delivery>)>> {
        // Held for a map operation only, never across an await.
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Remembers what the response ending at `next_batch` carried (forgetting the previous one:
    /// a device acknowledges only its latest response).
    pub fn sent(&self, user: &UserId, device: OwnedDeviceId, next_batch: &str, deliveries: Vec<Delivery>) {
        let key = (user.to_owned(), device);
        if deliveries.is_empty() {
            self.lock().remove(&key);
        } else {
            self.lock().insert(key, (next_batch.to_owned(), deliveries));
        }
    }

    /// What the response ending at `since` carried, if it was the device's last one.
    pub fn acknowledged(&self, user: &UserId, device: OwnedDeviceId, since: &str) -> Vec<Delivery> {
        let mut map = self.lock();
        let key = (user.to_owned(), device);
        match map.get(&key) {
            Some((next_batch, _)) if next_batch == since => {
                map.remove(&key).map(|(_, d)| d).unwrap_or_default()
            }
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_response_carries_the_last_event_of_others_per_joined_room() {
        let me = ruma::user_id!("@me:hs.test");
        let event = |id: &str, sender: &str| json!({ "event_id": id, "sender": sender });
        let response = json!({ "rooms": { "join": {
            "!a:hs.test": { "timeline": { "events": [
                event("$1", "@you:hs.test"), event("$2", "@them:hs.test"), event("$3", "@me:hs.test"),
            ] } },
            "!b:hs.test": { "timeline": { "events": [event("$4", "@me:hs.test")] } },
        } } });

        let carried = carried(me, &response);
        let ids: Vec<_> = carried.iter().map(|d| (d.room_id.as_str(), d.event_id.as_str())).collect();
        assert_eq!(ids, [("!a:hs.test", "$2")]);
        assert_eq!(carried[0].sender, "@them:hs.test");
        assert!(super::carried(me, &json!({ "rooms": {} })).is_empty());
    }

    #[test]
    fn only_the_latest_response_of_a_device_is_acknowledged() {
        let (me, device) = (ruma::user_id!("@me:hs.test"), ruma::owned_device_id!("D"));
        let delivery = Delivery {
            room_id: ruma::owned_room_id!("!a:hs.test"),
            event_id: ruma::owned_event_id!("$1"),
            sender: ruma::owned_user_id!("@you:hs.test"),
        };
        let pending = SyncDeliveries::default();
        pending.sent(me, device.clone(), "s1", vec![delivery.clone()]);
        pending.sent(me, device.clone(), "s2", vec![delivery.clone()]);

        assert!(pending.acknowledged(me, device.clone(), "s1").is_empty());
        assert_eq!(pending.acknowledged(me, device.clone(), "s2"), [delivery]);
        assert!(pending.acknowledged(me, device, "s2").is_empty(), "acknowledged once");
    }
}
