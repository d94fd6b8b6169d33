//! The REST facade `/api/v1/**` (issue 6, docs/hearth-api-v1.openapi.yaml): conversations,
//! their messages, media uploads, a user's conversations and status — the same data and rules
//! as the Matrix API it stands beside, and every bad input a Matrix error.

use hearth_complement_tests::{Client, TestServer, client::enc, scenario};
use reqwest::Method;
use serde_json::{Value, json};

const CONVERSATIONS: &str = "/api/v1/conversations";
const V3: &str = "/_matrix/client/v3";

fn messages_path(conversation_id: &str, query: &str) -> String {
    format!("{CONVERSATIONS}/{}/messages?{query}", enc(conversation_id))
}

fn user_path(user_id: &str, what: &str) -> String {
    format!("/api/v1/users/{}/{what}", enc(user_id))
}

/// `POST /api/v1/conversations` with `body`; the new conversation's ID.
async fn create(client: &Client, body: Value) -> String {
    let response = client.post(CONVERSATIONS, body).await;
    response.expect_status(200)["conversation_id"].as_str().expect("conversation_id").to_owned()
}

fn bodies(page: &Value) -> Vec<&str> {
    let messages = page["messages"].as_array().expect("messages");
    messages.iter().map(|m| m["content"]["body"].as_str().unwrap_or_default()).collect()
}

scenario!(a_direct_conversation_invites_its_participant_and_pages_its_messages, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let bob = hs.client().register("bob", "passw0rd!").await;

    // Named twice, invited once.
    let body = json!({ "type": "direct", "participants": [bob.me(), bob.me()], "name": "Alice & Bob" });
    let response = alice.post(CONVERSATIONS, body).await;
    let created = response.expect_status(200);
    assert_eq!(created["type"], "direct");
    assert_eq!(created["participants"], json!([bob.me()]));
    let conversation = created["conversation_id"].as_str().expect("conversation_id").to_owned();

    // Bob is invited, as a direct chat, and sees it among his conversations.
    let listed = bob.get(&user_path(bob.me(), "conversations")).await;
    let expected =
        json!([{ "conversation_id": conversation, "membership": "invite", "name": "Alice & Bob" }]);
    assert_eq!(listed.expect_status(200)["conversations"], expected);
    let sync = bob.sync(None, None, 0).await;
    let invite_state = sync["rooms"]["invite"][&conversation]["invite_state"]["events"].clone();
    let invite = invite_state.as_array().into_iter().flatten().find(|e| e["state_key"] == bob.me());
    assert_eq!(invite.map(|e| e["content"]["is_direct"].clone()), Some(json!(true)), "{invite_state}");

    bob.join_room(&conversation).await;
    let listed = bob.get(&user_path(bob.me(), "conversations")).await;
    assert_eq!(listed.expect_status(200)["conversations"][0]["membership"], "join");
    let mut sent = Vec::new();
    for i in 0..5 {
        sent.push(alice.send_text(&conversation, &format!("m{i}")).await);
    }
    bob.send_text(&conversation, "m5").await;

    // Newest first by default, in pages, only messages (no state events), with the WebSocket
    // vocabulary's fields.
    let first = bob.get(&messages_path(&conversation, "limit=4")).await;
    let first = first.expect_status(200).clone();
    assert_eq!(bodies(&first), ["m5", "m4", "m3", "m2"]);
    let message = &first["messages"][1];
    let mut keys: Vec<&str> = message.as_object().expect("an object").keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["content", "conversation_id", "message_id", "sender", "timestamp"]);
    assert_eq!(message["message_id"], sent[4].as_str());
    assert_eq!(message["conversation_id"], conversation.as_str());
    assert_eq!(message["sender"], alice.me());
    assert_eq!(message["content"], json!({ "msgtype": "m.text", "body": "m4" }));
    assert!(message["timestamp"].as_u64().is_some_and(|ts| ts > 1_600_000_000_000), "{message}");

    let from = first["next_from"].as_str().expect("a next page");
    let second = bob.get(&messages_path(&conversation, &format!("limit=4&from={}", enc(from)))).await;
    let second = second.expect_status(200).clone();
    assert_eq!(bodies(&second), ["m1", "m0"]);
    assert_eq!(second["next_from"], Value::Null, "nothing further: {second}");

    let forwards = bob.get(&messages_path(&conversation, "dir=f&limit=3")).await;
    assert_eq!(bodies(forwards.expect_status(200)), ["m0", "m1", "m2"]);
});

