//! Conversations: creating one (a Matrix room, its participants invited) and paging through its
//! messages.

use std::collections::HashSet;

use axum::{Json, extract::State};
use hearth_core::{
    Error, Homeserver,
    rooms::{
        create::{self, CreateRoom, Preset},
        history::{self, MessagesQuery},
        serve::Redactions,
        timeline::StreamToken,
        transaction_ids,
    },
};
use ruma::{
    OwnedUserId,
    api::client::{filter::RoomEventFilter, room::create_room},
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Caller, JsonBody, PathParam, QueryParams};
use crate::{error::Result, ruma_wrapper::rate_limit, ws::vocabulary};

/// Most messages one page returns.
const MAX_LIMIT: usize = 100;
/// Messages per page unless `limit` says otherwise.
const DEFAULT_LIMIT: usize = 20;

/// What kind of conversation to create.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Two people: exactly one participant besides the creator, invited as a direct chat with
    /// the creator's power (`trusted_private_chat`).
    Direct,
    /// Any number of participants, invited to a private room (`private_chat`).
    Group,
}

/// The body of `POST /api/v1/conversations`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewConversation {
    #[serde(rename = "type")]
    kind: Kind,
    /// Who to invite (the creator joins by creating).
    #[serde(default)]
    participants: Vec<OwnedUserId>,
    /// The room name.
    name: Option<String>,
    /// The room topic.
    topic: Option<String>,
}

/// `POST /api/v1/conversations`: creates a room as `POST /createRoom` would, inviting the
/// participants.
pub async fn create(
    State(hs): State<Homeserver>,
    Caller(user): Caller,
    JsonBody(mut body): JsonBody<NewConversation>,
) -> Result<Json<Value>> {
    rate_limit::<create_room::v3::Request>(&hs, &user)?;
    // Each participant is invited once, however often named.
    let mut named = HashSet::new();
    body.participants.retain(|participant| named.insert(participant.clone()));
    if body.participants.contains(&user.user_id) {
        return Err(Error::invalid_param("The creator is not one of the participants").into());
    }
    if body.kind == Kind::Direct && body.participants.len() != 1 {
        return Err(Error::invalid_param("A direct conversation has exactly one participant").into());
    }
    let preset = match body.kind {
        Kind::Direct => Preset::TrustedPrivateChat,
        Kind::Group => Preset::PrivateChat,
    };
    let request = CreateRoom {
        preset: Some(preset),
        name: body.name,
        topic: body.topic,
        invite: body.participants.clone(),
        is_direct: body.kind == Kind::Direct,
        ..CreateRoom::default()
    };
    let room_id = create::create_room(&hs, &user.user_id, request).await?;
    Ok(Json(json!({
        "conversation_id": room_id,
        "type": body.kind,
        "participants": body.participants,
    })))
}

/// The query of `GET /api/v1/conversations/{conversation_id}/messages`.
#[derive(Debug, Deserialize)]
pub struct MessagesParams {
    /// A `next_from` of an earlier page; the newest (`dir=b`) or oldest (`dir=f`) message when
    /// absent.
    from: Option<String>,
    /// `b` (newest first, the default) or `f`.
    dir: Option<String>,
    /// Messages per page, 1 to 100.
    limit: Option<usize>,
}

/// `GET /api/v1/conversations/{conversation_id}/messages`: a page of the room's
/// `m.room.message` events the caller may read, as `GET /rooms/{roomId}/messages` would serve
/// them (same history visibility: 403 when the caller may read nothing of the room).
pub async fn messages(
    State(hs): State<Homeserver>,
    Caller(user): Caller,
    conversation: PathParam,
    QueryParams(params): QueryParams<MessagesParams>,
) -> Result<Json<Value>> {
    let room_id = conversation.room_id()?;
    let backwards = match params.dir.as_deref() {
        None | Some("b") => true,
        Some("f") => false,
        Some(_) => return Err(Error::invalid_param("dir must be b or f").into()),
    };
    let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(Error::invalid_param(format!("limit must be 1 to {MAX_LIMIT}")).into());
    }
    let mut filter = RoomEventFilter::default();
    filter.types = Some(vec!["m.room.message".to_owned()]);
    let query = MessagesQuery {
        from: params.from.as_deref().map(StreamToken::parse).transpose()?,
        to: None,
        backwards,
        limit,
        filter: &filter,
    };
    let page = history::messages(&hs, &user.user_id, &room_id, query).await?;
    let served = transaction_ids::client_events_for_device_with(
        &hs,
        &user.user_id,
        &user.device_id,
        &page.events,
        Redactions::Known(&page.redactions),
    )
    .await?;
    // A redacted message has no body left but is still a message in the conversation.
    let messages: Vec<Value> = served
        .iter()
        .filter_map(|event| vocabulary::message(room_id.as_str(), event))
        .map(Value::Object)
        .collect();
    Ok(Json(json!({ "messages": messages, "next_from": page.end.map(|t| t.to_string()) })))
}
