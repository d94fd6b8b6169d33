//! A room joined by a few hundred members one at a time: its state storage stays linear in the
//! number of state events, the head kept in memory (a persistent map changed per event) is the
//! state stored, and the derived caches (push context, other servers) follow it.

use std::sync::Arc;

use ruma::{OwnedRoomId, OwnedUserId, server_name};
use sqlx::Row;

use super::{RoomHead, create::CreateRoom, membership};
use crate::{
    Config, Homeserver,
    push::{room::context, source::Source},
    storage::{state, users},
};

const MEMBERS: usize = 300;

async fn big_room() -> (tempfile::TempDir, Homeserver, OwnedRoomId, Vec<OwnedUserId>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = Config::default();
    config.storage.data_dir = dir.path().to_owned();
    config.database.url = format!("sqlite://{}/hearth.db", dir.path().display());
    let hs = Homeserver::open(config).await.expect("homeserver");
    let mut members = Vec::new();
    let mut conn = hs.db().pool().acquire().await.expect("conn");
    for n in 0..=MEMBERS {
        let user = OwnedUserId::try_from(format!("@m{n}:{}", hs.server_name())).expect("user ID");
        users::insert(&mut conn, &user, None, Some(user.localpart()), false, 0).await.expect("user");
        members.push(user);
    }
    drop(conn);
    let request = CreateRoom { public: true, ..Default::default() };
    let room_id = super::create::create_room(&hs, &members[0], request).await.expect("room");
    for user in &members[1..] {
        membership::join(&hs, user, &room_id, Default::default(), &[]).await.expect("join");
    }
    (dir, hs, room_id, members)
}

#[tokio::test]
async fn a_room_joined_one_member_at_a_time_stores_state_linear_in_its_events() {
    let (_dir, hs, room_id, members) = big_room().await;

    let mut conn = hs.db().pool().acquire().await.expect("conn");
    let row = sqlx::query(
        "SELECT COUNT(*) AS entries FROM state_group_entries e \
         JOIN state_groups g ON g.group_id = e.group_id WHERE g.room_id = $1",
    )
    .bind(room_id.as_str())
    .fetch_one(&mut *conn)
    .await
    .expect("count");
    let entries: i64 = row.try_get("entries").expect("entries");
    let state_events = i64::try_from(MEMBERS).expect("small") + 8;
    // A snapshot every 16 state events wrote about 10 rows per state event here (and a row
    // per member per join in a room of 10 000); snapshots as the state grows write under 5.
    assert!(entries < 8 * state_events, "{entries} state rows for about {state_events} state events");

    // The head built in memory event by event is the state stored (read back through the
    // delta chains and snapshots).
    let cached = hs.room_cache().head(&room_id).expect("a cached head");
    let loaded = RoomHead::load(&mut conn, &room_id).await.expect("head");
    assert_eq!(cached.state, loaded.state);
    assert_eq!(cached.state_group, loaded.state_group);
    assert_eq!(cached.chain_len, loaded.chain_len);
    let joined = cached.state.keys().filter(|(kind, _)| kind == "m.room.member").count();
    assert_eq!(joined, members.len());
}

#[tokio::test]
async fn the_push_context_brought_along_join_by_join_is_the_one_built_from_scratch() {
    let (_dir, hs, room_id, members) = big_room().await;
    // Alice leaves and Bob changes his name: entries removed from and replaced in the context.
    membership::leave(&hs, &members[7], &room_id, None).await.expect("leave");
    let mut rename = serde_json::Map::new();
    rename.insert("displayname".to_owned(), "Bob".into());
    membership::join(&hs, &members[8], &room_id, rename, &[]).await.expect("rename");

    let head = hs.room_cache().head(&room_id).expect("a cached head");
    let mut db = Source::Pool(hs.db().pool(), None);
    let incremental = context(&hs, &mut db, &head).await.expect("context");
    assert!(incremental.built_on(&head));
    // Forget the cached context: the next one is built from nothing.
    hs.push_cache().set_room(Arc::new(crate::push::room::RoomContext::new(
        room_id.clone(),
        0u32.into(),
        Vec::new(),
        None,
    )));
    let scratch = context(&hs, &mut db, &head).await.expect("context");

    assert_eq!(u64::from(incremental.joined), u64::try_from(members.len() - 1).expect("small"));
    assert_eq!(incremental.joined, scratch.joined);
    let names = |c: &crate::push::room::RoomContext| -> Vec<(String, String)> {
        c.local_joined.values().map(|m| (m.user_id.to_string(), m.display_name.clone())).collect()
    };
    assert_eq!(names(&incremental), names(&scratch));
    assert!(!incremental.local_joined.contains_key(&members[7]), "who left is not notified");
    assert_eq!(incremental.local_joined.get(&members[8]).map(|m| m.display_name.as_str()), Some("Bob"));
}

#[tokio::test]
async fn a_server_is_in_a_room_while_one_of_its_users_is_joined() {
    let (_dir, hs, room_id, _members) = big_room().await;
    let pool = hs.db().pool();
    assert!(state::has_joined_member_of(pool, &room_id, hs.server_name()).await.expect("query"));
    assert!(
        !state::has_joined_member_of(pool, &room_id, server_name!("other.example")).await.expect("query")
    );
    // A server whose name ends ours is another server.
    let suffix = ruma::ServerName::parse(format!("x{}", hs.server_name())).expect("server name");
    assert!(!state::has_joined_member_of(pool, &room_id, &suffix).await.expect("query"));
}
