//! The head of a room: what the next local event builds on (version, forward extremities,
//! depth, and the state after the extremities).

use std::sync::Arc;

use anyhow::Context;
use ruma::{OwnedRoomId, RoomId, RoomVersionId, room_version_rules::RoomVersionRules};

use crate::{
    Error, Result,
    storage::{Conn, rooms, state},
};

/// Room versions accepted for new rooms and from federation.
pub const ROOM_VERSIONS: &[RoomVersionId] = &[
    RoomVersionId::V6,
    RoomVersionId::V7,
    RoomVersionId::V8,
    RoomVersionId::V9,
    RoomVersionId::V10,
    RoomVersionId::V11,
    RoomVersionId::V12,
];

/// `(type, state_key) → (event_nid, event_id)`. A persistent map: a copy is a pointer, a
/// changed copy shares all but one path of the tree with the original, and two maps derived
/// from one another are compared by what differs ([`imbl::OrdMap::diff`] skips shared
/// subtrees). Each state event gives the room's head a new map while the old one is still held
/// by caches, so with a hash map every state event copied the whole state.
pub type StateMap = imbl::OrdMap<(String, String), (i64, String)>;

/// The head of one room.
#[derive(Clone, Debug)]
pub struct RoomHead {
    /// The room.
    pub room_id: OwnedRoomId,
    /// Its version.
    pub version: RoomVersionId,
    /// The rules of that version.
    pub rules: RoomVersionRules,
    /// Forward extremities: `(event_nid, event_id)`.
    pub prev_events: Vec<(i64, String)>,
    /// Highest depth among the extremities.
    pub depth: i64,
    /// The state group after the extremities (`None` before the create event).
    pub state_group: Option<i64>,
    /// How many deltas that group is from a full snapshot.
    pub chain_len: i64,
    /// The state after the extremities (shared: message events do not change it).
    pub state: Arc<StateMap>,
}

impl RoomHead {
    /// The head of a room about to be created: nothing before its create event.
    pub fn empty(room_id: OwnedRoomId, version: RoomVersionId) -> Result<RoomHead> {
        let rules = rules_for(&version)?;
        Ok(RoomHead {
            room_id,
            version,
            rules,
            prev_events: Vec::new(),
            depth: 0,
            state_group: None,
            chain_len: 0,
            state: Arc::new(StateMap::new()),
        })
    }

    /// Loads the head of a room this server knows; 404 for unknown rooms.
    pub async fn load(conn: &mut Conn, room_id: &RoomId) -> Result<RoomHead> {
        let version =
            rooms::version(&mut *conn, room_id).await?.ok_or_else(|| Error::not_found("Unknown room"))?;
        let rules = rules_for(&version)?;
        let extremities = rooms::extremities(conn, room_id).await?;
        // One extremity: the state after it. Several (a fork from federation): the resolution
        // of their states, recorded when the fork was stored (`rooms::remote`).
        let first = extremities.first().context("room without forward extremities")?;
        let group = match extremities.len() {
            1 => None,
            _ => rooms::forked_state_group(&mut *conn, room_id).await?,
        };
        let group = group.or(first.state_group).context("extremity without state")?;
        let state = Arc::new(
            state::load_group(&mut *conn, group)
                .await?
                .into_iter()
                .map(|e| ((e.kind, e.state_key), (e.event_nid, e.event_id)))
                .collect(),
        );
        Ok(RoomHead {
            room_id: room_id.to_owned(),
            version,
            rules,
            prev_events: extremities.iter().map(|e| (e.event_nid, e.event_id.clone())).collect(),
            depth: extremities.iter().map(|e| e.depth).max().unwrap_or(0),
            state_group: Some(group),
            chain_len: state::chain_len(conn, group).await?,
            state,
        })
    }

    /// The room's head: the cached one, else loaded; 404 for unknown rooms.
    pub async fn current(hs: &crate::Homeserver, conn: &mut Conn, room_id: &RoomId) -> Result<RoomHead> {
        match hs.room_cache().head(room_id) {
            Some(head) => Ok(head),
            None => RoomHead::load(conn, room_id).await,
        }
    }

    /// The event ID at `(type, state_key)` in the head's state.
    pub fn state_event_id(&self, kind: &str, state_key: &str) -> Option<&str> {
        self.state.get(&(kind.to_owned(), state_key.to_owned())).map(|(_, id)| id.as_str())
    }
}

/// The rules of a supported room version, or `M_UNSUPPORTED_ROOM_VERSION`.
pub fn rules_for(version: &RoomVersionId) -> Result<RoomVersionRules> {
    version.rules().ok_or_else(|| {
        Error::matrix(
            http::StatusCode::BAD_REQUEST,
            ruma::api::error::ErrorKind::UnsupportedRoomVersion,
            format!("Room version {version} is not supported"),
        )
    })
}
