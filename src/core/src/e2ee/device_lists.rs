//! Device list tracking (spec: Client-Server API › End-to-End Encryption › Tracking the device
//! list for a user; Extensions to /sync): which users' devices or keys a client must fetch
//! again, for `/sync`'s `device_lists` and `GET /keys/changes`.
//!
//! A change is recorded, in the writer's transaction, whenever a local user's device list
//! changes: identity keys uploaded or changed, a device added by login or deleted, cross-signing
//! keys uploaded or signatures added. [`changes`] then answers for a range of positions:
//!
//! - `changed`: users whose list changed in the range and who share a room with the viewer now
//!   (both joined), the viewer included; plus users who joined (or re-joined, or only changed
//!   their profile: a `join` after a `join` counts, as the spec's simpler logic allows) a room
//!   the viewer is in, and every member of a room the viewer joined, within the range, as long
//!   as they share a room now.
//! - `left`: users who left or were banned from a room the viewer has a membership in, and
//!   every member of a room the viewer left or was banned from, within the range, who share no
//!   room with the viewer now.
//!
//! "Now" is the current state when asked, not the state at the end of the range: a sync that
//! lags behind may report a user a little early, which only makes the client ask for keys once
//! more. All rooms count, not only encrypted ones (a superset the spec permits).
//!
//! Across servers (spec: Server-Server API › Device Management; End-to-End Encryption): a local
//! change is also told to every other server sharing a room with the user, in the same
//! transaction, through the federation outbox ([`super::device_updates`]); a change another
//! server announces of one of its users is recorded like a local one ([`receive_remote`]), so
//! local users sharing a room with them see them in `changed`. Other servers' users also appear
//! through their membership events, as above.

use std::collections::BTreeSet;

use ruma::{DeviceId, OwnedDeviceId, OwnedRoomId, OwnedUserId, UserId};
use serde::Deserialize;

use super::device_updates;
use crate::{
    Homeserver, Result,
    rooms::outbound,
    storage::{
        Conn, WriteTx, device_lists, rooms,
        streams::{self, Stream},
    },
    sync::SyncToken,
};

/// Users to fetch keys for again, and users no longer to track.
pub type Changes = (Vec<OwnedUserId>, Vec<OwnedUserId>);

/// What changed in a local user's device list; it decides what other servers are told.
#[derive(Clone, Copy, Debug)]
pub enum Change<'a> {
    /// These devices were added (identity keys uploaded), changed (keys, signatures, display
    /// name) or deleted: an `m.device_list_update` each.
    Devices(&'a [OwnedDeviceId]),
    /// The user's master or self-signing key, or their signatures: an `m.signing_key_update`.
    SigningKeys,
    /// What only the user may see (their user-signing key, their signatures of other users'
    /// keys): no other server is told.
    Private,
}

/// Records that `user_id`'s device list changed, inside the write transaction that changes it
/// (then [`announce`] after the commit), and queues in it the EDUs that tell the other servers
/// sharing a room with the user. Each changed device takes a position of its own: it is the
/// `stream_id` of its `m.device_list_update`, whose `prev_id` is the user's position before.
pub async fn record_change(
    hs: &Homeserver,
    tx: &mut WriteTx,
    user_id: &UserId,
    change: Change<'_>,
) -> Result<()> {
    let servers = match change {
        Change::Private => Vec::new(),
        _ => outbound::servers_sharing_rooms_with(hs, tx, user_id).await?,
    };
    match change {
        Change::Devices(devices) => {
            let mut prev = device_lists::last_position(&mut **tx, user_id).await?;
            let mut updates = Vec::with_capacity(devices.len());
            for device_id in devices {
                let position = record(tx, user_id).await?;
                updates.push(DeviceUpdate { device_id, position, prev });
                prev = Some(position);
            }
            device_updates::queue_devices(tx, &servers, user_id, &updates).await
        }
        Change::SigningKeys => {
            record(tx, user_id).await?;
            device_updates::queue_signing_keys(tx, &servers, user_id).await
        }
        Change::Private => record(tx, user_id).await.map(drop),
    }
}

/// One device's change as another server is told of it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct DeviceUpdate<'a> {
    /// The device.
    pub(crate) device_id: &'a DeviceId,
    /// Its change's position (`stream_id`).
    pub(crate) position: i64,
    /// The user's position before (`prev_id`).
    pub(crate) prev: Option<i64>,
}

