//! `/sync` (spec: Client-Server API › Syncing): everything that changed for one user's device
//! between two [`SyncToken`]s — rooms (see [`rooms`]), account data, presence, to-device
//! messages, device lists — long-polling on the [`Notifier`](crate::notifier::Notifier) until
//! something does or the timeout passes.
//!
//! Every window read is `(since, now]` where `now` holds, per stream, a position below which
//! every write has committed, so an event written concurrently with a sync lands in exactly one
//! response.

mod lazy;
pub mod memberships;
pub mod rooms;
pub mod token;
mod window;

use std::{collections::HashSet, sync::Arc, time::Duration};

use ruma::{
    DeviceId, UserId,
    api::client::filter::{FilterDefinition, LazyLoadOptions},
    presence::PresenceState,
};
use serde_json::{Map, Value, json};

pub use self::{lazy::LazyMembers, token::SyncToken};
use crate::{
    Homeserver, Result,
    e2ee::{device_lists, keys},
    filters::SyncFilter,
    presence,
    rooms::event_filter::glob,
    storage::sync as queries,
    to_device,
};

/// Longest a sync waits for news, whatever the client asks.
const MAX_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// A `/sync` request.
#[derive(Clone, Debug)]
pub struct SyncRequest<'a> {
    /// Who syncs.
    pub user: &'a UserId,
    /// From which device.
    pub device: &'a DeviceId,
    /// Where the previous sync stopped; `None` for an initial sync.
    pub since: Option<SyncToken>,
    /// What to include.
    pub filter: SyncFilter,
    /// Whether joined rooms carry their full state.
    pub full_state: bool,
    /// The presence the sync sets, if any (`None` leaves it alone).
    pub set_presence: Option<PresenceState>,
    /// How long to wait for news.
    pub timeout: Duration,
}

/// Syncs: answers at once when anything changed since `since` (or for an initial sync), else
/// waits until something concerning the user does, or until the timeout.
pub async fn sync(hs: &Homeserver, request: &SyncRequest<'_>) -> Result<Value> {
    // Every step but the wait is boxed: the waiting future then holds pointers, not the state
    // machines of the steps (an idle long-poll must cost little memory).
    if let Some(state) = &request.set_presence {
        Box::pin(presence::touch(hs, request.user, state)).await?;
    }
    // Subscribe before reading: a change committed after this point wakes the wait below.
    let mut listener = hs.notifier().listen(request.user);
    let deadline = tokio::time::Instant::now() + request.timeout.min(MAX_TIMEOUT);
    let mut since = request.since;
    // Parsed once for every pass of the loop below.
    let filter = request.filter.parse(hs)?;
    let known = known_members(hs, request, &filter);
    loop {
        let now = SyncToken::current(hs);
        let unchanged = since == Some(now) && !request.full_state;
        if !unchanged {
            let (response, now) = Box::pin(collect(hs, (request, &filter), since, now, &known)).await?;
            if since.is_none() || request.full_state || !response.is_empty() {
                return Ok(respond(hs, request, &known, response, now));
            }
            // Nothing in (since, now] concerns this user: wait for what comes after.
            since = Some(now);
        }
        if !listener.wait(deadline).await {
            let keys = Box::pin(DeviceKeyCounts::read(hs, request)).await?;
            return Ok(respond(hs, request, &known, Response::nothing_new(keys), since.unwrap_or(now)));
        }
    }
}

/// The member events the device already has, when its filter lazy-loads members without
/// redundant ones (see [`LazyMembers`]); none otherwise.
fn known_members(
    hs: &Homeserver,
    request: &SyncRequest<'_>,
    filter: &FilterDefinition,
) -> Option<Arc<HashSet<String>>> {
    let redundant = match filter.room.state.lazy_load_options {
        LazyLoadOptions::Enabled { include_redundant_members } => include_redundant_members,
        LazyLoadOptions::Disabled => true,
    };
    let since = request.since.filter(|_| !request.full_state);
    (!redundant).then(|| hs.lazy_members().known(request.user, request.device, since))
}

/// The JSON of `response`, recording the member events it gives the device.
fn respond(
    hs: &Homeserver,
    request: &SyncRequest<'_>,
    known: &Option<Arc<HashSet<String>>>,
    response: Response,
    next_batch: SyncToken,
) -> Value {
    if let Some(known) = known {
        hs.lazy_members().record(request.user, request.device, next_batch, known, response.rooms.joined());
    }
    response.into_json(next_batch)
}

