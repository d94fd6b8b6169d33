//! The push path end to end on a real homeserver (SQLite): messages sent through the group
//! commit and state events through the one-event path leave the rows that unread counts read,
//! in threads too, and rule changes take effect on the next message.

use std::collections::HashMap;

use ruma::{OwnedEventId, OwnedRoomId, OwnedUserId, RoomId, UserId, device_id};
use serde_json::{Value, json};

use super::{UnreadCounts, rules, unread_counts};
use crate::{
    Config, Homeserver,
    rooms::{NewEvent, create::CreateRoom, membership, timeline},
    storage::users,
};

struct Fixture {
    _dir: tempfile::TempDir,
    hs: Homeserver,
    alice: OwnedUserId,
    bob: OwnedUserId,
    room_id: OwnedRoomId,
}

/// Alice's public room with Bob and Carol joined.
async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = Config::default();
    config.storage.data_dir = dir.path().to_owned();
    config.database.url = format!("sqlite://{}/hearth.db", dir.path().display());
    let hs = Homeserver::open(config).await.expect("homeserver");
    let user = |name: &str| OwnedUserId::try_from(format!("@{name}:{}", hs.server_name())).expect("user ID");
    let (alice, bob, carol) = (user("alice"), user("bob"), user("carol"));
    let mut conn = hs.db().pool().acquire().await.expect("conn");
    for u in [&alice, &bob, &carol] {
        users::insert(&mut conn, u, None, Some(u.localpart()), false, 0).await.expect("user");
    }
    drop(conn);
    let request = CreateRoom { public: true, ..Default::default() };
    let room_id = crate::rooms::create::create_room(&hs, &alice, request).await.expect("room");
    for u in [&bob, &carol] {
        membership::join(&hs, u, &room_id, Default::default(), &[]).await.expect("join");
    }
    Fixture { _dir: dir, hs, alice, bob, room_id }
}

impl Fixture {
    async fn say(&self, txn: &str, content: Value) -> OwnedEventId {
        let event = NewEvent::message("m.room.message", content);
        timeline::send_with_txn(&self.hs, &self.alice, device_id!("DEVICE"), &self.room_id, txn, &event)
            .await
            .expect("send")
    }

    async fn counts(&self, user: &UserId, room_id: &RoomId) -> UnreadCounts {
        let mut conn = self.hs.db().pool().acquire().await.expect("conn");
        unread_counts(&mut conn, user, room_id, 0, &HashMap::new()).await.expect("counts")
    }
}

fn text(body: &str) -> Value {
    json!({ "msgtype": "m.text", "body": body })
}

#[tokio::test]
async fn messages_count_for_every_other_member_and_mentions_highlight() {
    let f = fixture().await;

    f.say("1", text("hello")).await;
    f.say("2", json!({ "msgtype": "m.text", "body": "bob?", "m.mentions": { "user_ids": [f.bob] } })).await;

    let bob = f.counts(&f.bob, &f.room_id).await;
    assert_eq!((bob.notification_count, bob.highlight_count), (2, 1));
    let alice = f.counts(&f.alice, &f.room_id).await;
    assert_eq!(alice.notification_count, 0, "the sender is not notified");
}

#[tokio::test]
async fn thread_replies_and_reactions_to_them_count_in_their_thread() {
    let f = fixture().await;
    let root = f.say("1", text("root")).await;
    let reply = f
        .say("2", json!({ "msgtype": "m.text", "body": "in thread", "m.relates_to": { "rel_type": "m.thread", "event_id": root } }))
        .await;
    let reaction = NewEvent::message(
        "m.reaction",
        json!({ "m.relates_to": { "rel_type": "m.annotation", "event_id": reply, "key": "👍" } }),
    );
    timeline::send_with_txn(&f.hs, &f.alice, device_id!("DEVICE"), &f.room_id, "3", &reaction)
        .await
        .expect("react");

    let bob = f.counts(&f.bob, &f.room_id).await;
    assert_eq!(bob.notification_count, 1, "the root is in the main timeline");
    // Reactions do not notify by default (.m.rule.reaction), so only the reply counts.
    assert_eq!(bob.per_thread.get(&root), Some(&(1, 0)));
    assert_eq!(bob.per_thread.len(), 1);
}

#[tokio::test]
async fn a_rule_change_applies_to_the_next_message() {
    let f = fixture().await;
    f.say("1", text("before")).await;

    let silence =
        ruma::push::NewPushRule::Room(ruma::push::NewSimplePushRule::new(f.room_id.clone(), vec![]));
    rules::set_rule(&f.hs, &f.bob, silence, None, None).await.expect("rule");
    f.say("2", text("after")).await;

    assert_eq!(f.counts(&f.bob, &f.room_id).await.notification_count, 1);
}

#[tokio::test]
async fn a_member_who_left_is_no_longer_notified_and_counts_afresh_after_rejoining() {
    let f = fixture().await;
    f.say("1", text("one")).await;
    membership::leave(&f.hs, &f.bob, &f.room_id, None).await.expect("leave");
    f.say("2", text("two")).await;
    assert_eq!(f.counts(&f.bob, &f.room_id).await.notification_count, 0, "not a member");

    membership::join(&f.hs, &f.bob, &f.room_id, Default::default(), &[]).await.expect("rejoin");
    f.say("3", text("three")).await;
    assert_eq!(f.counts(&f.bob, &f.room_id).await.notification_count, 1, "only what came after the rejoin");
}

#[tokio::test]
async fn a_member_who_joins_later_counts_only_what_came_after_their_join() {
    let f = fixture().await;
    let dave = OwnedUserId::try_from(format!("@dave:{}", f.hs.server_name())).expect("user ID");
    let mut conn = f.hs.db().pool().acquire().await.expect("conn");
    users::insert(&mut conn, &dave, None, Some("dave"), false, 0).await.expect("user");
    drop(conn);
    f.say("1", text("before dave")).await;
    membership::join(&f.hs, &dave, &f.room_id, Default::default(), &[]).await.expect("join");
    f.say("2", text("after dave")).await;

    assert_eq!(f.counts(&dave, &f.room_id).await.notification_count, 1);
    assert_eq!(f.counts(&f.bob, &f.room_id).await.notification_count, 2);
}

#[tokio::test]
async fn a_display_name_change_keeps_the_unread_count() {
    let f = fixture().await;
    f.say("1", text("one")).await;
    crate::rooms::profile::set_displayname(&f.hs, &f.bob, &f.bob, Some("Bobby")).await.expect("rename");
    f.say("2", text("two")).await;

    assert_eq!(f.counts(&f.bob, &f.room_id).await.notification_count, 2, "the join run goes on");
}