/// A row for `user_id` at the next device-list position; returns the position.
async fn record(tx: &mut WriteTx, user_id: &UserId) -> Result<i64> {
    let position = streams::next_position(tx, Stream::DeviceLists).await?;
    device_lists::insert(tx, user_id, position).await?;
    Ok(position)
}

/// The position of `user_id`'s latest device-list change (0 for none): the `stream_id` another
/// server's `/user/devices` gets, which the next `m.device_list_update` names as its `prev_id`.
pub async fn latest_position(hs: &Homeserver, user_id: &UserId) -> Result<i64> {
    Ok(device_lists::last_position(hs.db().pool(), user_id).await?.unwrap_or(0))
}

/// Another server told us (`m.device_list_update`, `m.signing_key_update`) that the device list
/// of `user_id`, one of its users, changed: recorded, and the local users sharing a room with
/// them woken, so their clients fetch the keys again (`/keys/query` always asks the user's
/// server: nothing is cached here). A user no local user shares a room with is ignored.
pub async fn receive_remote(hs: &Homeserver, user_id: &UserId) -> Result<()> {
    let ours = hs.server_name();
    let sharing = rooms::users_sharing_rooms_with(hs.db().pool(), user_id).await?;
    if !sharing.iter().any(|user| user.server_name() == ours) {
        return Ok(());
    }
    let mut tx = hs.db().begin().await?;
    record(&mut tx, user_id).await?;
    tx.commit().await?;
    announce(hs, user_id);
    Ok(())
}

/// Wakes the syncs of everyone sharing a room with `user_id` (and `user_id`'s own) after a
/// committed [`record_change`].
pub fn announce(hs: &Homeserver, user_id: &UserId) {
    hs.notifier().wake_sharing_with(user_id.to_owned());
}

/// The device list changes `viewer` must hear of between two points: `from` and `to` are
/// `(events, device_lists)` stream positions, and the range is `(from, to]` in each stream.
/// Returns `(changed, left)`, each sorted; see the module documentation for what they cover.
/// `members_moved` is false when the caller knows no membership changed in the viewer's rooms
/// in the window, which saves looking.
pub async fn changes(
    conn: &mut Conn,
    viewer: &UserId,
    from: (i64, i64),
    to: (i64, i64),
    members_moved: bool,
) -> Result<Changes> {
    let mut changed: BTreeSet<OwnedUserId> = BTreeSet::new();
    if to.1 > from.1 {
        changed.extend(device_lists::changed_between(conn, from.1, to.1).await?);
    }
    let mut left = BTreeSet::new();
    if to.0 > from.0 && members_moved {
        let events = device_lists::member_events_between(conn, viewer, from.0, to.0).await?;
        let moves = Moves::of(
            viewer,
            events.into_iter().filter_map(|e| Some((e.room_id, e.target, membership(&e.json)?))),
        );
        changed.extend(moves.joined);
        left.extend(moves.left);
        for room_id in &moves.rooms_joined {
            changed.extend(device_lists::joined_members(conn, room_id).await?);
        }
        for room_id in &moves.rooms_left {
            left.extend(device_lists::joined_members(conn, room_id).await?);
        }
    }
    if changed.is_empty() && left.is_empty() {
        // The common sync: no need to look up who shares a room with the viewer.
        return Ok(Changes::default());
    }
    let mut sharing: BTreeSet<OwnedUserId> =
        rooms::users_sharing_rooms_with(&mut *conn, viewer).await?.into_iter().collect();
    sharing.insert(viewer.to_owned());
    Ok(settle(viewer, changed, left, &sharing))
}

/// `GET /keys/changes`: the changes since the sync token `from` up to now. The spec makes `to`
/// a hint only, so the range always ends at the current positions. `None` for a token that
/// does not parse.
pub async fn since(hs: &Homeserver, viewer: &UserId, from: &str) -> Result<Option<Changes>> {
    let Ok(from) = SyncToken::parse(from) else { return Ok(None) };
    let to = (hs.db().events().upto(), hs.db().streams().current(Stream::DeviceLists));
    let mut conn = hs.db().pool().acquire().await?;
    Ok(Some(changes(&mut conn, viewer, (from.events, from.device_lists), to, true).await?))
}

