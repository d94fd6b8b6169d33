//! The room cache answers what it holds without a database connection: sqlx pings every
//! connection returned to the pool, so a woken sync that only reads cached groups and events
//! must not take one (each take cost two thread switches per sync, ~40 % of a fan-out's CPU).

use std::{sync::Arc, time::Duration};

use ruma::{OwnedRoomId, OwnedUserId, api::client::filter::RoomEventFilter, events::TimelineEventType};
use serde_json::json;

use super::{
    NewEvent, append,
    create::CreateRoom,
    history::{self, MessagesQuery},
};
use crate::{
    Config, Homeserver,
    storage::{
        state::{self, StateEntry},
        users,
    },
};

/// A homeserver on a fresh SQLite file with a room `@alice` created.
async fn with_room(dir: &tempfile::TempDir) -> (Homeserver, OwnedUserId, OwnedRoomId) {
    let mut config = Config::default();
    config.storage.data_dir = dir.path().to_owned();
    config.database.url = format!("sqlite://{}/hearth.db", dir.path().display());
    let hs = Homeserver::open(config).await.expect("homeserver");
    let alice = OwnedUserId::try_from(format!("@alice:{}", hs.server_name())).expect("user ID");
    let mut conn = hs.db().pool().acquire().await.expect("conn");
    users::insert(&mut conn, &alice, None, Some("alice"), false, 0).await.expect("user");
    drop(conn);
    let room_id = super::create::create_room(&hs, &alice, CreateRoom::default()).await.expect("room");
    (hs, alice, room_id)
}

fn text(body: &str) -> NewEvent {
    NewEvent {
        kind: TimelineEventType::RoomMessage,
        state_key: None,
        content: json!({ "msgtype": "m.text", "body": body }),
        redacts: None,
    }
}

/// Takes every connection of the pool.
async fn take_every_connection(pool: &sqlx::AnyPool) -> Vec<sqlx::pool::PoolConnection<sqlx::Any>> {
    let mut held = Vec::new();
    for _ in 0..pool.options().get_max_connections() {
        held.push(pool.acquire().await.expect("conn"));
    }
    held
}

#[tokio::test]
async fn cached_state_groups_and_events_are_served_while_every_connection_is_taken() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (hs, _, _) = with_room(&dir).await;
    let pool = hs.db().pool();
    let groups: Vec<i64> =
        sqlx::query_scalar("SELECT group_id FROM state_groups").fetch_all(pool).await.expect("groups");
    let cache = hs.room_cache();
    cache.load_state_groups(pool, &groups).await.expect("groups loaded");
    let mut conn = pool.acquire().await.expect("conn");
    let entries = cache.state_group(&mut conn, groups[groups.len() - 1]).await.expect("group");
    drop(conn);
    let wanted: Vec<(i64, &str)> = entries.iter().map(|e| (e.event_nid, e.event_id.as_str())).collect();
    cache.load_events(pool, &wanted).await.expect("events loaded");

    let held = take_every_connection(pool).await;
    let again = async {
        cache.load_state_groups(pool, &groups).await.expect("groups");
        cache.load_events(pool, &wanted).await.expect("events");
        let group = groups[groups.len() - 1];
        super::state_view::entries_in_group(&hs, group, |_, _| true).await.expect("entries")
    };
    let entries_again = tokio::time::timeout(Duration::from_secs(5), again)
        .await
        .expect("cached groups and events need no connection");
    assert_eq!(entries_again.len(), entries.len());
    assert!(!groups.is_empty() && !wanted.is_empty());
    drop(held);
}

#[tokio::test]
async fn a_rooms_head_group_is_cached_from_its_state_map_as_stored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (hs, alice, room_id) = with_room(&dir).await;
    // A message after the room's state events, as a woken sync finds it.
    append::send(&hs, &room_id, &alice, &text("hi")).await.expect("sent");
    let pool = hs.db().pool();
    let cache = hs.room_cache();
    let group = cache.head(&room_id).and_then(|head| head.state_group).expect("head group");
    let mut conn = pool.acquire().await.expect("conn");
    let sorted = |entries: &[StateEntry]| {
        let mut ids: Vec<(String, String, i64, String)> = entries
            .iter()
            .map(|e| (e.kind.clone(), e.state_key.clone(), e.event_nid, e.event_id.clone()))
            .collect();
        ids.sort();
        ids
    };
    let stored = sorted(&state::load_group(&mut conn, group).await.expect("stored group"));
    drop(conn);

    let held = take_every_connection(pool).await;
    cache.groups_from_heads(&[(&room_id, group)]);
    tokio::time::timeout(Duration::from_secs(5), cache.load_state_groups(pool, &[group]))
        .await
        .expect("the head's group needs no connection")
        .expect("groups");
    drop(held);
    let mut conn = pool.acquire().await.expect("conn");
    let cached = cache.state_group(&mut conn, group).await.expect("cached group");
    assert!(stored.len() >= 5, "a new room's state: {stored:?}");
    assert_eq!(sorted(&cached), stored);

    // Member look-ups in the head's map find what a scan of the stored group finds.
    let users = [alice.as_str(), "@nobody:x"];
    let scanned: Vec<StateEntry> = cached
        .iter()
        .filter(|e| e.kind == "m.room.member" && users.contains(&e.state_key.as_str()))
        .cloned()
        .collect();
    let looked_up = cache.head_members(&room_id, group, users).expect("the head's group");
    assert_eq!(sorted(&looked_up), sorted(&scanned));
    assert_eq!(looked_up.len(), 1);
    assert!(cache.head_members(&room_id, group - 1, users).is_none(), "not the head's group");
}

#[tokio::test]
async fn a_timeline_page_shares_its_events_with_the_event_cache() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (hs, alice, room_id) = with_room(&dir).await;
    append::send(&hs, &room_id, &alice, &text("hi")).await.expect("sent");
    let filter = RoomEventFilter::default();
    let query = || MessagesQuery { from: None, to: None, backwards: true, limit: 1, filter: &filter };
    let readable = history::readable(&hs, &alice, &room_id).await.expect("readable");
    let first = history::page(&hs, &readable, &room_id, query()).await.expect("page");
    let again = history::page(&hs, &readable, &room_id, query()).await.expect("page");
    assert_eq!(first.events[0].kind, TimelineEventType::RoomMessage);
    assert!(Arc::ptr_eq(&first.events[0], &again.events[0]), "parsed once, then shared");
}

#[tokio::test]
async fn a_redaction_is_seen_by_the_next_lookup_of_an_event_found_unredacted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (hs, alice, room_id) = with_room(&dir).await;
    let sent = append::send(&hs, &room_id, &alice, &text("oops")).await.expect("sent");
    let redactions = hs.db().events().redactions();
    let pool = hs.db().pool();
    let id = sent.event_id.as_str();
    assert!(redactions.redacted_by(pool, &[id]).await.expect("lookup").is_empty());
    let redaction = NewEvent {
        kind: TimelineEventType::RoomRedaction,
        state_key: None,
        content: json!({ "redacts": id }),
        redacts: Some(sent.event_id.clone()),
    };
    let redaction = append::send(&hs, &room_id, &alice, &redaction).await.expect("redacted");
    let found = redactions.redacted_by(pool, &[id]).await.expect("lookup");
    assert_eq!(found.get(id).map(String::as_str), Some(redaction.event_id.as_str()));
}
