//! Presence (spec: Client-Server API › Presence): whether a user is online, unavailable or
//! offline, an optional status message, and how long ago they were last active. Users set their
//! own presence; it is visible to themselves and to users they share a room with. Every change
//! takes a new position in the presence stream, which `/sync` delivers from.
//!
//! A user the server has not seen for `presence.offline_after_secs` (no `/sync` with
//! `set_presence` other than offline, no presence change) is set `offline` by a sweep that runs
//! in the background ([`start_offline_sweeper`]), like any change: the users sharing a room with
//! them see it in their next `/sync`.

use std::time::Duration;

use ruma::{UserId, presence::PresenceState};

use crate::{
    Error, Homeserver, Result,
    storage::{
        presence, rooms,
        streams::{self, Stream},
        sync, users,
    },
    time::now_ms,
    user_cache::UserCache,
};

/// After this long without activity an `online` user is shown as `unavailable` (spec: Idle
/// timeout, "e.g. 5 minutes").
const IDLE_AFTER: Duration = Duration::from_secs(5 * 60);
/// An `online` user active this recently is `currently_active` (Synapse's granularity).
const CURRENTLY_ACTIVE_WITHIN: Duration = Duration::from_secs(60);
/// How often a syncing user's "last seen" time is written, at most (more often when
/// `presence.offline_after_secs` is under four times this).
const SEEN_EVERY: Duration = Duration::from_secs(60);
/// The longest pause between two offline sweeps.
const LONGEST_SWEEP_INTERVAL: Duration = Duration::from_secs(30);

/// A user's presence as another user sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Presence {
    /// `online`, `unavailable` or `offline`.
    pub state: PresenceState,
    /// The status message, if one was set.
    pub status_msg: Option<String>,
    /// Time since the user was last active; `None` if they never were.
    pub last_active_ago: Option<Duration>,
    /// For `online` users: whether they are active right now.
    pub currently_active: Option<bool>,
}

/// Sets `user`'s own presence (403 for anyone else's). Setting it counts as activity: the last
/// active time becomes now.
pub async fn set(
    hs: &Homeserver,
    user: &UserId,
    target: &UserId,
    state: &PresenceState,
    status_msg: Option<&str>,
) -> Result<()> {
    if user != target {
        return Err(Error::forbidden("You cannot set the presence state of another user"));
    }
    let state = match state {
        PresenceState::Online | PresenceState::Unavailable | PresenceState::Offline => state.as_str(),
        other => return Err(Error::invalid_param(format!("Unknown presence state {other}"))),
    };
    write(hs, user, state, status_msg, now_ms()).await
}

/// Records what a `/sync` with `set_presence` says of its user. Writes (and wakes the users who
/// see it) only when the state changes: syncing is not activity (spec: `last_active_ago` is
/// "the time since this user last took some action"; see [`active`]), so a client syncing in a
/// loop, or thousands of long-polls answered together, does not flood the stream. The time the
/// user was last seen syncing is kept (for the offline sweep), at most once a minute.
pub async fn touch(hs: &Homeserver, user: &UserId, state: &PresenceState) -> Result<()> {
    let state = match state {
        PresenceState::Online | PresenceState::Unavailable | PresenceState::Offline => state.as_str(),
        other => return Err(Error::invalid_param(format!("Unknown presence state {other}"))),
    };
    let now = now_ms();
    let stored = stored(hs, user).await?;
    match &stored {
        Some(row) if row.state == state => {
            let offline_after = Duration::from_secs(hs.config().presence.offline_after_secs);
            let seen_every = SEEN_EVERY.min(offline_after / 4);
            if state != PresenceState::Offline.as_str()
                && now.saturating_sub(row.last_seen_ts) > millis(seen_every)
            {
                presence::seen(hs.db().pool(), user, now).await?;
                hs.presence_cache().forget(user);
            }
            Ok(())
        }
        // A user who never set a presence is offline already: nothing anyone sees changes
        // (announcing it woke every member of every shared room once per syncing user).
        None if state == PresenceState::Offline.as_str() => Ok(()),
        _ => write(hs, user, state, stored.as_ref().and_then(|row| row.status_msg.as_deref()), now).await,
    }
}

