//! A fake peer's user in a Hearth room (SCENARIOS.md › Federation FED-5..9, FED-15): the
//! resident side of make_join / send_join, and PDUs pushed with `/send` — accepted, dropped,
//! redacted, filled in with `/get_missing_events` or `/state`, soft-failed, rejected, denied by
//! the room's ACL (FED-10, 13, 14, 19).

use hearth_complement_tests::{
    FakePeer, TestServer,
    client::enc,
    fake_peer::Signing,
    peer_room::{PeerRoom, event_id, resident_with_peer},
    rooms::event_ids,
    scenario,
};
use reqwest::Method;
use serde_json::{Value, json};

const V3: &str = "/_matrix/client/v3";

scenario!(fed_5_make_join_offers_a_template_in_the_room_version_to_the_users_own_server, |backend| {
    let (hs, peer, alice, room_id) = resident_with_peer(backend).await;
    let user = format!("@mallory:{}", peer.server_name);
    let version = alice
        .get(&format!("{V3}/rooms/{}/state/m.room.create/", enc(&room_id)))
        .await
        .expect_status(200)["room_version"]
        .as_str()
        .expect("room_version")
        .to_owned();
    let path = |user: &str, ver: &str| {
        format!("/_matrix/federation/v1/make_join/{}/{}?ver={ver}", enc(&room_id), enc(user))
    };
    let template = peer.request(&hs, Method::GET, &path(&user, &version), None, Signing::Valid).await;
    let template = template.expect_status(200);
    assert_eq!(template["room_version"], version.as_str());
    assert_eq!(template["event"]["type"], "m.room.member");
    assert_eq!(template["event"]["state_key"], user.as_str());
    assert_eq!(template["event"]["content"]["membership"], "join");

    peer.request(&hs, Method::GET, &path(&user, "1"), None, Signing::Valid)
        .await
        .expect_error(400, "M_INCOMPATIBLE_ROOM_VERSION");
    let someone_elses = hs.user_id("bob");
    peer.request(&hs, Method::GET, &path(&someone_elses, &version), None, Signing::Valid)
        .await
        .expect_error(403, "M_FORBIDDEN");
});

scenario!(fed_6_send_join_takes_only_a_join_of_the_senders_own_user_and_returns_state, |backend| {
    let (hs, peer, alice, room_id) = resident_with_peer(backend).await;
    let mut room = PeerRoom::join(&peer, &hs, &room_id).await;
    let state = room.joined["state"].as_array().expect("state");
    assert!(state.iter().any(|e| e["type"] == "m.room.create"), "{state:?}");
    assert!(state.iter().any(|e| e["type"] == "m.room.member" && e["state_key"] == alice.me()));
    assert!(!room.joined["auth_chain"].as_array().expect("auth_chain").is_empty());
    let members = alice.get(&format!("{V3}/rooms/{}/joined_members", enc(&room_id))).await;
    assert!(members.expect_status(200)["joined"].get(&room.user).is_some(), "the peer's user is joined");

    // A message is not a join.
    let (id, message) = room.message(&peer, "not a join");
    let path = format!("/_matrix/federation/v2/send_join/{}/{}", enc(&room_id), enc(&id));
    peer.request(&hs, Method::PUT, &path, Some(&message), Signing::Valid)
        .await
        .expect_error(400, "M_BAD_JSON");
});