/// The parts of a sync response; empty sections are still sent, as clients expect them.
#[derive(Debug)]
pub struct Response {
    rooms: rooms::Rooms,
    account_data: Vec<Value>,
    presence: Vec<Value>,
    to_device: Vec<Value>,
    device_lists: device_lists::Changes,
    keys: DeviceKeyCounts,
}

/// The syncing device's unclaimed one-time keys and unused fallback keys, sent in every response,
/// even one with nothing new: E2EE clients read them to top up their keys, and some (matrix-nio)
/// reject a response where they are missing or null.
#[derive(Debug)]
struct DeviceKeyCounts {
    one_time_keys: keys::OneTimeKeyCounts,
    fallback_key_types: Vec<ruma::OneTimeKeyAlgorithm>,
}

impl DeviceKeyCounts {
    async fn read(hs: &Homeserver, request: &SyncRequest<'_>) -> Result<Self> {
        let (one_time_keys, fallback_key_types) = keys::key_counts(hs, request.user, request.device).await?;
        Ok(Self { one_time_keys, fallback_key_types })
    }
}

impl Response {
    /// A response with no news (the long-poll timed out), still carrying the key counts.
    fn nothing_new(keys: DeviceKeyCounts) -> Self {
        Self {
            rooms: Default::default(),
            account_data: Vec::new(),
            presence: Vec::new(),
            to_device: Vec::new(),
            device_lists: Default::default(),
            keys,
        }
    }

    fn is_empty(&self) -> bool {
        self.rooms.is_empty()
            && self.account_data.is_empty()
            && self.presence.is_empty()
            && self.to_device.is_empty()
            && self.device_lists.0.is_empty()
            && self.device_lists.1.is_empty()
    }

    fn into_json(self, next_batch: SyncToken) -> Value {
        object([
            ("next_batch", Value::String(next_batch.to_string())),
            ("rooms", self.rooms.into_json()),
            ("account_data", events(self.account_data)),
            ("presence", events(self.presence)),
            ("to_device", events(self.to_device)),
            ("device_lists", json!({ "changed": self.device_lists.0, "left": self.device_lists.1 })),
            ("device_one_time_keys_count", json!(self.keys.one_time_keys)),
            ("device_unused_fallback_key_types", json!(self.keys.fallback_key_types)),
        ])
    }
}

/// A JSON object of `fields`, moved in: `json!` copies every value it is given, which for a
/// large response cost more than building it.
fn object<const N: usize>(fields: [(&str, Value); N]) -> Value {
    Value::Object(fields.into_iter().map(|(key, value)| (key.to_owned(), value)).collect())
}

/// `{ "events": events }`.
fn events(events: Vec<Value>) -> Value {
    object([("events", Value::Array(events))])
}

