//! A user's own conversations and status. Only the user themself may read or set them (403
//! `M_FORBIDDEN` for anyone else).

use axum::{Json, extract::State};
use hearth_core::{Homeserver, presence, rooms::timeline, storage::rooms as room_store};
use ruma::presence::PresenceState;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Caller, JsonBody, PathParam, ensure_self};
use crate::error::Result;

/// The memberships listed, in this order: the conversations one is in, then those one is
/// invited to.
const LISTED: [&str; 2] = ["join", "invite"];

/// `GET /api/v1/users/{user_id}/conversations`: the rooms the user is joined or invited to
/// (`GET /joined_rooms` and the invites of `/sync`), each with its name.
pub async fn conversations(
    State(hs): State<Homeserver>,
    Caller(user): Caller,
    path: PathParam,
) -> Result<Json<Value>> {
    ensure_self(&user, &path.user_id()?, "conversations")?;
    let mut conversations = Vec::new();
    for membership in LISTED {
        for room_id in room_store::rooms_with_membership(hs.db().pool(), &user.user_id, membership).await? {
            let name = timeline::current_state_event(&hs, &room_id, "m.room.name", "").await?;
            let name = name.map(|pdu| pdu.content_value()["name"].clone()).unwrap_or(Value::Null);
            conversations.push(json!({
                "conversation_id": room_id,
                "membership": membership,
                "name": name,
            }));
        }
    }
    Ok(Json(json!({ "conversations": conversations })))
}

/// The body of `PUT /api/v1/users/{user_id}/status`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Status {
    /// `online`, `unavailable` or `offline`.
    status: PresenceState,
    /// A free-text status message.
    status_msg: Option<String>,
}

/// `PUT /api/v1/users/{user_id}/status`: sets the user's presence, as `PUT
/// /presence/{userId}/status` does.
pub async fn set_status(
    State(hs): State<Homeserver>,
    Caller(user): Caller,
    path: PathParam,
    JsonBody(body): JsonBody<Status>,
) -> Result<Json<Value>> {
    let target = path.user_id()?;
    ensure_self(&user, &target, "status")?;
    presence::set(&hs, &user.user_id, &target, &body.status, body.status_msg.as_deref()).await?;
    Ok(Json(json!({})))
}