scenario!(fed_7_a_valid_pdu_reaches_local_sync_and_transactions_are_checked, |backend| {
    let (hs, peer, alice, room_id) = resident_with_peer(backend).await;
    let mut room = PeerRoom::join(&peer, &hs, &room_id).await;
    let (id, pdu) = room.message(&peer, "hello from the peer");
    let answer = PeerRoom::send(&peer, &hs, "t1", vec![pdu.clone()]).await;
    assert_eq!(answer.expect_status(200)["pdus"][&id], json!({}), "accepted: {:?}", answer.body);
    let events = alice.timeline_until(&room_id, |events| event_ids(events).contains(&id.as_str())).await;
    let seen = events.iter().find(|e| e["event_id"] == id.as_str()).expect("the event");
    assert_eq!(seen["content"]["body"], "hello from the peer");
    assert_eq!(seen["sender"], room.user.as_str());

    // The same transaction again: the same answer.
    let again = PeerRoom::send(&peer, &hs, "t1", vec![pdu.clone()]).await;
    assert_eq!(again.expect_status(200), &answer.body);
    // Over 50 PDUs: refused whole.
    let many: Vec<Value> = (0..51).map(|_| pdu.clone()).collect();
    PeerRoom::send(&peer, &hs, "t2", many).await.expect_error(400, "M_BAD_JSON");
    // A transaction whose origin is not the signing server.
    let body = json!({ "origin": "elsewhere.test", "origin_server_ts": 1, "pdus": [] });
    peer.request(&hs, Method::PUT, "/_matrix/federation/v1/send/t3", Some(&body), Signing::Valid)
        .await
        .expect_error(403, "M_FORBIDDEN");
});

scenario!(fed_8_forged_pdus_are_dropped_and_tampered_ones_redacted, |backend| {
    let (hs, peer, alice, room_id) = resident_with_peer(backend).await;
    let mut room = PeerRoom::join(&peer, &hs, &room_id).await;
    // Signed, then its signature spoiled.
    let (forged_id, mut forged) = room.event(
        &peer,
        ("m.room.message", None),
        json!({ "body": "forged" }),
        vec![room.prev.0.clone()],
        room.prev.1 + 1,
    );
    let signature = &mut forged["signatures"][&peer.server_name];
    let key = signature.as_object().and_then(|s| s.keys().next().cloned()).expect("a signature");
    signature[&key] = json!("AAAA");
    // Signed, then its content changed: the hash no longer matches.
    let (tampered_id, mut tampered) = room.message(&peer, "original");
    tampered["content"]["body"] = json!("tampered");
    let tampered_id = {
        let object = serde_json::from_value(tampered.clone()).expect("canonical");
        let id = event_id(&object, &room.version);
        assert_eq!(id, tampered_id, "the reference hash covers the redacted form only");
        id
    };
    let answer = PeerRoom::send(&peer, &hs, "t1", vec![forged, tampered]).await;
    let answer = answer.expect_status(200);
    assert!(answer["pdus"][&forged_id]["error"].is_string(), "the forged PDU is refused: {answer}");
    let events =
        alice.timeline_until(&room_id, |events| event_ids(events).contains(&tampered_id.as_str())).await;
    assert!(!event_ids(&events).contains(&forged_id.as_str()));
    let redacted = events.iter().find(|e| e["event_id"] == tampered_id.as_str()).expect("kept");
    assert_eq!(redacted["content"], json!({}), "kept only in redacted form");
});

scenario!(fed_9_an_unknown_prev_event_is_fetched_with_get_missing_events, |backend| {
    let (hs, peer, alice, room_id) = resident_with_peer(backend).await;
    let mut room = PeerRoom::join(&peer, &hs, &room_id).await;
    let (first_id, first) = room.message(&peer, "first");
    let (second_id, second) = room.message(&peer, "second");
    peer.respond(
        Method::POST,
        &format!("/_matrix/federation/v1/get_missing_events/{room_id}"),
        200,
        json!({ "events": [first] }),
    );
    let answer = PeerRoom::send(&peer, &hs, "t1", vec![second]).await;
    assert_eq!(answer.expect_status(200)["pdus"][&second_id], json!({}), "{:?}", answer.body);
    let asked = peer.wait_for_request("/_matrix/federation/v1/get_missing_events/").await;
    assert_eq!(asked.body["latest_events"], json!([second_id]));
    let events =
        alice.timeline_until(&room_id, |events| event_ids(events).contains(&second_id.as_str())).await;
    let order: Vec<&str> =
        event_ids(&events).into_iter().filter(|id| *id == first_id || *id == second_id).collect();
    assert_eq!(order, [first_id.as_str(), second_id.as_str()], "in DAG order");
    assert!(!peer.requests().iter().any(|r| r.uri.contains("/state_ids/")), "no /state_ids needed");
});