/// Records that `user` took an action (sent an event): an `online` user's last activity becomes
/// now (written when older than the `currently_active` window), an `unavailable` one is `online`
/// again. An `offline` user, or one who never set a presence, stays as they are.
pub async fn active(hs: &Homeserver, user: &UserId) -> Result<()> {
    let now = now_ms();
    let Some(row) = stored(hs, user).await? else { return Ok(()) };
    let online = PresenceState::Online.as_str();
    let recent = now.saturating_sub(row.last_active_ts) <= millis(CURRENTLY_ACTIVE_WITHIN);
    if row.state == PresenceState::Offline.as_str() || (row.state == online && recent) {
        return Ok(());
    }
    write(hs, user, online, row.status_msg.as_deref(), now).await
}

/// The presence `user` last stored, from the cache.
async fn stored(hs: &Homeserver, user: &UserId) -> Result<Option<presence::PresenceRow>> {
    hs.presence_cache().get(user, || async { Ok(presence::get(hs.db().pool(), user).await?) }).await
}

/// Stores a change (the user was active at `now`, and is seen then) and wakes who sees it.
async fn write(
    hs: &Homeserver,
    user: &UserId,
    state: &str,
    status_msg: Option<&str>,
    now: i64,
) -> Result<()> {
    write_at(hs, user, state, status_msg, (now, now)).await
}

async fn write_at(
    hs: &Homeserver,
    user: &UserId,
    state: &str,
    status_msg: Option<&str>,
    active_and_seen: (i64, i64),
) -> Result<()> {
    let mut tx = hs.db().begin().await?;
    let position = streams::next_position(&mut tx, Stream::Presence).await?;
    presence::put(&mut tx, user, state, status_msg, active_and_seen, position).await?;
    tx.commit().await?;
    hs.presence_cache().forget(user);
    hs.notifier().wake_sharing_with(user.to_owned());
    if user.server_name() == hs.server_name() {
        let (active, _) = active_and_seen;
        let row = presence::PresenceRow {
            state: state.to_owned(),
            status_msg: status_msg.map(str::to_owned),
            last_active_ts: active,
            stream_id: position,
            last_seen_ts: active,
        };
        let mut entry = content(&as_seen(&row, now_ms()));
        entry["user_id"] = serde_json::json!(user);
        if entry.get("last_active_ago").is_none() {
            entry["last_active_ago"] = serde_json::json!(0);
        }
        let edu = serde_json::json!({ "edu_type": "m.presence", "content": { "push": [entry] } });
        crate::rooms::outbound::queue_user_edu(hs, user, &edu).await?;
    }
    Ok(())
}

/// The content of an `m.presence` event (and of a presence EDU's entry, which adds `user_id`).
fn content(seen: &Presence) -> serde_json::Value {
    let mut content = serde_json::json!({ "presence": seen.state.as_str() });
    if let Some(ago) = seen.last_active_ago {
        content["last_active_ago"] = serde_json::json!(u64::try_from(ago.as_millis()).unwrap_or(u64::MAX));
    }
    if let Some(active) = seen.currently_active {
        content["currently_active"] = serde_json::json!(active);
    }
    if let Some(msg) = &seen.status_msg {
        content["status_msg"] = serde_json::json!(msg);
    }
    content
}

/// A presence update of `user`, a user of the server that sent it (spec: Server-Server API ›
/// Presence): stored like a local change, at `now - last_active_ago`, and shown to the local
/// users sharing a room with them.
pub async fn receive_remote(
    hs: &Homeserver,
    user: &UserId,
    state: &PresenceState,
    status_msg: Option<&str>,
    last_active_ago: Duration,
) -> Result<()> {
    let state = match state {
        PresenceState::Online | PresenceState::Unavailable | PresenceState::Offline => state.as_str(),
        other => return Err(Error::invalid_param(format!("Unknown presence state {other}"))),
    };
    let now = now_ms();
    write_at(hs, user, state, status_msg, (now.saturating_sub(millis(last_active_ago)), now)).await
}

/// The `m.presence` events of the users whose presence changed in the stream window `(from,
/// to]`, among `viewer` and the users sharing a room with them.
pub async fn changed(hs: &Homeserver, viewer: &UserId, from: i64, to: i64) -> Result<Vec<serde_json::Value>> {
    let pool = hs.db().pool();
    let now = now_ms();
    let mut events = Vec::new();
    for user_id in sync::presence_changed(pool, viewer, from, to).await? {
        let Some(row) = presence::get(pool, &user_id).await? else { continue };
        let content = content(&as_seen(&row, now));
        events.push(serde_json::json!({ "type": "m.presence", "sender": user_id, "content": content }));
    }
    Ok(events)
}

