//! Room membership (spec: Client-Server API › Room membership).

use std::collections::BTreeMap;

use hearth_core::{
    Error, Homeserver,
    accounts::User,
    rooms::{
        aliases, membership, serve, state_view,
        timeline::{self, StreamToken},
    },
    storage::rooms as room_store,
};
use hearth_federation::Federation;
use ruma::api::client::knock::knock_room;
use ruma::{
    OwnedMxcUri, OwnedRoomId, OwnedUserId, RoomId,
    api::client::membership::{
        ban_user, forget_room, get_member_events,
        invite_user::{self, v3::InvitationRecipient},
        join_room_by_id, join_room_by_id_or_alias,
        joined_members::{self, v3::RoomMember},
        joined_rooms, kick_user, leave_room, unban_user,
    },
};
use serde_json::{Map, Value};

use crate::{convert::raw, error::Result, ruma_wrapper::Ruma};

/// Extra member-event content from the raw body (ruma models only `reason`).
fn extra_content(raw_body: &[u8]) -> Map<String, Value> {
    let mut extra: Map<String, Value> = serde_json::from_slice(raw_body).unwrap_or_default();
    for reserved in
        ["membership", "third_party_signed", "via", "server_name", "join_authorised_via_users_server"]
    {
        extra.remove(reserved);
    }
    extra
}

/// The room a path's `{roomIdOrAlias}` names: a room ID as it is, an alias resolved (404
/// `M_NOT_FOUND` when unknown); anything else 400 `M_INVALID_PARAM`.
pub async fn resolve_room(hs: &Homeserver, room_id_or_alias: &str) -> Result<OwnedRoomId> {
    if let Ok(room_id) = RoomId::parse(room_id_or_alias) {
        return Ok(room_id);
    }
    let alias = ruma::RoomAliasId::parse(room_id_or_alias)
        .map_err(|_| Error::invalid_param("Not a room ID or alias"))?;
    Ok(aliases::resolve(hs, &alias).await?)
}

/// `POST /_matrix/client/v3/rooms/{roomId}/join`
/// <https://spec.matrix.org/latest/client-server-api/#post_matrixclientv3roomsroomidjoin>
pub async fn join_by_id(
    hs: Homeserver,
    req: Ruma<join_room_by_id::v3::Request>,
) -> Result<join_room_by_id::v3::Response> {
    let room_id = req.body.room_id;
    membership::join(&hs, &req.auth.user_id, &room_id, extra_content(&req.raw_body), &[]).await?;
    Ok(join_room_by_id::v3::Response::new(room_id))
}

/// `POST /_matrix/client/v3/join/{roomIdOrAlias}`
/// <https://spec.matrix.org/latest/client-server-api/#post_matrixclientv3joinroomidoralias>
pub async fn join_by_id_or_alias(
    fed: Federation,
    req: Ruma<join_room_by_id_or_alias::v3::Request>,
) -> Result<join_room_by_id_or_alias::v3::Response> {
    let mut via = req.body.via.clone();
    let room_id = match RoomId::parse(req.body.room_id_or_alias.as_str()) {
        Ok(room_id) => room_id,
        Err(_) => {
            let alias = ruma::RoomAliasId::parse(req.body.room_id_or_alias.as_str())
                .map_err(|_| Error::invalid_param("Not a room ID or alias"))?;
            let (room_id, servers) = crate::alias::resolve(&fed, alias).await?;
            via.extend(servers);
            room_id
        }
    };
    membership::join(fed.hs(), &req.auth.user_id, &room_id, extra_content(&req.raw_body), &via).await?;
    Ok(join_room_by_id_or_alias::v3::Response::new(room_id))
}

/// `POST /_matrix/client/v3/knock/{roomIdOrAlias}`
/// <https://spec.matrix.org/latest/client-server-api/#post_matrixclientv3knockroomidoralias>
pub async fn knock(hs: Homeserver, req: Ruma<knock_room::v3::Request>) -> Result<knock_room::v3::Response> {
    let room_id = resolve_room(&hs, req.body.room_id_or_alias.as_str()).await?;
    membership::knock(&hs, &req.auth.user_id, &room_id, req.body.reason.as_deref(), &req.body.via).await?;
    Ok(knock_room::v3::Response::new(room_id))
}

/// `POST /_matrix/client/v3/rooms/{roomId}/invite`
/// <https://spec.matrix.org/latest/client-server-api/#post_matrixclientv3roomsroomidinvite>
pub async fn invite(
    hs: Homeserver,
    req: Ruma<invite_user::v3::Request>,
) -> Result<invite_user::v3::Response> {
    let InvitationRecipient::UserId(recipient) = &req.body.recipient else {
        return Err(Error::forbidden("Third-party invites are not supported").into());
    };
    membership::invite(
        &hs,
        &req.auth.user_id,
        &req.body.room_id,
        &recipient.user_id,
        recipient.reason.as_deref(),
    )
    .await?;
    Ok(invite_user::v3::Response::new())
}

/// `POST /_matrix/client/v3/rooms/{roomId}/leave`
/// <https://spec.matrix.org/latest/client-server-api/#post_matrixclientv3roomsroomidleave>
pub async fn leave(hs: Homeserver, req: Ruma<leave_room::v3::Request>) -> Result<leave_room::v3::Response> {
    membership::leave(&hs, &req.auth.user_id, &req.body.room_id, req.body.reason.as_deref()).await?;
    Ok(leave_room::v3::Response::new())
}