// That Hearth does not build on a soft-failed event is checked in core
// (`rooms::remote_tests`): the peer, banned, is sent nothing more to look at.
scenario!(fed_15_an_event_from_a_user_banned_meanwhile_is_soft_failed, |backend| {
    let (hs, peer, alice, room_id) = resident_with_peer(backend).await;
    let mut room = PeerRoom::join(&peer, &hs, &room_id).await;
    let path = format!("{V3}/rooms/{}/ban", enc(&room_id));
    alice.post(&path, json!({ "user_id": room.user })).await.expect_status(200);
    // The peer has not heard of the ban: its message follows its join.
    let (late_id, late) = room.message(&peer, "after the ban");
    let answer = PeerRoom::send(&peer, &hs, "t1", vec![late]).await;
    answer.expect_status(200);
    let next = alice.send_text(&room_id, "still here").await;
    let events = alice.timeline_until(&room_id, |events| event_ids(events).contains(&next.as_str())).await;
    assert!(!event_ids(&events).contains(&late_id.as_str()), "never sent to clients");
});

scenario!(fed_14_an_unauthorised_event_and_events_citing_it_are_rejected, |backend| {
    let (hs, peer, alice, room_id) = resident_with_peer(backend).await;
    let room = PeerRoom::join(&peer, &hs, &room_id).await;
    // Mallory has no power to change the power levels.
    let levels = json!({ "users": { room.user.clone(): 100 } });
    let next = (room.prev.0.clone(), room.prev.1 + 1);
    let (grab_id, grab) = room.event(&peer, ("m.room.power_levels", Some("")), levels, vec![next.0], next.1);
    // A message citing the rejected power levels as an auth event.
    let mut citing = room.clone_with_auth(&grab_id);
    let (citing_id, citing_pdu) = citing.message(&peer, "on stolen power");
    let answer = PeerRoom::send(&peer, &hs, "t1", vec![grab, citing_pdu]).await;
    let answer = answer.expect_status(200);
    assert!(answer["pdus"][&grab_id]["error"].is_string(), "{answer}");
    assert!(answer["pdus"][&citing_id]["error"].is_string(), "{answer}");
    let path = format!("/_matrix/federation/v1/event/{}", enc(&grab_id));
    peer.request(&hs, Method::GET, &path, None, Signing::Valid).await.expect_error(404, "M_NOT_FOUND");
    let levels = alice.get(&format!("{V3}/rooms/{}/state/m.room.power_levels/", enc(&room_id))).await;
    assert!(levels.expect_status(200)["users"].get(&room.user).is_none(), "not in the state");
    let mine = alice.send_text(&room_id, "mine").await;
    let events = alice.timeline_until(&room_id, |events| event_ids(events).contains(&mine.as_str())).await;
    assert!(
        !event_ids(&events).contains(&citing_id.as_str()) && !event_ids(&events).contains(&grab_id.as_str())
    );
});

scenario!(fed_13_an_invite_must_be_signed_by_the_inviters_server_and_is_countersigned, |backend| {
    let (hs, peer, _alice, room_id) = resident_with_peer(backend).await;
    let room = PeerRoom::join(&peer, &hs, &room_id).await;
    let bob = hs.user_id("bob");
    let next = (room.prev.0.clone(), room.prev.1 + 1);
    let (id, invite) = room.event(
        &peer,
        ("m.room.member", Some(&bob)),
        json!({ "membership": "invite" }),
        vec![next.0],
        next.1,
    );
    let path = format!("/_matrix/federation/v2/invite/{}/{}", enc(&room_id), enc(&id));
    let body = |event: &Value| json!({ "room_version": room.version.as_str(), "event": event, "invite_room_state": [] });

    let mut unsigned = invite.clone();
    unsigned["signatures"] = json!({});
    peer.request(&hs, Method::PUT, &path, Some(&body(&unsigned)), Signing::Valid)
        .await
        .expect_error(403, "M_FORBIDDEN");

    let answer = peer.request(&hs, Method::PUT, &path, Some(&body(&invite)), Signing::Valid).await;
    let signatures = &answer.expect_status(200)["event"]["signatures"];
    assert!(signatures.get(&hs.server_name).is_some(), "countersigned: {signatures}");
    assert!(signatures.get(&peer.server_name).is_some(), "the inviter's signature kept");
});

