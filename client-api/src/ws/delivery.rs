//! Delivery on the socket (`hearth_core::delivery`): what a written batch carried is proven
//! received by the pong to a ping sent right after it — a client answers a ping only after
//! reading every earlier frame, and browsers answer by themselves — or by an `ack` frame.

use std::collections::HashMap;

use hearth_core::{
    Homeserver, Result,
    config::DeliveryReceipts,
    delivery::{self, Delivery},
};
use ruma::{OwnedRoomId, UserId};
use serde_json::Value;

/// The payload of the ping that asks for proof of delivery.
pub(super) const PING: &[u8] = b"delivered";

/// Per room, the last event of another user written to the socket and not yet proven received.
#[derive(Debug, Default)]
pub(super) struct Pending(HashMap<OwnedRoomId, Delivery>);

impl Pending {
    /// Notes what a sync response about to be written carries; whether a delivery ping is due.
    pub(super) fn note(&mut self, hs: &Homeserver, me: &UserId, response: &Value) -> bool {
        if hs.config().delivery.receipts == DeliveryReceipts::Off {
            return false;
        }
        let carried = delivery::carried(me, response);
        let any = !carried.is_empty();
        self.0.extend(carried.into_iter().map(|d| (d.room_id.clone(), d)));
        any
    }

    /// Records everything noted as delivered to `user`.
    pub(super) async fn confirm(&mut self, hs: &Homeserver, user: &UserId) -> Result<()> {
        let deliveries: Vec<Delivery> = self.0.drain().map(|(_, delivery)| delivery).collect();
        delivery::record(hs, user, &deliveries).await
    }
}
