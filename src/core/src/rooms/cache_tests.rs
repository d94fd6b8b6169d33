//! The room cache answers what it holds without a database connection: sqlx pings every
//! connection returned to the pool, so a woken sync that only reads cached groups and events
//! must not take one (each take cost two thread switches per sync, ~40 % of a fan-out's CPU).

use std::time::Duration;

use ruma::OwnedUserId;

use super::create::CreateRoom;
use crate::{Config, Homeserver, storage::users};

#[tokio::test]
async fn cached_state_groups_and_events_are_served_while_every_connection_is_taken() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = Config::default();
    config.storage.data_dir = dir.path().to_owned();
    config.database.url = format!("sqlite://{}/hearth.db", dir.path().display());
    let hs = Homeserver::open(config).await.expect("homeserver");
    let alice = OwnedUserId::try_from(format!("@alice:{}", hs.server_name())).expect("user ID");
    let pool = hs.db().pool();
    let mut conn = pool.acquire().await.expect("conn");
    users::insert(&mut conn, &alice, None, Some("alice"), false, 0).await.expect("user");
    drop(conn);
    super::create::create_room(&hs, &alice, CreateRoom::default()).await.expect("room");
    let groups: Vec<i64> =
        sqlx::query_scalar("SELECT group_id FROM state_groups").fetch_all(pool).await.expect("groups");
    let cache = hs.room_cache();
    cache.load_state_groups(pool, &groups).await.expect("groups loaded");
    let mut conn = pool.acquire().await.expect("conn");
    let entries = cache.state_group(&mut conn, groups[groups.len() - 1]).await.expect("group");
    drop(conn);
    let wanted: Vec<(i64, &str)> = entries.iter().map(|e| (e.event_nid, e.event_id.as_str())).collect();
    cache.load_events(pool, &wanted).await.expect("events loaded");

    let max = pool.options().get_max_connections();
    let mut held = Vec::new();
    for _ in 0..max {
        held.push(pool.acquire().await.expect("conn"));
    }
    let again = async {
        cache.load_state_groups(pool, &groups).await.expect("groups");
        cache.load_events(pool, &wanted).await.expect("events");
    };
    tokio::time::timeout(Duration::from_secs(5), again)
        .await
        .expect("cached groups and events need no connection");
    assert!(!groups.is_empty() && !wanted.is_empty());
}