scenario!(a_group_conversation_invites_everyone_and_members_list_it, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let bob = hs.client().register("bob", "passw0rd!").await;
    let carol = hs.client().register("carol", "passw0rd!").await;

    let body = json!({ "type": "group", "participants": [bob.me(), carol.me()], "topic": "plans" });
    let conversation = create(&alice, body).await;
    let empty = create(&alice, json!({ "type": "group" })).await;

    let listed = alice.get(&user_path(alice.me(), "conversations")).await;
    let mut ids: Vec<String> = listed.expect_status(200)["conversations"]
        .as_array()
        .expect("conversations")
        .iter()
        .map(|c| {
            assert_eq!((c["membership"].clone(), c["name"].clone()), (json!("join"), Value::Null));
            c["conversation_id"].as_str().unwrap_or_default().to_owned()
        })
        .collect();
    ids.sort();
    let mut expected = vec![conversation.clone(), empty];
    expected.sort();
    assert_eq!(ids, expected);
    for invited in [&bob, &carol] {
        let listed = invited.get(&user_path(invited.me(), "conversations")).await;
        let conversations = &listed.expect_status(200)["conversations"];
        assert_eq!(
            *conversations,
            json!([{ "conversation_id": conversation, "membership": "invite", "name": null }])
        );
    }
    // The same room as the Matrix API sees it.
    let topic = alice.get(&format!("{V3}/rooms/{}/state/m.room.topic/", enc(&conversation))).await;
    assert_eq!(topic.expect_status(200)["topic"], "plans");
});

scenario!(conversations_refuse_bad_input_with_matrix_errors, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let bob = hs.client().register("bob", "passw0rd!").await;

    // Creating.
    let not_json =
        alice.raw(Method::POST, CONVERSATIONS, Some(b"{nope".to_vec()), Some("application/json")).await;
    not_json.expect_error(400, "M_NOT_JSON");
    for body in [
        json!({}),
        json!({ "type": "triangle" }),
        json!({ "type": "group", "participants": ["not a user id"] }),
        json!({ "type": "group", "participants": "@bob:x" }),
        json!({ "type": "group", "participant": [bob.me()] }),
    ] {
        alice.post(CONVERSATIONS, body.clone()).await.expect_error(400, "M_BAD_JSON");
    }
    for body in [
        json!({ "type": "direct", "participants": [] }),
        json!({ "type": "direct", "participants": [bob.me(), "@carol:x.test"] }),
        json!({ "type": "group", "participants": [alice.me()] }),
    ] {
        alice.post(CONVERSATIONS, body.clone()).await.expect_error(400, "M_INVALID_PARAM");
    }
    hs.client().post(CONVERSATIONS, json!({ "type": "group" })).await.expect_error(401, "M_MISSING_TOKEN");
    let stranger = alice.with_token("hth_not_a_token");
    stranger.post(CONVERSATIONS, json!({ "type": "group" })).await.expect_error(401, "M_UNKNOWN_TOKEN");

    // Reading: unknown conversation, not a member, invited only, malformed parameters.
    let conversation = create(&alice, json!({ "type": "group" })).await;
    let unknown = format!("!unknown:{}", hs.server_name);
    bob.get(&messages_path(&unknown, "")).await.expect_error(403, "M_FORBIDDEN");
    bob.get(&messages_path(&conversation, "")).await.expect_error(403, "M_FORBIDDEN");
    bob.get(&messages_path("not-a-room", "")).await.expect_error(400, "M_INVALID_PARAM");
    for query in ["limit=0", "limit=101", "limit=many", "dir=sideways", "from=bogus"] {
        let response = alice.get(&messages_path(&conversation, query)).await;
        response.expect_error(400, "M_INVALID_PARAM");
    }
    let invited = create(&alice, json!({ "type": "direct", "participants": [bob.me()] })).await;
    bob.get(&messages_path(&invited, "")).await.expect_error(403, "M_FORBIDDEN");
    // The token may come as a query parameter, as on every Matrix endpoint.
    let token = alice.token.clone().expect("a token");
    let anonymous = hs.client().get(&messages_path(&conversation, &format!("access_token={token}"))).await;
    assert_eq!(anonymous.expect_status(200)["messages"], json!([]));
});

