//! Two homeservers in one process, with events carried between them by hand (no HTTP): the
//! core side of federation — outbox, join through a resident server, receiving events, forks,
//! rejection and soft failure.

use ruma::{OwnedEventId, OwnedRoomId, OwnedUserId, RoomVersionId, device_id};
use serde_json::{Value, json};

use super::{
    NewEvent, Pdu, RoomHead,
    create::{CreateRoom, create_room},
    remote::{self, Received},
    remote_join, remote_membership, timeline,
};
use crate::{
    Config, Homeserver,
    storage::{events, federation_txns, outbox, rooms, users},
};

struct Server {
    _dir: tempfile::TempDir,
    hs: Homeserver,
}

async fn server(name: &str) -> Server {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = Config { server_name: name.try_into().expect("server name"), ..Default::default() };
    config.storage.data_dir = dir.path().to_owned();
    config.database.url = format!("sqlite://{}/hearth.db", dir.path().display());
    let hs = Homeserver::open(config).await.expect("homeserver");
    Server { _dir: dir, hs }
}

impl Server {
    async fn user(&self, name: &str) -> OwnedUserId {
        let user = OwnedUserId::try_from(format!("@{name}:{}", self.hs.server_name())).expect("user ID");
        let mut conn = self.hs.db().pool().acquire().await.expect("conn");
        users::insert(&mut conn, &user, None, Some(user.localpart()), false, 0).await.expect("user");
        user
    }

    async fn say(&self, user: &OwnedUserId, room_id: &OwnedRoomId, txn: &str, body: &str) -> OwnedEventId {
        let event = NewEvent::message("m.room.message", json!({ "msgtype": "m.text", "body": body }));
        timeline::send_with_txn(&self.hs, user, device_id!("DEVICE"), room_id, txn, &event)
            .await
            .expect("send")
    }

    /// Takes what the outbox holds for `destination`, as the sender would.
    async fn drain(&self, destination: &Server) -> Vec<Value> {
        let name = destination.hs.server_name().as_str();
        let pending = outbox::pending(self.hs.db().pool(), name, 100).await.expect("pending");
        if let Some(last) = pending.last() {
            outbox::delete_upto(self.hs.db().pool(), name, last.outbox_id).await.expect("delete");
        }
        pending.into_iter().map(|p| serde_json::from_str(&p.pdu.expect("a PDU")).expect("JSON")).collect()
    }

    /// Receives PDUs as `/send` would (signatures are not checked here).
    async fn receive(&self, pdus: Vec<Value>) -> Vec<Received> {
        let mut results = Vec::new();
        for json in pdus {
            let pdu = self.parse(json).await;
            results.push(remote::receive(&self.hs, &pdu).await.expect("receive"));
        }
        results
    }

    async fn parse(&self, json: Value) -> Pdu {
        let room_id = OwnedRoomId::try_from(json["room_id"].as_str().expect("room_id")).expect("room ID");
        let version =
            rooms::version(self.hs.db().pool(), &room_id).await.expect("version").expect("known room");
        Pdu::from_federation(
            serde_json::from_value(json).expect("canonical"),
            &version.rules().expect("rules"),
        )
        .expect("PDU")
    }

    async fn timeline(&self, room_id: &OwnedRoomId) -> Vec<String> {
        let rows = events::timeline_page(self.hs.db().pool(), room_id, 0, i64::MAX, false, 1000)
            .await
            .expect("page");
        rows.iter()
            .filter_map(|row| serde_json::from_str::<Value>(&row.json).ok())
            .filter(|json| json["type"] == "m.room.message")
            .filter_map(|json| json["content"]["body"].as_str().map(str::to_owned))
            .collect()
    }

    async fn head(&self, room_id: &OwnedRoomId) -> RoomHead {
        let mut tx = self.hs.db().begin().await.expect("tx");
        RoomHead::load(&mut tx, room_id).await.expect("head")
    }
}

/// Alice on a.test creates a public room; Bob on b.test joins it through a.test.
async fn joined() -> (Server, Server, OwnedUserId, OwnedUserId, OwnedRoomId) {
    let (a, b) = (server("a.test").await, server("b.test").await);
    let (alice, bob) = (a.user("alice").await, b.user("bob").await);
    let room_id =
        create_room(&a.hs, &alice, CreateRoom { public: true, ..Default::default() }).await.expect("room");
    let versions = [RoomVersionId::V10, RoomVersionId::V11, RoomVersionId::V12];
    let (version, template) =
        remote_membership::template(&a.hs, &room_id, &bob, "join", Some(&versions)).await.expect("make_join");
    let join = remote_join::sign_template(&b.hs, &version, template).expect("signed");
    remote_membership::receive(&a.hs, b.hs.server_name(), &join, "join").await.expect("send_join");
    let (state, chain) =
        remote_membership::state_before(&a.hs, &room_id, &join.event_id).await.expect("state");
    let state: Vec<Pdu> = state.iter().map(|p| (**p).clone()).collect();
    let chain: Vec<Pdu> = chain.iter().map(|p| (**p).clone()).collect();
    remote_join::persist_join(&b.hs, a.hs.server_name(), &version, &join, &state, &chain)
        .await
        .expect("persist join");
    (a, b, alice, bob, room_id)
}