/// Everything in `(since, now]` for the request, and the token it ends at (`now`, unless a
/// stream delivered only part of its window).
async fn collect(
    hs: &Homeserver,
    (request, filter): (&SyncRequest<'_>, &FilterDefinition),
    since: Option<SyncToken>,
    mut now: SyncToken,
    known: &Option<Arc<HashSet<String>>>,
) -> Result<(Response, SyncToken)> {
    let pool = hs.db().pool();
    let from = since.unwrap_or_default();
    // A stream whose position did not move since the last sync has nothing to read.
    let account_data = if from.account_data == now.account_data {
        Vec::new()
    } else {
        queries::account_data_changed(pool, request.user, from.account_data, now.account_data).await?
    };
    let (global, per_room): (Vec<_>, Vec<_>) =
        account_data.into_iter().partition(|(room, _, _)| room.is_empty());
    let ignored = ignored_users(&global, hs, request.user).await?;

    let memberships = hs.sync_memberships().at(hs, request.user, now.events).await?;
    let none = HashSet::new();
    let known = known.as_deref().unwrap_or(&none);
    let rooms =
        rooms::collect(hs, (request, &filter.room), (since, now), &memberships, known, &ignored, per_room)
            .await?;
    let account_data = global
        .into_iter()
        .filter(|(_, kind, _)| allows(&filter.account_data, kind, None))
        .map(|(_, kind, content)| account_data_event(&kind, &content))
        .collect();
    let presence = if filter.presence.limit == Some(ruma::UInt::MIN) || from.presence == now.presence {
        Vec::new()
    } else {
        presence::changed(hs, request.user, from.presence, now.presence)
            .await?
            .into_iter()
            .filter(|event| {
                let sender = event["sender"].as_str().unwrap_or_default();
                allows(&filter.presence, "m.presence", Some(sender))
            })
            .collect()
    };
    let device_lists = match since {
        Some(since) => {
            let window = ((since.events, since.device_lists), (now.events, now.device_lists));
            let activity = hs.db().events().activity();
            // Without membership events in the user's rooms, nobody joined or left them.
            let members_moved =
                activity.member_events_after(since.events, memberships::rooms(&memberships)) != Some(false);
            if window.1.1 > window.0.1 || members_moved {
                let mut conn = pool.acquire().await?;
                device_lists::changes(&mut conn, request.user, window.0, window.1, members_moved).await?
            } else {
                // Neither the device lists nor anyone's membership moved: no connection taken
                // (sqlx pings every connection returned to the pool).
                Default::default()
            }
        }
        None => Default::default(),
    };
    let keys = DeviceKeyCounts::read(hs, request).await?;
    // Acknowledged messages are deleted by the next sync that has new ones to deliver.
    let taken = if from.to_device == now.to_device {
        to_device::Taken { events: Vec::new(), position: now.to_device }
    } else {
        to_device::take(hs.db(), request.user, request.device, from.to_device, now.to_device).await?
    };
    now.to_device = taken.position;
    let response = Response { rooms, account_data, presence, to_device: taken.events, device_lists, keys };
    Ok((response, now))
}

/// The users `user` ignores (`m.ignored_user_list`): from this sync's changes if it changed,
/// else as stored. An initial sync without one reads it through the cache too, so the user's
/// next syncs (woken all at once by a message) find it kept.
async fn ignored_users(
    changed: &[queries::AccountDataChange],
    hs: &Homeserver,
    user: &UserId,
) -> Result<Vec<ruma::OwnedUserId>> {
    use crate::account_data::{IGNORED_USERS, ignored_in};
    Ok(match changed.iter().find(|(_, kind, _)| kind == IGNORED_USERS) {
        Some((_, _, content)) => ignored_in(content),
        None => crate::account_data::ignored_users(hs, user).await?.to_vec(),
    })
}

/// An account data event as sync delivers it.
fn account_data_event(kind: &str, content: &str) -> Value {
    let content: Value = serde_json::from_str(content).unwrap_or_else(|_| Value::Object(Map::new()));
    json!({ "type": kind, "content": content })
}

/// Whether an event `filter` lets an event of `kind` from `sender` through (`limit: 0` none).
fn allows(filter: &ruma::api::client::filter::Filter, kind: &str, sender: Option<&str>) -> bool {
    let sender_ok = sender.is_none_or(|sender| {
        filter.senders.as_ref().is_none_or(|senders| senders.iter().any(|s| s.as_str() == sender))
            && !filter.not_senders.iter().any(|s| s.as_str() == sender)
    });
    kind_allowed(filter.limit, filter.types.as_deref(), &filter.not_types, kind) && sender_ok
}

/// Whether a room's account data `filter` lets an event of `kind` through.
fn allows_room_data(filter: &ruma::api::client::filter::RoomEventFilter, kind: &str) -> bool {
    kind_allowed(filter.limit, filter.types.as_deref(), &filter.not_types, kind)
}

fn kind_allowed(
    limit: Option<ruma::UInt>,
    types: Option<&[String]>,
    not_types: &[String],
    kind: &str,
) -> bool {
    limit != Some(ruma::UInt::MIN)
        && types.is_none_or(|types| types.iter().any(|t| glob(t, kind)))
        && !not_types.iter().any(|t| glob(t, kind))
}

#[cfg(test)]
mod tests {
    use ruma::{device_id, presence::PresenceState, user_id};

    use super::*;

    /// Idle long-polls are many: the future that waits must not carry the state machines of
    /// the steps around the wait (they are boxed), which took it to 2 KB.
    #[tokio::test]
    async fn a_waiting_sync_is_small() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = crate::Config::default();
        config.storage.data_dir = dir.path().to_owned();
        config.database.url = format!("sqlite://{}/hearth.db", dir.path().display());
        let hs = Homeserver::open(config).await.expect("homeserver");
        let request = SyncRequest {
            user: user_id!("@alice:x"),
            device: device_id!("D"),
            since: None,
            filter: SyncFilter::default(),
            full_state: false,
            set_presence: Some(PresenceState::Online),
            timeout: Duration::from_secs(30),
        };
        let size = std::mem::size_of_val(&sync(&hs, &request));
        assert!(size < 1024, "a sync future takes {size} bytes");
    }
}