scenario!(fed_19_pdus_from_a_server_the_acl_denies_are_dropped, |backend| {
    let (hs, peer, alice, room_id) = resident_with_peer(backend).await;
    let mut room = PeerRoom::join(&peer, &hs, &room_id).await;
    let acl = json!({ "allow": ["*"], "deny": [peer.server_name], "allow_ip_literals": false });
    alice
        .put(&format!("{V3}/rooms/{}/state/m.room.server_acl/", enc(&room_id)), acl)
        .await
        .expect_status(200);
    let (id, pdu) = room.message(&peer, "denied");
    let answer = PeerRoom::send(&peer, &hs, "t1", vec![pdu]).await;
    assert!(answer.expect_status(200)["pdus"][&id]["error"].is_string(), "{:?}", answer.body);
    let path = format!("/_matrix/federation/v1/state_ids/{}?event_id={}", enc(&room_id), enc(&id));
    peer.request(&hs, Method::GET, &path, None, Signing::Valid).await.expect_error(403, "M_FORBIDDEN");
    let mine = alice.send_text(&room_id, "still working").await;
    let events = alice.timeline_until(&room_id, |events| event_ids(events).contains(&mine.as_str())).await;
    assert!(!event_ids(&events).contains(&id.as_str()));
});

/// The room's state as the peer's join saw it, plus its join: `(state, auth chain)`.
fn state_after_join(room: &PeerRoom) -> (Vec<Value>, Vec<Value>) {
    let mut state = room.joined["state"].as_array().cloned().unwrap_or_default();
    state.push(room.join_event.clone());
    (state, room.joined["auth_chain"].as_array().cloned().unwrap_or_default())
}

/// The event IDs of the state before `event_id` Hearth reports to the peer.
async fn state_ids_at(peer: &FakePeer, hs: &TestServer, room_id: &str, event_id: &str) -> Vec<String> {
    let path = format!("/_matrix/federation/v1/state_ids/{}?event_id={}", enc(room_id), enc(event_id));
    let answer = peer.request(hs, Method::GET, &path, None, Signing::Valid).await;
    let ids = answer.expect_status(200)["pdu_ids"].as_array().cloned().unwrap_or_default();
    ids.iter().filter_map(|id| id.as_str().map(str::to_owned)).collect()
}

scenario!(fed_10_a_gap_get_missing_events_cannot_fill_is_crossed_with_the_state_at_it, |backend| {
    let (hs, peer, alice, room_id) = resident_with_peer(backend).await;
    let mut room = PeerRoom::join(&peer, &hs, &room_id).await;
    // A state event Hearth never saw (Mallory's new display name) is part of the state at `two`;
    // a join cites the join rules.
    let content = json!({ "membership": "join", "displayname": "Mal" });
    let next = (room.prev.0.clone(), room.prev.1 + 1);
    let state = room.joined["state"].as_array().cloned().unwrap_or_default();
    let rules = state.iter().find(|e| e["type"] == "m.room.join_rules").expect("join rules");
    let mut member = room.clone();
    member.auth.push(event_id(&serde_json::from_value(rules.clone()).expect("canonical"), &room.version));
    let (renamed_id, renamed) =
        member.event(&peer, ("m.room.member", Some(&room.user.clone())), content, vec![next.0], next.1);
    room.prev = (renamed_id.clone(), next.1);
    let (two_id, two) = room.message(&peer, "two");
    let (three_id, three) = room.message(&peer, "three");
    let (mut state, auth_chain) = state_after_join(&room);
    state.retain(|e| e["state_key"] != room.user.as_str());
    state.push(renamed);
    peer.serve_state_at((&room.room_id, &room.version), &two, &state, &auth_chain);

    let answer = PeerRoom::send(&peer, &hs, "t1", vec![three]).await;
    assert_eq!(answer.expect_status(200)["pdus"][&three_id], json!({}), "{:?}", answer.body);
    let asked = peer.wait_for_request("/_matrix/federation/v1/state_ids/").await;
    assert!(asked.uri.contains(&two_id[1..]), "the state at two: {}", asked.uri);
    peer.wait_for_request(&format!("/_matrix/federation/v1/event/{renamed_id}")).await;
    let events =
        alice.timeline_until(&room_id, |events| event_ids(events).contains(&three_id.as_str())).await;
    let three = events.iter().find(|e| e["event_id"] == three_id.as_str()).expect("accepted");
    assert_eq!(three["content"]["body"], "three");
    assert!(state_ids_at(&peer, &hs, &room_id, &three_id).await.contains(&renamed_id), "the fetched state");
});

