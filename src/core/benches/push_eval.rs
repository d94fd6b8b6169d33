//! What evaluating push rules costs per recipient: one message matched against the push rules
//! of 1 000 room members, as every send to a large room does. Two cases: members with the
//! server-default rules (the usual case: the rules not naming the user are matched once per
//! event on the template) and members who changed a rule (their whole set is matched).
//!
//! Then what writing the resulting rows costs inside the write transaction: 1 000 rows per
//! event into `event_push_actions` on SQLite, one multi-row statement per event.
//!
//! `cargo bench -p hearth-core --bench push_eval` (std::time only; prints ns per recipient).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use hearth_core::{
    config::DatabaseConfig,
    push::{
        evaluate::evaluate,
        room::{LocalMember, RoomContext},
        rules::UserRules,
        template::Template,
    },
    storage::{
        Db,
        push_actions::{self, NewPushAction},
    },
};
use ruma::{
    OwnedRoomId, OwnedUserId, UInt,
    push::{FlattenedJson, Ruleset},
    serde::Raw,
};
use serde_json::{Value, json};

const RECIPIENTS: usize = 1_000;
const ROUNDS: usize = 200;

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let room_id: OwnedRoomId = "!big:example.org".try_into().expect("room ID");
    let members: Vec<LocalMember> = (0..RECIPIENTS)
        .map(|i| LocalMember {
            user_id: OwnedUserId::try_from(format!("@user{i}:example.org")).expect("user ID"),
            display_name: format!("User {i}"),
        })
        .collect();
    let room =
        RoomContext::new(room_id.clone(), UInt::new_saturating(RECIPIENTS as u64 + 1), Vec::new(), None);
    let template = Template::new();

    let before = resident_bytes();
    let defaults: Vec<UserRules> =
        members.iter().map(|m| UserRules::Default(Arc::new(template.user_rules(&m.user_id)))).collect();
    let default_bytes = resident_bytes().saturating_sub(before) / RECIPIENTS as u64;
    let before = resident_bytes();
    let custom: Vec<UserRules> =
        members.iter().map(|m| UserRules::Custom(Arc::new(Ruleset::server_default(&m.user_id)))).collect();
    let custom_bytes = resident_bytes().saturating_sub(before) / RECIPIENTS as u64;

    let cases = [
        (
            "plain message",
            json!({ "msgtype": "m.text", "body": "Hello everyone, the build is green again." }),
        ),
        (
            "message mentioning one member",
            json!({ "msgtype": "m.text", "body": "User 7: look", "m.mentions": { "user_ids": ["@user7:example.org"] } }),
        ),
        ("notice (suppressed by an override rule)", json!({ "msgtype": "m.notice", "body": "bot output" })),
    ];
    println!("push rule evaluation, {RECIPIENTS} recipients, {ROUNDS} rounds, ns per recipient");
    for (rules_name, rules) in [("server-default rules", &defaults), ("changed rules (full match)", &custom)]
    {
        let recipients: Vec<(&LocalMember, &UserRules)> = members.iter().zip(rules).collect();
        for (name, content) in &cases {
            let event = flatten(&room_id, content.clone());
            // Warm up, then measure.
            let outcome = runtime.block_on(evaluate(&room, &template, &event, &recipients));
            let notified = members.iter().filter(|m| outcome.for_user(&m.user_id).is_some()).count();
            let started = Instant::now();
            for _ in 0..ROUNDS {
                std::hint::black_box(runtime.block_on(evaluate(&room, &template, &event, &recipients)));
            }
            let ns = per(started.elapsed(), ROUNDS * RECIPIENTS);
            println!("{rules_name:>28}, {name:>40}: {ns:>6} ns ({notified} notified)");
        }
    }
    println!(
        "memory per cached user (resident growth): default rules ~{default_bytes} B, changed rules ~{custom_bytes} B"
    );
    // A small room: 10 recipients per event; then the large one.
    runtime.block_on(write_rows(&members[..10], 2_000));
    runtime.block_on(write_rows(&members, 100));
}

/// Writes the rows of `events` events notifying every one of `members`, one transaction per
/// event, and reports the cost per row of the first and the last tenth (the table's indexes
/// grow meanwhile).
async fn write_rows(members: &[LocalMember], events: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/bench.db", dir.path().display());
    let db = Db::connect(&DatabaseConfig { url, max_connections: 2 }).await.expect("database");
    db.migrate().await.expect("migrations");
    let event_ids: Vec<String> = (0..events).map(|i| format!("$event{i}")).collect();
    // The floor: one statement's round trip to SQLite's worker thread.
    let mut tx = db.begin().await.expect("begin");
    let started = Instant::now();
    for _ in 0..200 {
        sqlx::query("SELECT 1").execute(&mut *tx).await.expect("select");
    }
    let round_trip = per(started.elapsed(), 200);
    tx.commit().await.expect("commit");
    let (mut inserts, mut commits) = (Vec::with_capacity(events), Vec::with_capacity(events));
    for (i, event_id) in event_ids.iter().enumerate() {
        let rows: Vec<NewPushAction<'_>> = members
            .iter()
            .map(|m| NewPushAction {
                user_id: m.user_id.as_str(),
                room_id: "!big:example.org",
                event_id,
                stream_ordering: i as i64 + 1,
                thread_id: None,
                notify: true,
                highlight: false,
                actions: "[\"notify\"]",
                ts: 0,
            })
            .collect();
        let mut tx = db.begin().await.expect("begin");
        let started = Instant::now();
        push_actions::insert_many(&mut tx, &rows).await.expect("insert");
        let inserted = Instant::now();
        tx.commit().await.expect("commit");
        inserts.push(inserted - started);
        commits.push(inserted.elapsed());
    }
    let tenth = events / 10;
    let sum = |d: &[Duration]| d.iter().sum::<Duration>();
    let rows = tenth * members.len();
    println!(
        "writing {} rows per event, {events} events, SQLite (a SELECT 1 round trip: {round_trip} ns): the INSERT \
         {} ns per row, the commit {} us per event (first tenth); {} ns and {} us (last tenth)",
        members.len(),
        per(sum(&inserts[..tenth]), rows),
        per(sum(&commits[..tenth]), tenth) / 1000,
        per(sum(&inserts[events - tenth..]), rows),
        per(sum(&commits[events - tenth..]), tenth) / 1000,
    );
}

fn flatten(room_id: &OwnedRoomId, content: Value) -> FlattenedJson {
    let event = json!({
        "type": "m.room.message",
        "sender": "@sender:example.org",
        "room_id": room_id,
        "content": content,
    });
    FlattenedJson::from_raw(&Raw::new(&event).expect("raw event"))
}

fn per(elapsed: Duration, count: usize) -> u128 {
    elapsed.as_nanos() / count as u128
}

/// The process's resident memory (Linux; 0 elsewhere).
fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    pages * 4096
}
