//! Restricted joins (spec: Client-Server API › Restricted rooms; room versions 8+ and 10+ for
//! `knock_restricted`): a user who meets an `allow` condition may join without an invite, the
//! join being vouched for by a local member who can invite (`join_authorised_via_users_server`).

use ruma::{
    OwnedUserId, RoomId, UserId,
    events::room::join_rules::RoomJoinRulesEventContent,
    room::{AllowRule, JoinRule},
};

use super::{RoomHead, membership::membership_of, power, timeline};
use crate::{Error, Homeserver, Result};

/// For a join of `user` who is neither invited nor joined: `None` when the room's join rule is
/// not restricted, else the local member who authorises the join. 403 `M_FORBIDDEN` when the
/// user meets no `allow` condition or no local member may invite.
pub async fn authoriser(hs: &Homeserver, user: &UserId, room_id: &RoomId) -> Result<Option<OwnedUserId>> {
    let Some(rules) = timeline::current_state_event(hs, room_id, "m.room.join_rules", "").await? else {
        return Ok(None);
    };
    let Ok(content) = serde_json::from_str::<RoomJoinRulesEventContent>(rules.content.get()) else {
        return Ok(None);
    };
    let allow = match content.join_rule {
        JoinRule::Restricted(r) | JoinRule::KnockRestricted(r) => r.allow,
        _ => return Ok(None),
    };
    if !meets_allow(hs, user, &allow).await? {
        return Err(Error::forbidden("You are not in any room that would allow you to join"));
    }
    let mut conn = hs.db().pool().acquire().await?;
    let head = RoomHead::load(&mut conn, room_id).await?;
    let levels = power::levels(hs, &mut conn, &head).await?;
    let mut joined: Vec<OwnedUserId> = timeline::members(hs, room_id)
        .await?
        .into_iter()
        .filter(|pdu| pdu.content_value().get("membership").and_then(|m| m.as_str()) == Some("join"))
        .filter_map(|pdu| UserId::parse(pdu.state_key.as_deref()?).ok())
        .filter(|member| member.server_name() == hs.server_name() && levels.user_can_invite(member))
        .collect();
    joined.sort();
    joined
        .into_iter()
        .next()
        .map(Some)
        .ok_or_else(|| Error::forbidden("No member of this server can authorise the join"))
}

/// Whether `user` is joined to one of the rooms an `m.room_membership` allow rule names.
async fn meets_allow(hs: &Homeserver, user: &UserId, allow: &[AllowRule]) -> Result<bool> {
    for rule in allow {
        if let AllowRule::RoomMembership(rule) = rule
            && membership_of(hs, &rule.room_id, user).await?.as_deref() == Some("join")
        {
            return Ok(true);
        }
    }
    Ok(false)
}
