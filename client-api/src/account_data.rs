//! Account data (spec: Client-Server API › Client Config): global and per-room JSON objects a
//! user keeps for their clients.

use hearth_core::{Homeserver, account_data};
use ruma::{
    api::client::config::{
        get_global_account_data, get_room_account_data, set_global_account_data, set_room_account_data,
    },
    serde::Raw,
};

use crate::{error::Result, ruma_wrapper::Ruma};

/// `GET /_matrix/client/v3/user/{userId}/account_data/{type}`
/// <https://spec.matrix.org/latest/client-server-api/#get_matrixclientv3useruseridaccount_datatype>
pub async fn get_global(
    hs: Homeserver,
    req: Ruma<get_global_account_data::v3::Request>,
) -> Result<get_global_account_data::v3::Response> {
    let body = req.body;
    account_data::ensure_own(&req.auth.user_id, &body.user_id)?;
    let content = account_data::get(&hs, &body.user_id, None, &body.event_type.to_string()).await?;
    Ok(get_global_account_data::v3::Response::new(Raw::from_json(content)))
}

/// `PUT /_matrix/client/v3/user/{userId}/account_data/{type}`
/// <https://spec.matrix.org/latest/client-server-api/#put_matrixclientv3useruseridaccount_datatype>
pub async fn set_global(
    hs: Homeserver,
    req: Ruma<set_global_account_data::v3::Request>,
) -> Result<set_global_account_data::v3::Response> {
    let body = req.body;
    account_data::ensure_own(&req.auth.user_id, &body.user_id)?;
    account_data::set(&hs, &body.user_id, None, &body.event_type.to_string(), body.data.json().get()).await?;
    Ok(set_global_account_data::v3::Response::new())
}

/// `GET /_matrix/client/v3/user/{userId}/rooms/{roomId}/account_data/{type}`
/// <https://spec.matrix.org/latest/client-server-api/#get_matrixclientv3useruseridroomsroomidaccount_datatype>
pub async fn get_room(
    hs: Homeserver,
    req: Ruma<get_room_account_data::v3::Request>,
) -> Result<get_room_account_data::v3::Response> {
    let body = req.body;
    account_data::ensure_own(&req.auth.user_id, &body.user_id)?;
    let kind = body.event_type.to_string();
    let content = account_data::get(&hs, &body.user_id, Some(&body.room_id), &kind).await?;
    Ok(get_room_account_data::v3::Response::new(Raw::from_json(content)))
}

/// `PUT /_matrix/client/v3/user/{userId}/rooms/{roomId}/account_data/{type}`
/// <https://spec.matrix.org/latest/client-server-api/#put_matrixclientv3useruseridroomsroomidaccount_datatype>
pub async fn set_room(
    hs: Homeserver,
    req: Ruma<set_room_account_data::v3::Request>,
) -> Result<set_room_account_data::v3::Response> {
    let body = req.body;
    account_data::ensure_own(&req.auth.user_id, &body.user_id)?;
    let kind = body.event_type.to_string();
    account_data::set(&hs, &body.user_id, Some(&body.room_id), &kind, body.data.json().get()).await?;
    Ok(set_room_account_data::v3::Response::new())
}