/// What membership events within a range mean for one viewer's device list tracking.
#[derive(Debug, Default, PartialEq, Eq)]
struct Moves {
    /// Others who joined a room the viewer has a membership in.
    joined: BTreeSet<OwnedUserId>,
    /// Others who left or were banned from such a room.
    left: BTreeSet<OwnedUserId>,
    /// Rooms the viewer joined: their members may be new to the viewer.
    rooms_joined: BTreeSet<OwnedRoomId>,
    /// Rooms the viewer left or was banned from: their members may no longer be shared.
    rooms_left: BTreeSet<OwnedRoomId>,
}

impl Moves {
    fn of(viewer: &UserId, events: impl IntoIterator<Item = (OwnedRoomId, OwnedUserId, String)>) -> Moves {
        let mut moves = Moves::default();
        for (room_id, target, membership) in events {
            let own = target == viewer;
            match (membership.as_str(), own) {
                ("join", true) => {
                    moves.rooms_joined.insert(room_id);
                }
                ("join", false) => {
                    moves.joined.insert(target);
                }
                ("leave" | "ban", true) => {
                    moves.rooms_left.insert(room_id);
                }
                ("leave" | "ban", false) => {
                    moves.left.insert(target);
                }
                _ => {}
            }
        }
        moves
    }
}

/// Final answer from the candidates: `changed` keeps those sharing a room with the viewer now
/// (the viewer among them), `left` those sharing none (never the viewer).
fn settle(
    viewer: &UserId,
    changed: BTreeSet<OwnedUserId>,
    left: BTreeSet<OwnedUserId>,
    sharing: &BTreeSet<OwnedUserId>,
) -> Changes {
    let changed = changed.into_iter().filter(|u| sharing.contains(u)).collect();
    let left = left.into_iter().filter(|u| u != viewer && !sharing.contains(u)).collect();
    (changed, left)
}

/// The `content.membership` of a stored membership event.
fn membership(json: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Event {
        content: Content,
    }
    #[derive(Deserialize)]
    struct Content {
        membership: String,
    }
    serde_json::from_str::<Event>(json).ok().map(|e| e.content.membership)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str) -> OwnedUserId {
        id.try_into().expect("user id")
    }

    fn room(id: &str) -> OwnedRoomId {
        id.try_into().expect("room id")
    }

    #[test]
    fn membership_events_sort_into_others_moves_and_the_viewers_rooms() {
        let viewer = user("@alice:x");
        let events = [
            (room("!a:x"), user("@bob:x"), "join".to_owned()),
            (room("!a:x"), user("@carol:x"), "leave".to_owned()),
            (room("!b:x"), user("@dave:x"), "ban".to_owned()),
            (room("!b:x"), user("@erin:x"), "invite".to_owned()),
            (room("!c:x"), viewer.clone(), "join".to_owned()),
            (room("!d:x"), viewer.clone(), "leave".to_owned()),
        ];
        let moves = Moves::of(&viewer, events);
        assert_eq!(moves.joined, BTreeSet::from([user("@bob:x")]));
        assert_eq!(moves.left, BTreeSet::from([user("@carol:x"), user("@dave:x")]));
        assert_eq!(moves.rooms_joined, BTreeSet::from([room("!c:x")]));
        assert_eq!(moves.rooms_left, BTreeSet::from([room("!d:x")]));
    }

    #[test]
    fn only_users_sharing_a_room_now_are_changed_and_only_others_sharing_none_have_left() {
        let viewer = user("@alice:x");
        let sharing = BTreeSet::from([viewer.clone(), user("@bob:x")]);
        let changed = BTreeSet::from([viewer.clone(), user("@bob:x"), user("@carol:x")]);
        let left = BTreeSet::from([viewer.clone(), user("@bob:x"), user("@dave:x")]);
        let (changed, left) = settle(&viewer, changed, left, &sharing);
        assert_eq!(changed, [viewer, user("@bob:x")], "carol shares no room: not changed");
        assert_eq!(left, [user("@dave:x")], "bob still shares a room; the viewer never leaves herself");
    }

    #[test]
    fn membership_is_read_from_the_content() {
        assert_eq!(
            membership(r#"{"content":{"membership":"join"},"type":"m.room.member"}"#).as_deref(),
            Some("join")
        );
        assert_eq!(membership(r#"{"content":{}}"#), None);
    }
}
