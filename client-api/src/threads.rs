//! Thread roots of a room (spec: Client-Server API › Threading › Querying threads in a room).

use hearth_core::{
    Homeserver,
    rooms::{relations, timeline::StreamToken, transaction_ids},
};
use ruma::api::client::threads::get_threads::{self, v1::IncludeThreads};

use crate::{convert::raw, error::Result, ruma_wrapper::Ruma};

/// Page size when the client gives none.
const DEFAULT_LIMIT: usize = 20;

/// `GET /_matrix/client/v1/rooms/{roomId}/threads`
/// <https://spec.matrix.org/latest/client-server-api/#get_matrixclientv1roomsroomidthreads>
pub async fn get(hs: Homeserver, req: Ruma<get_threads::v1::Request>) -> Result<get_threads::v1::Response> {
    let (body, user) = (req.body, req.auth);
    let from = body.from.as_deref().map(StreamToken::parse).transpose()?;
    let limit = body.limit.map_or(DEFAULT_LIMIT, |l| usize::try_from(u64::from(l)).unwrap_or(usize::MAX));
    let participated = body.include == IncludeThreads::Participated;
    let (roots, next) =
        relations::threads(&hs, &user.user_id, &body.room_id, participated, from, limit).await?;
    let served =
        transaction_ids::client_events_for_device(&hs, &user.user_id, &user.device_id, &roots).await?;
    let mut response = get_threads::v1::Response::new(served.iter().map(raw).collect());
    response.next_batch = next.map(|t| t.to_string());
    Ok(response)
}
