//! Asking other servers for a room's history (spec: Server-Server API › Backfilling and
//! retrieving missing events): `GET /backfill` to the servers core names, the answer's events
//! verified (signatures: dropped on failure; content hash: redacted) before core authorises and
//! stores them (`hearth_core::rooms::backfill`).

use hearth_core::{Result, rooms::Pdu};
use ruma::{OwnedEventId, OwnedServerName, RoomId, UInt, api::federation::backfill::get_backfill};

use crate::{Federation, ingest, join::through};

/// Up to `limit` events of `room_id` before and including `from`, from the first of `servers`
/// that answers, those whose signatures verify.
pub async fn fetch(
    fed: &Federation,
    room_id: &RoomId,
    servers: &[OwnedServerName],
    from: &[OwnedEventId],
    limit: usize,
) -> Result<Vec<Pdu>> {
    let rules = hearth_core::rooms::remote::rules(fed.hs(), room_id).await?;
    let limit = UInt::try_from(limit).unwrap_or(UInt::MAX);
    through(servers, room_id, "backfill", |server| {
        let request = get_backfill::v1::Request::new(room_id.to_owned(), from.to_vec(), limit);
        let rules = &rules;
        async move {
            let answer = fed.client().send(server, request).await?;
            Ok(ingest::verified_all(fed, &answer.pdus, rules).await)
        }
    })
    .await
}