scenario!(a_user_reads_and_sets_only_their_own_conversations_and_status, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let bob = hs.client().register("bob", "passw0rd!").await;
    create(&alice, json!({ "type": "direct", "participants": [bob.me()] })).await;

    bob.get(&user_path(alice.me(), "conversations")).await.expect_error(403, "M_FORBIDDEN");
    let status = json!({ "status": "online" });
    bob.put(&user_path(alice.me(), "status"), status.clone()).await.expect_error(403, "M_FORBIDDEN");
    bob.get(&user_path("bob", "conversations")).await.expect_error(400, "M_INVALID_PARAM");

    let path = user_path(alice.me(), "status");
    let body = json!({ "status": "unavailable", "status_msg": "lunch" });
    assert_eq!(*alice.put(&path, body).await.expect_status(200), json!({}));
    let presence = alice.get(&format!("{V3}/presence/{}/status", enc(alice.me()))).await;
    let presence = presence.expect_status(200);
    assert_eq!(
        (presence["presence"].clone(), presence["status_msg"].clone()),
        (json!("unavailable"), json!("lunch"))
    );

    alice.put(&path, json!({ "status": "asleep" })).await.expect_error(400, "M_INVALID_PARAM");
    alice.put(&path, json!({ "presence": "online" })).await.expect_error(400, "M_BAD_JSON");
    let not_json = alice.raw(Method::PUT, &path, Some(b"online".to_vec()), Some("application/json")).await;
    not_json.expect_error(400, "M_NOT_JSON");
    alice.get(&path).await.expect_error(405, "M_UNRECOGNIZED");
});

scenario!(an_upload_through_the_facade_downloads_through_the_matrix_api, |backend| {
    let hs = TestServer::start_with(backend, |config| config.limits.max_upload_bytes = 1024).await;
    let alice = hs.client().register("alice", "passw0rd!").await;

    let path = "/api/v1/media/upload?filename=notes.txt";
    let response = alice.raw(Method::POST, path, Some(b"hello, world".to_vec()), Some("text/plain")).await;
    let uri = response.expect_status(200)["content_uri"].as_str().expect("content_uri").to_owned();
    let media = uri.strip_prefix("mxc://").expect("an mxc:// URI");
    let download = alice.get(&format!("/_matrix/client/v1/media/download/{media}")).await;
    assert_eq!(download.status, 200);
    assert_eq!(download.bytes, b"hello, world");
    let content_type = download.headers.get("content-type").and_then(|v| v.to_str().ok());
    assert_eq!(content_type, Some("text/plain"));
    let disposition = download.headers.get("content-disposition").and_then(|v| v.to_str().ok());
    assert!(disposition.is_some_and(|d| d.contains("notes.txt")), "{disposition:?}");

    let too_big = alice.raw(Method::POST, path, Some(vec![0; 2048]), Some("text/plain")).await;
    too_big.expect_error(413, "M_TOO_LARGE");
    let anonymous = hs.client().raw(Method::POST, path, Some(b"x".to_vec()), Some("text/plain")).await;
    anonymous.expect_error(401, "M_MISSING_TOKEN");
});

scenario!(every_documented_path_is_served, |backend| {
    // The OpenAPI file and the routes cannot drift: each documented operation answers (here 401
    // for want of a token), never 404 or 405 `M_UNRECOGNIZED`.
    let hs = TestServer::start(backend).await;
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/hearth-api-v1.openapi.yaml"))
            .expect("reading the OpenAPI file");
    let doc: Value = serde_norway::from_str(&doc).expect("the OpenAPI file is YAML");
    let paths = doc["paths"].as_object().expect("paths");
    assert_eq!(paths.len(), 5, "the five resources of issue 6");
    for (path, item) in paths {
        let concrete = path.replace("{conversation_id}", "!r:x.test").replace("{user_id}", "@u:x.test");
        for method in item.as_object().expect("a path item").keys() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("an HTTP method");
            let response = hs.client().request(method.clone(), &concrete, Some(&json!({}))).await;
            response.expect_error(401, "M_MISSING_TOKEN");
            assert!(!response.text.is_empty(), "{method} {path}");
        }
    }
});