#[tokio::test]
async fn a_user_joins_through_a_resident_server_and_messages_flow_both_ways() {
    let (a, b, alice, bob, room_id) = joined().await;
    assert_eq!(
        super::membership::membership_of(&b.hs, &room_id, &bob).await.expect("membership").as_deref(),
        Some("join")
    );
    assert_eq!(
        super::membership::membership_of(&b.hs, &room_id, &alice).await.expect("membership").as_deref(),
        Some("join"),
        "the joining server knows the room's members from the state it was sent"
    );

    a.say(&alice, &room_id, "1", "hello from a").await;
    let sent = a.drain(&b).await;
    assert_eq!(sent.len(), 1, "the message is queued for b.test, once");
    assert_eq!(b.receive(sent).await, vec![Received::Accepted]);

    b.say(&bob, &room_id, "1", "hello from b").await;
    let sent = b.drain(&a).await;
    assert_eq!(a.receive(sent).await, vec![Received::Accepted]);

    assert_eq!(a.timeline(&room_id).await, ["hello from a", "hello from b"]);
    assert_eq!(b.timeline(&room_id).await, ["hello from a", "hello from b"]);
    assert!(a.drain(&b).await.is_empty(), "a received event is not sent on");
}

#[tokio::test]
async fn concurrent_messages_fork_the_room_and_the_next_event_merges_it() {
    let (a, b, alice, bob, room_id) = joined().await;
    a.say(&alice, &room_id, "1", "from a").await;
    b.say(&bob, &room_id, "1", "from b").await;
    let (to_b, to_a) = (a.drain(&b).await, b.drain(&a).await);
    assert_eq!(b.receive(to_b).await, vec![Received::Accepted]);
    assert_eq!(a.receive(to_a).await, vec![Received::Accepted]);
    let forked = a.head(&room_id).await;
    assert_eq!(forked.prev_events.len(), 2, "two forward extremities");
    assert_eq!(
        forked.state_group,
        a.hs.room_cache().head(&room_id).expect("cached").state_group,
        "after a restart, the head is the resolved state of both extremities"
    );

    a.say(&alice, &room_id, "2", "merge").await;
    let merge = a.drain(&b).await;
    assert_eq!(merge[0]["prev_events"].as_array().map(Vec::len), Some(2), "the next event follows both");
    assert_eq!(b.receive(merge).await, vec![Received::Accepted]);
    assert_eq!(b.head(&room_id).await.prev_events.len(), 1);
    let (mut on_a, mut on_b) = (a.timeline(&room_id).await, b.timeline(&room_id).await);
    on_a.sort();
    on_b.sort();
    assert_eq!(on_a, on_b, "both servers hold the same messages");
    assert_eq!(a.head(&room_id).await.state.len(), b.head(&room_id).await.state.len());
}

#[tokio::test]
async fn an_event_from_a_user_who_never_joined_is_rejected_and_not_shown() {
    let (a, b, _alice, bob, room_id) = joined().await;
    // Mallory on b.test never joined, but b.test builds her a message anyway.
    let mallory = b.user("mallory").await;
    let head = b.head(&room_id).await;
    let event = NewEvent::message("m.room.message", json!({ "msgtype": "m.text", "body": "forged" }));
    let mut forged = super::build::template(&head, &mallory, &event).expect("template").object;
    let (_, _) = super::build::hash_and_sign(&b.hs, &head, &mut forged).expect("signed");
    let json = serde_json::to_value(&forged).expect("JSON");
    let results = a.receive(vec![json.clone()]).await;
    assert!(matches!(&results[0], Received::Rejected(_)), "{results:?}");
    assert!(a.timeline(&room_id).await.is_empty());
    assert_eq!(a.receive(vec![json]).await, vec![Received::Known], "a rejected event is remembered");
    let _ = bob;
}

#[tokio::test]
async fn an_event_after_unknown_prev_events_asks_for_them() {
    let (a, b, _alice, bob, room_id) = joined().await;
    b.say(&bob, &room_id, "1", "one").await;
    b.say(&bob, &room_id, "2", "two").await;
    let mut sent = b.drain(&a).await;
    let second = sent.pop().expect("two events");
    let results = a.receive(vec![second]).await;
    assert!(matches!(&results[0], Received::Missing(ids) if ids.len() == 1), "{results:?}");
    assert_eq!(a.receive(sent).await, vec![Received::Accepted]);
}

