//! Transaction IDs echoed back (spec: Client-Server API › Transaction identifiers): an event is
//! served with `unsigned.transaction_id` only to the device that sent it, so that device can
//! match it to its local echo.

use std::{borrow::Borrow, collections::HashMap};

use ruma::{DeviceId, UserId};
use serde_json::Value;

use super::{
    Pdu,
    serve::{self, Redactions},
};
use crate::{Homeserver, Result, storage::txns};

/// The events in the client format as `device_id` of `user_id` should see them: what
/// [`serve::client_events`] gives everyone, plus `unsigned.transaction_id` on the events this
/// device sent with a transaction ID.
pub async fn client_events_for_device(
    hs: &Homeserver,
    user_id: &UserId,
    device_id: &DeviceId,
    pdus: &[Pdu],
) -> Result<Vec<Value>> {
    client_events_for_device_with(hs, user_id, device_id, pdus, Redactions::LookUp).await
}

/// [`client_events_for_device`] when the redactions may be known already.
pub async fn client_events_for_device_with(
    hs: &Homeserver,
    user_id: &UserId,
    device_id: &DeviceId,
    pdus: &[impl Borrow<Pdu>],
    redactions: Redactions<'_>,
) -> Result<Vec<Value>> {
    let pdus: Vec<&Pdu> = pdus.iter().map(Borrow::borrow).collect();
    let mut served = serve::client_events_of(hs, user_id, &pdus, redactions).await?;
    let own: Vec<&str> = pdus.iter().filter(|p| p.sender == user_id).map(|p| p.event_id.as_str()).collect();
    if own.is_empty() {
        return Ok(served);
    }
    let mut conn = hs.db().pool().acquire().await?;
    let txn_ids: HashMap<String, String> =
        txns::for_events(&mut conn, user_id, device_id, &own).await?.into_iter().collect();
    if txn_ids.is_empty() {
        return Ok(served);
    }
    for (pdu, event) in pdus.iter().zip(&mut served) {
        if let (Some(txn_id), Value::Object(object)) = (txn_ids.get(pdu.event_id.as_str()), event) {
            let unsigned = object.entry("unsigned").or_insert_with(|| Value::Object(Default::default()));
            if let Value::Object(unsigned) = unsigned {
                unsigned.insert("transaction_id".to_owned(), Value::String(txn_id.clone()));
            }
        }
    }
    Ok(served)
}
