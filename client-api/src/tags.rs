//! Room tags (spec: Client-Server API › Room Tagging), kept as the `m.tag` room account data.

use axum::Json;
use hearth_core::{Homeserver, account_data};
use ruma::api::client::tag::{create_tag, delete_tag, get_tags};
use serde_json::{Map, Value, json};

use crate::{error::Result, json, ruma_wrapper::Ruma};

/// `GET /_matrix/client/v3/user/{userId}/rooms/{roomId}/tags`
/// <https://spec.matrix.org/latest/client-server-api/#get_matrixclientv3useruseridroomsroomidtags>
///
/// Served as plain JSON: ruma's tag info keeps only `order`, and a client gets back every field
/// it stored with a tag, as `/sync` will show them.
pub async fn get(hs: Homeserver, req: Ruma<get_tags::v3::Request>) -> Result<Json<Value>> {
    let body = req.body;
    account_data::ensure_own(&req.auth.user_id, &body.user_id)?;
    let tags = account_data::tags(&hs, &body.user_id, &body.room_id).await?;
    Ok(Json(json!({ "tags": tags })))
}

/// `PUT /_matrix/client/v3/user/{userId}/rooms/{roomId}/tags/{tag}`
/// <https://spec.matrix.org/latest/client-server-api/#put_matrixclientv3useruseridroomsroomidtagstag>
pub async fn set(hs: Homeserver, req: Ruma<create_tag::v3::Request>) -> Result<create_tag::v3::Response> {
    let body = req.body;
    account_data::ensure_own(&req.auth.user_id, &body.user_id)?;
    // The whole object is kept (ruma has checked `order`); an empty body is an empty tag info.
    let info: Map<String, Value> =
        if req.raw_body.trim_ascii().is_empty() { Map::new() } else { json::parse(&req.raw_body)? };
    account_data::set_tag(&hs, &body.user_id, &body.room_id, &body.tag, info).await?;
    Ok(create_tag::v3::Response::new())
}

/// `DELETE /_matrix/client/v3/user/{userId}/rooms/{roomId}/tags/{tag}`
/// <https://spec.matrix.org/latest/client-server-api/#delete_matrixclientv3useruseridroomsroomidtagstag>
pub async fn delete(hs: Homeserver, req: Ruma<delete_tag::v3::Request>) -> Result<delete_tag::v3::Response> {
    let body = req.body;
    account_data::ensure_own(&req.auth.user_id, &body.user_id)?;
    account_data::delete_tag(&hs, &body.user_id, &body.room_id, &body.tag).await?;
    Ok(delete_tag::v3::Response::new())
}