/// `target`'s presence as `viewer` may see it: their own, or that of a user they share a room
/// with (403 otherwise, the spec's "not allowed to see this user's presence status"); 404 for
/// local users that do not exist. A user who never set a presence is `offline`.
pub async fn get(hs: &Homeserver, viewer: &UserId, target: &UserId) -> Result<Presence> {
    let pool = hs.db().pool();
    if target.server_name() == hs.server_name() && !users::exists(pool, target).await? {
        return Err(Error::not_found("No such user"));
    }
    if viewer != target && !rooms::share_a_room(pool, viewer, target).await? {
        return Err(Error::forbidden("You are not allowed to see this user's presence"));
    }
    Ok(match presence::get(pool, target).await? {
        Some(row) => as_seen(&row, now_ms()),
        None => Presence {
            state: PresenceState::Offline,
            status_msg: None,
            last_active_ago: None,
            currently_active: None,
        },
    })
}

/// Sets offline every user not seen for `offline_after`, keeping their status message and last
/// active time; how many.
pub async fn sweep_offline(hs: &Homeserver, offline_after: Duration) -> Result<usize> {
    let now = now_ms();
    let before = now.saturating_sub(millis(offline_after));
    let unseen = presence::unseen_since(hs.db().pool(), before).await?;
    for (user, row) in &unseen {
        let offline = PresenceState::Offline.as_str();
        write_at(hs, user, offline, row.status_msg.as_deref(), (row.last_active_ts, row.last_seen_ts))
            .await?;
    }
    Ok(unseen.len())
}

/// Runs [`sweep_offline`] every quarter of `presence.offline_after_secs` (at most every 30 s)
/// for as long as `hs` lives.
pub fn start_offline_sweeper(hs: &Homeserver) {
    let offline_after = Duration::from_secs(hs.config().presence.offline_after_secs.max(1));
    let interval = (offline_after / 4).clamp(Duration::from_millis(250), LONGEST_SWEEP_INTERVAL);
    let weak = hs.downgrade();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(interval).await;
            let Some(hs) = weak.upgrade() else { return };
            if let Err(error) = sweep_offline(&hs, offline_after).await {
                tracing::warn!(error = %error, "setting idle users offline failed");
            }
        }
    });
}

/// The stored presence of the users who synced, so that a sync's [`touch`] reads nothing while
/// nothing changes.
pub type PresenceCache = UserCache<Option<presence::PresenceRow>>;

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// A stored presence as it looks at `now`: an `online` user idle for too long is shown as
/// `unavailable`.
fn as_seen(row: &presence::PresenceRow, now: i64) -> Presence {
    let ago = Duration::from_millis(u64::try_from(now.saturating_sub(row.last_active_ts)).unwrap_or(0));
    let mut state = PresenceState::from(row.state.as_str());
    if state == PresenceState::Online && ago > IDLE_AFTER {
        state = PresenceState::Unavailable;
    }
    let currently_active = (state == PresenceState::Online).then_some(ago <= CURRENTLY_ACTIVE_WITHIN);
    Presence { state, status_msg: row.status_msg.clone(), last_active_ago: Some(ago), currently_active }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(state: &str, last_active_ts: i64) -> presence::PresenceRow {
        presence::PresenceRow {
            state: state.to_owned(),
            status_msg: None,
            last_active_ts,
            stream_id: 1,
            last_seen_ts: last_active_ts,
        }
    }

    #[test]
    fn online_users_idle_for_five_minutes_are_shown_unavailable() {
        let now = 1_000_000_000;
        let fresh = as_seen(&row("online", now - 10_000), now);
        assert_eq!(fresh.state, PresenceState::Online);
        assert_eq!(fresh.currently_active, Some(true));
        assert_eq!(fresh.last_active_ago, Some(Duration::from_secs(10)));

        let quiet = as_seen(&row("online", now - 120_000), now);
        assert_eq!((quiet.state, quiet.currently_active), (PresenceState::Online, Some(false)));

        let idle = as_seen(&row("online", now - 301_000), now);
        assert_eq!((idle.state, idle.currently_active), (PresenceState::Unavailable, None));

        let offline = as_seen(&row("offline", now), now);
        assert_eq!((offline.state, offline.currently_active), (PresenceState::Offline, None));
    }
}