#[tokio::test]
async fn a_message_sent_while_being_banned_elsewhere_is_soft_failed() {
    let (a, b, alice, bob, room_id) = joined().await;
    super::membership::moderate(&a.hs, &alice, &room_id, &bob, "ban", None).await.expect("ban");
    // Before hearing of the ban, Bob speaks on b.test.
    b.say(&bob, &room_id, "1", "too late").await;
    let results = a.receive(b.drain(&a).await).await;
    assert!(matches!(&results[0], Received::SoftFailed(_)), "{results:?}");
    assert!(a.timeline(&room_id).await.is_empty(), "a soft-failed event is shown to no one");
    assert_eq!(a.head(&room_id).await.prev_events.len(), 1, "nor is it a forward extremity");
    // The ban reaches b.test: it went to the banned user's server.
    assert_eq!(b.receive(a.drain(&b).await).await.len(), 1);
    assert_eq!(
        super::membership::membership_of(&b.hs, &room_id, &bob).await.expect("membership").as_deref(),
        Some("ban")
    );
}

#[tokio::test]
async fn a_forked_room_loads_the_resolved_state_of_its_extremities() {
    let (a, b, alice, bob, room_id) = joined().await;
    let topic = NewEvent::state("m.room.topic", "", json!({ "topic": "forked" }));
    super::append::send(&a.hs, &room_id, &alice, &topic).await.expect("topic");
    b.say(&bob, &room_id, "1", "meanwhile").await;
    // b.test's own message is its older extremity; the topic arrives on the other branch.
    assert_eq!(b.receive(a.drain(&b).await).await, vec![Received::Accepted]);
    let loaded = b.head(&room_id).await;
    assert_eq!(loaded.prev_events.len(), 2);
    assert!(
        loaded.state_event_id("m.room.topic", "").is_some(),
        "the topic of the other branch is in the state"
    );
    assert_eq!(Some(loaded.state_group), b.hs.room_cache().head(&room_id).map(|head| head.state_group));
}

#[tokio::test]
async fn a_batch_is_taken_in_order_in_one_transaction_up_to_the_first_gap() {
    let (a, b, _alice, bob, room_id) = joined().await;
    for (txn, body) in [("1", "one"), ("2", "two"), ("3", "three"), ("4", "four")] {
        b.say(&bob, &room_id, txn, body).await;
    }
    let mut pdus = Vec::new();
    for json in b.drain(&a).await {
        pdus.push(a.parse(json).await);
    }
    // "three" is held back: "four" then names a prev event a.test lacks.
    let three = pdus.remove(2);
    let batch: Vec<&Pdu> = pdus.iter().collect();
    let results = remote::receive_batch(&a.hs, &batch).await.expect("batch");
    assert_eq!(results.len(), 3, "the batch stops at the first gap: {results:?}");
    assert_eq!(results[..2], [Received::Accepted, Received::Accepted]);
    assert!(
        matches!(&results[2], Received::Missing(ids) if ids == std::slice::from_ref(&three.event_id)),
        "{results:?}"
    );
    assert_eq!(a.timeline(&room_id).await, ["one", "two"], "the events before the gap were committed");

    let rest: Vec<&Pdu> = vec![&three, &pdus[2], &pdus[0]];
    let results = remote::receive_batch(&a.hs, &rest).await.expect("batch");
    assert_eq!(results, [Received::Accepted, Received::Accepted, Received::Known]);
    assert_eq!(a.timeline(&room_id).await, ["one", "two", "three", "four"]);
}

#[tokio::test]
async fn the_batch_that_completes_a_federation_transaction_records_its_answer_with_its_events() {
    let (a, b, _alice, bob, room_id) = joined().await;
    for (txn, body) in [("1", "one"), ("2", "two"), ("3", "three")] {
        b.say(&bob, &room_id, txn, body).await;
    }
    let mut pdus = Vec::new();
    for json in b.drain(&a).await {
        pdus.push(a.parse(json).await);
    }
    let render = |results: &[Received]| {
        let complete = !results.iter().any(|r| matches!(r, Received::Missing(_)));
        complete.then(|| format!("{{\"results\":{}}}", results.len()))
    };
    let answer = remote::TxnAnswer { origin: "b.test", txn_id: "t1", render: &render };
    let recorded = || async { federation_txns::get(a.hs.db().pool(), "b.test", "t1").await.expect("get") };

    // "two" is held back: the batch stops at "three", whose prev event is missing.
    let gap: Vec<&Pdu> = vec![&pdus[0], &pdus[2]];
    let (results, answered) =
        remote::receive_batch_answering(&a.hs, &gap, Some(&answer)).await.expect("batch");
    assert!(matches!(results.as_slice(), [Received::Accepted, Received::Missing(_)]), "{results:?}");
    assert!(!answered);
    assert_eq!(recorded().await, None, "the transaction is not complete yet");

    let rest: Vec<&Pdu> = vec![&pdus[1], &pdus[2]];
    let (results, answered) =
        remote::receive_batch_answering(&a.hs, &rest, Some(&answer)).await.expect("batch");
    assert_eq!(results, [Received::Accepted, Received::Accepted]);
    assert!(answered);
    assert_eq!(recorded().await.as_deref(), Some("{\"results\":2}"));
    assert_eq!(a.timeline(&room_id).await, ["one", "two", "three"]);
}
