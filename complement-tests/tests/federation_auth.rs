//! FED-17 and FED-18 (SCENARIOS.md › Federation): a remote server cannot take power by leaving
//! the power levels out of an event's auth events, and redactions from another server than the
//! redacted event's are not applied.

use hearth_complement_tests::{
    client::enc,
    peer_room::{PeerRoom, resident_with_peer},
    rooms::event_ids,
    scenario,
};
use serde_json::json;

const V3: &str = "/_matrix/client/v3";

scenario!(fed_17_power_levels_left_out_of_the_auth_events_give_no_power, |backend| {
    let (hs, peer, alice, room_id) = resident_with_peer(backend).await;
    let room = PeerRoom::join(&peer, &hs, &room_id).await;
    // The peer's events cite no power levels: as if the room had none.
    let mut powerless = room.clone();
    powerless.auth.remove(0);
    let levels = json!({ "users": { room.user.clone(): 100 } });
    let (id, grab) = powerless.event(
        &peer,
        ("m.room.power_levels", Some("")),
        levels,
        vec![room.prev.0.clone()],
        room.prev.1 + 1,
    );
    let answer = PeerRoom::send(&peer, &hs, "t1", vec![grab]).await;
    assert!(answer.expect_status(200)["pdus"][&id]["error"].is_string(), "{:?}", answer.body);
    let levels = alice.get(&format!("{V3}/rooms/{}/state/m.room.power_levels/", enc(&room_id))).await;
    assert!(levels.expect_status(200)["users"].get(&room.user).is_none());
});

scenario!(fed_18_a_redaction_from_another_server_than_the_senders_is_not_applied, |backend| {
    let (hs, peer, alice, room_id) = resident_with_peer(backend).await;
    let mut room = PeerRoom::join(&peer, &hs, &room_id).await;
    let target = alice.send_text(&room_id, "keep me").await;
    // The peer learns of Alice's message and redacts it (it has no power to redact others).
    let next = room.prev.1.max(3) + 2;
    let content = json!({ "redacts": target });
    let (redaction_id, redaction) =
        room.event(&peer, ("m.room.redaction", None), content, vec![target.clone()], next);
    room.prev = (redaction_id.clone(), next);
    let answer = PeerRoom::send(&peer, &hs, "t1", vec![redaction]).await;
    assert_eq!(
        answer.expect_status(200)["pdus"][&redaction_id],
        json!({}),
        "the redaction itself is accepted"
    );
    alice.timeline_until(&room_id, |events| event_ids(events).contains(&redaction_id.as_str())).await;
    let kept = alice.get(&format!("{V3}/rooms/{}/event/{}", enc(&room_id), enc(&target))).await;
    assert_eq!(kept.expect_status(200)["content"]["body"], "keep me", "not redacted");
});