/// `POST /_matrix/client/v3/rooms/{roomId}/kick`
/// <https://spec.matrix.org/latest/client-server-api/#post_matrixclientv3roomsroomidkick>
pub async fn kick(hs: Homeserver, req: Ruma<kick_user::v3::Request>) -> Result<kick_user::v3::Response> {
    let b = req.body;
    membership::moderate(&hs, &req.auth.user_id, &b.room_id, &b.user_id, "leave", b.reason.as_deref())
        .await?;
    Ok(kick_user::v3::Response::new())
}

/// `POST /_matrix/client/v3/rooms/{roomId}/ban`
/// <https://spec.matrix.org/latest/client-server-api/#post_matrixclientv3roomsroomidban>
pub async fn ban(hs: Homeserver, req: Ruma<ban_user::v3::Request>) -> Result<ban_user::v3::Response> {
    let b = req.body;
    membership::moderate(&hs, &req.auth.user_id, &b.room_id, &b.user_id, "ban", b.reason.as_deref()).await?;
    Ok(ban_user::v3::Response::new())
}

/// `POST /_matrix/client/v3/rooms/{roomId}/unban`
/// <https://spec.matrix.org/latest/client-server-api/#post_matrixclientv3roomsroomidunban>
pub async fn unban(hs: Homeserver, req: Ruma<unban_user::v3::Request>) -> Result<unban_user::v3::Response> {
    let b = req.body;
    if membership::membership_of(&hs, &b.room_id, &b.user_id).await?.as_deref() != Some("ban") {
        return Err(Error::forbidden("The user is not banned").into());
    }
    membership::moderate(&hs, &req.auth.user_id, &b.room_id, &b.user_id, "leave", b.reason.as_deref())
        .await?;
    Ok(unban_user::v3::Response::new())
}

/// `POST /_matrix/client/v3/rooms/{roomId}/forget`
/// <https://spec.matrix.org/latest/client-server-api/#post_matrixclientv3roomsroomidforget>
pub async fn forget(
    hs: Homeserver,
    req: Ruma<forget_room::v3::Request>,
) -> Result<forget_room::v3::Response> {
    membership::forget(&hs, &req.auth.user_id, &req.body.room_id).await?;
    Ok(forget_room::v3::Response::new())
}

/// `GET /_matrix/client/v3/joined_rooms`
/// <https://spec.matrix.org/latest/client-server-api/#get_matrixclientv3joined_rooms>
pub async fn joined_rooms(
    hs: Homeserver,
    req: Ruma<joined_rooms::v3::Request>,
) -> Result<joined_rooms::v3::Response> {
    let rooms = room_store::rooms_with_membership(hs.db().pool(), &req.auth.user_id, "join").await?;
    Ok(joined_rooms::v3::Response::new(rooms))
}

/// `GET /_matrix/client/v3/rooms/{roomId}/joined_members`
/// <https://spec.matrix.org/latest/client-server-api/#get_matrixclientv3roomsroomidjoined_members>
pub async fn joined_members(
    hs: Homeserver,
    req: Ruma<joined_members::v3::Request>,
) -> Result<joined_members::v3::Response> {
    let room_id = &req.body.room_id;
    require_member(&hs, &req.auth, room_id).await?;
    let mut joined = BTreeMap::new();
    for pdu in timeline::members(&hs, room_id).await? {
        let content = pdu.content_value();
        if content.get("membership").and_then(Value::as_str) != Some("join") {
            continue;
        }
        let Some(user_id) = pdu.state_key.as_deref().and_then(|k| OwnedUserId::try_from(k).ok()) else {
            continue;
        };
        let mut member = RoomMember::new();
        member.display_name = content.get("displayname").and_then(Value::as_str).map(str::to_owned);
        member.avatar_url = content.get("avatar_url").and_then(Value::as_str).map(OwnedMxcUri::from);
        joined.insert(user_id, member);
    }
    Ok(joined_members::v3::Response::new(joined))
}

/// `GET /_matrix/client/v3/rooms/{roomId}/members`
/// <https://spec.matrix.org/latest/client-server-api/#get_matrixclientv3roomsroomidmembers>
pub async fn members(
    hs: Homeserver,
    req: Ruma<get_member_events::v3::Request>,
) -> Result<get_member_events::v3::Response> {
    let (body, user) = (req.body, req.auth.user_id);
    let at = body.at.as_deref().map(StreamToken::parse).transpose()?;
    let wanted = body.membership.map(|m| m.to_string());
    let unwanted = body.not_membership.map(|m| m.to_string());
    let mut members = state_view::members(&hs, &user, &body.room_id, at).await?;
    members.retain(|pdu| {
        let content = pdu.content_value();
        let membership = content.get("membership").and_then(Value::as_str).unwrap_or_default();
        wanted.as_deref().is_none_or(|w| w == membership) && unwanted.as_deref() != Some(membership)
    });
    let chunk = serve::client_events(&hs, &user, &members).await?;
    Ok(get_member_events::v3::Response::new(chunk.iter().map(raw).collect()))
}

async fn require_member(hs: &Homeserver, user: &User, room_id: &RoomId) -> Result<()> {
    timeline::ensure_can_read(hs, &user.user_id, room_id).await.map_err(Into::into)
}