scenario!(fed_10_a_fetched_state_with_a_forged_or_unauthorised_event_is_not_used, |backend| {
    let (hs, peer, alice, room_id) = resident_with_peer(backend).await;
    let mut room = PeerRoom::join(&peer, &hs, &room_id).await;
    let (state, auth_chain) = state_after_join(&room);
    let levels_id = room.auth[0].clone();
    let next = (room.prev.0.clone(), room.prev.1 + 1);

    // Mallory, without power, raises herself to 100: signed, but the rules refuse it.
    let levels = json!({ "users": { room.user.clone(): 100 } });
    let (grab_id, grab) = room.event(&peer, ("m.room.power_levels", Some("")), levels, vec![next.0], next.1);
    room.prev = (grab_id.clone(), next.1);
    let (two_id, two) = room.message(&peer, "two");
    let (three_id, three) = room.message(&peer, "three");
    // The peer claims the grab is the state at `two`, in place of the real power levels.
    let mut claimed: Vec<Value> = state.clone();
    claimed.retain(|e| e["type"] != "m.room.power_levels");
    claimed.push(grab);
    peer.serve_state_at((&room.room_id, &room.version), &two, &claimed, &auth_chain);
    let answer = PeerRoom::send(&peer, &hs, "t1", vec![three]).await;
    let answer = answer.expect_status(200);
    assert!(answer["pdus"][&three_id]["error"].is_string(), "not accepted on a forged state: {answer}");
    for id in [&three_id, &two_id, &grab_id] {
        let path = format!("/_matrix/federation/v1/event/{}", enc(id));
        peer.request(&hs, Method::GET, &path, None, Signing::Valid).await.expect_error(404, "M_NOT_FOUND");
    }

    // A member event whose signature does not verify, claimed as the state at `five`.
    let mut room = PeerRoom::join(&peer, &hs, &room_id).await;
    let content = json!({ "membership": "join", "displayname": "Forged" });
    let next = (room.prev.0.clone(), room.prev.1 + 1);
    let (forged_id, mut forged) =
        room.event(&peer, ("m.room.member", Some(&room.user.clone())), content, vec![next.0], next.1);
    forged["signatures"][&peer.server_name][peer.key_id()] = json!("AAAA");
    room.prev = (forged_id.clone(), next.1);
    let (_, five) = room.message(&peer, "five");
    let (six_id, six) = room.message(&peer, "six");
    let (mut claimed, auth_chain) = state_after_join(&room);
    claimed.retain(|e| e["state_key"] != room.user.as_str());
    claimed.push(forged);
    peer.serve_state_at((&room.room_id, &room.version), &five, &claimed, &auth_chain);
    let answer = PeerRoom::send(&peer, &hs, "t2", vec![six]).await;
    let answer = answer.expect_status(200);
    assert!(answer["pdus"][&six_id]["error"].is_string(), "not accepted on a forged state: {answer}");

    let levels = alice.get(&format!("{V3}/rooms/{}/state/m.room.power_levels/", enc(&room_id))).await;
    assert!(levels.expect_status(200)["users"].get(&room.user).is_none(), "not in the state");
    let mine = alice.send_text(&room_id, "mine").await;
    let events = alice.timeline_until(&room_id, |events| event_ids(events).contains(&mine.as_str())).await;
    for id in [&three_id, &six_id] {
        assert!(!event_ids(&events).contains(&id.as_str()), "{id} is not shown");
    }
    assert!(state_ids_at(&peer, &hs, &room_id, &mine).await.contains(&levels_id), "the real power levels");
});
