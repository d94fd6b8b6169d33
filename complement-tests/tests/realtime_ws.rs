//! The WebSocket channel (SCENARIOS.md › RT-1): pushed sync frames, the simple chat vocabulary,
//! resuming from a position, and a client that does not read.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use hearth_complement_tests::{
    Client, TestServer,
    client::{enc, eventually},
    rooms::{bodies, ephemeral, next_batch, timeline},
    scenario,
};
use serde_json::{Value, json};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{
        Message, client::IntoClientRequest, error::Error as WsError, protocol::frame::coding::CloseCode,
    },
};

const WAIT: Duration = Duration::from_secs(20);

/// A test's end of a WebSocket.
struct Socket(WebSocketStream<TcpStream>);

/// How the socket authenticates.
enum Auth {
    Header,
    Query,
}

async fn tcp(hs: &TestServer, receive_buffer: Option<u32>) -> TcpStream {
    let address = hs.base_url.trim_start_matches("http://").parse().expect("a socket address");
    let socket = TcpSocket::new_v4().expect("a TCP socket");
    if let Some(size) = receive_buffer {
        socket.set_recv_buffer_size(size).expect("setting the receive buffer");
    }
    socket.connect(address).await.expect("connecting")
}

/// Opens `/_hearth/client/v1/ws?{query}` as `client`; the handshake's error if refused.
async fn try_connect(
    hs: &TestServer,
    client: &Client,
    auth: Auth,
    query: &str,
    receive_buffer: Option<u32>,
) -> Result<Socket, WsError> {
    let mut url = format!("{}/_hearth/client/v1/ws?{query}", hs.base_url.replacen("http", "ws", 1));
    let token = client.token.clone().unwrap_or_default();
    if matches!(auth, Auth::Query) {
        url.push_str(&format!("&access_token={token}"));
    }
    let mut request = url.into_client_request().expect("a WebSocket request");
    if matches!(auth, Auth::Header) {
        request.headers_mut().insert("authorization", format!("Bearer {token}").parse().expect("a header"));
    }
    let (socket, _) = tokio_tungstenite::client_async(request, tcp(hs, receive_buffer).await).await?;
    Ok(Socket(socket))
}

async fn connect(hs: &TestServer, client: &Client, query: &str) -> Socket {
    try_connect(hs, client, Auth::Header, query, None).await.expect("the WebSocket opens")
}

impl Socket {
    async fn send(&mut self, frame: Value) {
        self.0.send(Message::Text(frame.to_string().into())).await.expect("sending a frame");
    }

    /// The next JSON frame (pings are answered by the library).
    async fn next(&mut self) -> Value {
        loop {
            let message = tokio::time::timeout(WAIT, self.0.next()).await.expect("a frame in time");
            match message.expect("the socket stays open").expect("a frame") {
                Message::Text(text) => return serde_json::from_str(text.as_str()).expect("a JSON frame"),
                Message::Close(close) => panic!("closed by the server: {close:?}"),
                _ => {}
            }
        }
    }

    /// Reads frames until one matches; the frames read, that one last.
    async fn until(&mut self, what: &str, matches: impl Fn(&Value) -> bool) -> Vec<Value> {
        let mut frames = Vec::new();
        let deadline = tokio::time::Instant::now() + WAIT;
        while tokio::time::Instant::now() < deadline {
            let frame = self.next().await;
            let done = matches(&frame);
            frames.push(frame);
            if done {
                return frames;
            }
        }
        panic!("no frame for {what} in time; got {frames:?}");
    }

    /// Sends a command frame; its `result` or `error` frame.
    async fn ask(&mut self, frame: Value) -> Value {
        self.send(frame).await;
        let reply = self.until("a reply", |f| matches!(f["type"].as_str(), Some("result" | "error"))).await;
        reply.into_iter().last().expect("a reply")
    }

    /// Reads past any frames up to the server's close frame; its code.
    async fn close_code(&mut self) -> CloseCode {
        loop {
            match tokio::time::timeout(WAIT, self.0.next()).await.expect("frames in time") {
                Some(Ok(Message::Close(close))) => return close.expect("a close frame with a code").code,
                Some(Ok(_)) => {}
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    }

    /// The frames of the next batch in the simple format, up to its `position` frame.
    async fn batch(&mut self) -> Vec<Value> {
        self.until("a position frame", |f| f["type"] == "position").await
    }
}

/// Alice and Bob, both joined to a public room of Alice's.
async fn alice_and_bob_in_a_room(hs: &TestServer) -> (Client, Client, String) {
    let alice = hs.client().register("alice", "passw0rd!").await;
    let bob = hs.client().register("bob", "passw0rd!").await;
    let room_id = alice.create_room(json!({ "preset": "public_chat" })).await;
    bob.join_room(&room_id).await;
    (alice, bob, room_id)
}

fn of_type<'a>(frames: &'a [Value], kind: &str) -> Vec<&'a Value> {
    frames.iter().filter(|f| f["type"] == kind).collect()
}

scenario!(rt_1_a_socket_pushes_messages_typing_presence_and_statuses, |backend| {
    let hs = TestServer::start(backend).await;
    let (alice, bob, room_id) = alice_and_bob_in_a_room(&hs).await;
    let mut alice_ws = connect(&hs, &alice, "format=simple").await;
    alice_ws.batch().await;
    // Browsers cannot set headers on a WebSocket: the token may come in the query string.
    let mut bob_ws = try_connect(&hs, &bob, Auth::Query, "format=simple", None).await.expect("opens");
    bob_ws.batch().await;
    // Bob being connected made him online for alice.
    alice_ws
        .until("bob online", |f| {
            f["type"] == "user_online" && f["user_id"] == bob.me() && f["status"] == "online"
        })
        .await;

    // A message sent through the client API reaches both sockets; the sender also sees `sent`.
    let event_id = alice.send_text(&room_id, "hello bob").await;
    let frames = bob_ws.until("bob's new_message", |f| f["type"] == "new_message").await;
    let message = frames.last().expect("a frame");
    assert_eq!(message["message_id"], event_id.as_str());
    assert_eq!(message["conversation_id"], room_id.as_str());
    assert_eq!(message["sender"], alice.me());
    assert_eq!(message["content"]["body"], "hello bob");
    assert!(message["timestamp"].as_u64().is_some(), "{message}");
    let frames = alice_ws.until("alice's sent status", |f| f["status"] == "sent").await;
    assert_eq!(frames.last().expect("a frame")["message_id"], event_id.as_str());
    // RT-2: bob's client answering the ping after that frame proves delivery.
    bob_ws.send(json!({ "type": "typing_indicator", "conversation_id": room_id, "is_typing": false })).await;
    bob_ws.until("a reply", |f| f["type"] == "result").await;
    let delivered = alice_ws.until("delivered", |f| f["status"] == "delivered").await;
    let delivered = delivered.last().expect("a frame");
    assert_eq!((&delivered["message_id"], &delivered["user_id"]), (&json!(event_id), &json!(bob.me())));
    // Matrix clients see it as a receipt of Hearth's own type.
    let sync = alice.sync(None, None, 0).await;
    let receipts =
        ephemeral(&sync, &room_id).iter().find(|e| e["type"] == "m.receipt").expect("receipts").clone();
    assert!(receipts["content"][&event_id]["io.hearth.delivered"][bob.me()]["ts"].is_u64(), "{receipts}");

    // Typing, started and stopped through the socket, reaches the other member.
    let typing =
        json!({ "type": "typing_indicator", "conversation_id": room_id, "is_typing": true, "request_id": 1 });
    bob_ws.send(typing).await;
    let reply = bob_ws.until("the typing result", |f| f["type"] == "result").await;
    assert_eq!(reply.last().expect("a frame")["request_id"], 1);
    let update = alice_ws.until("typing", |f| f["type"] == "typing_update").await;
    let update = update.last().expect("a frame");
    assert_eq!((&update["user_id"], &update["is_typing"]), (&json!(bob.me()), &json!(true)));
    bob_ws.send(json!({ "type": "typing_indicator", "conversation_id": room_id, "is_typing": false })).await;
    let update = alice_ws.until("typing stopped", |f| f["type"] == "typing_update").await;
    assert_eq!(update.last().expect("a frame")["is_typing"], false);

    // Bob reads through the socket (the room is found from the event): alice sees `read`.
    bob_ws.send(json!({ "type": "read_receipt", "message_id": event_id, "request_id": "r" })).await;
    let reply = bob_ws.until("the receipt result", |f| f["request_id"] == "r").await;
    assert_eq!(reply.last().expect("a frame")["type"], "result", "{reply:?}");
    let read = alice_ws.until("read", |f| f["status"] == "read").await;
    let read = read.last().expect("a frame");
    assert_eq!((&read["message_id"], &read["user_id"]), (&json!(event_id), &json!(bob.me())));
});

scenario!(rt_1_socket_commands_act_like_the_client_api, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let bob = hs.client().register("bob", "passw0rd!").await;
    let public = alice.create_room(json!({ "preset": "public_chat", "room_alias_name": "lobby" })).await;
    let private = alice.create_room(json!({ "preset": "private_chat" })).await;
    let mut ws = connect(&hs, &bob, "format=simple").await;
    ws.batch().await;

    // Same permission checks: a private room cannot be joined, nor typed or read in.
    let reply =
        ws.ask(json!({ "type": "join_conversation", "conversation_id": private, "request_id": "j1" })).await;
    assert_eq!(
        (&reply["type"], &reply["errcode"], &reply["request_id"]),
        (&json!("error"), &json!("M_FORBIDDEN"), &json!("j1"))
    );
    let reply =
        ws.ask(json!({ "type": "typing_indicator", "conversation_id": public, "is_typing": true })).await;
    assert_eq!(reply["errcode"], "M_FORBIDDEN");
    let reply = ws.ask(json!({ "type": "send_message", "conversation_id": public, "content": "hi" })).await;
    assert_eq!(reply["errcode"], "M_FORBIDDEN");

    // An alias joins like `/join/{alias}`; then messages send, once per request_id.
    let alias = format!("#lobby:{}", hs.server_name);
    let reply = ws.ask(json!({ "type": "join_conversation", "conversation_id": alias })).await;
    assert_eq!(reply["conversation_id"], public.as_str(), "{reply}");
    let send =
        json!({ "type": "send_message", "conversation_id": public, "content": "first", "request_id": "m1" });
    let first = ws.ask(send.clone()).await;
    assert_eq!(first["type"], "result", "{first}");
    assert_eq!(ws.ask(send).await["message_id"], first["message_id"], "a resent frame sends once");
    let notice = json!({
        "type": "send_message", "conversation_id": public, "content": { "body": "beep" }, "message_type": "m.notice",
    });
    assert_eq!(ws.ask(notice).await["type"], "result");
    let page = alice.get(&format!("/_matrix/client/v3/rooms/{}/messages?dir=b&limit=5", enc(&public))).await;
    let chunk = page.expect_status(200)["chunk"].as_array().expect("chunk").clone();
    assert_eq!(bodies(&chunk), ["beep", "first"]);
    assert_eq!(chunk[0]["content"]["msgtype"], "m.notice");

    // Receipts: an unknown event, and an event of a room bob is not in, are both 404.
    let unknown = format!("$nothing:{}", hs.server_name);
    let reply = ws.ask(json!({ "type": "read_receipt", "message_id": unknown })).await;
    assert_eq!(reply["errcode"], "M_NOT_FOUND");
    let hidden = alice.send_text(&private, "secret").await;
    assert_eq!(
        ws.ask(json!({ "type": "read_receipt", "message_id": hidden })).await["errcode"],
        "M_NOT_FOUND"
    );

    // Malformed frames are answered with error frames; the socket stays open.
    ws.0.send(Message::Text("{nope".into())).await.expect("sending");
    let reply = ws.until("the error", |f| f["type"] == "error").await;
    assert_eq!(reply.last().expect("a frame")["errcode"], "M_NOT_JSON");
    let reply = ws.ask(json!({ "type": "fly", "request_id": 7 })).await;
    assert_eq!((&reply["errcode"], &reply["request_id"]), (&json!("M_UNRECOGNIZED"), &json!(7)));
    assert_eq!(ws.ask(json!({ "type": "send_message", "content": "x" })).await["errcode"], "M_BAD_JSON");
    let reply =
        ws.ask(json!({ "type": "typing_indicator", "conversation_id": "lobby", "is_typing": true })).await;
    assert_eq!(reply["errcode"], "M_INVALID_PARAM");
});

scenario!(rt_1_a_socket_resumes_from_its_last_position_missing_and_repeating_nothing, |backend| {
    let hs = TestServer::start(backend).await;
    let (alice, bob, room_id) = alice_and_bob_in_a_room(&hs).await;
    alice.send_text(&room_id, "before").await;

    // The first frame is an initial sync; each later one a sync response as it happens.
    let mut ws = connect(&hs, &bob, "").await;
    let initial = ws.next().await;
    assert_eq!(initial["type"], "sync");
    assert!(bodies(timeline(&initial, &room_id)).contains(&"before".to_owned()));
    alice.send_text(&room_id, "m1").await;
    let frame = ws.until("m1", |f| !timeline(f, &room_id).is_empty()).await.pop().expect("a frame");
    assert_eq!(bodies(timeline(&frame, &room_id)), ["m1"]);
    let position = next_batch(&frame);
    ws.0.close(None).await.expect("closing");

    // Sent while disconnected: delivered on resuming, once, and nothing earlier again.
    alice.send_text(&room_id, "m2").await;
    alice.send_text(&room_id, "m3").await;
    let mut ws = connect(&hs, &bob, &format!("since={}", enc(&position))).await;
    let mut seen = Vec::new();
    while seen.len() < 2 {
        seen.extend(bodies(timeline(&ws.next().await, &room_id)));
    }
    alice.send_text(&room_id, "m4").await;
    while seen.len() < 3 {
        seen.extend(bodies(timeline(&ws.next().await, &room_id)));
    }
    assert_eq!(seen, ["m2", "m3", "m4"]);

    // `both`: the vocabulary frames of a batch, then its sync frame.
    let mut ws = connect(&hs, &bob, &format!("format=both&since={}", enc(&position))).await;
    let frames = ws.until("the sync frame", |f| f["type"] == "sync").await;
    let messages: Vec<_> =
        of_type(&frames, "new_message").iter().map(|f| f["content"]["body"].clone()).collect();
    assert_eq!(messages, [json!("m2"), json!("m3"), json!("m4")]);

    // Without a valid token, or with a bad position, the upgrade is refused with a Matrix error.
    let nobody = hs.client().with_token("hth_nonsense");
    match try_connect(&hs, &nobody, Auth::Header, "", None).await {
        Err(WsError::Http(response)) => assert_eq!(response.status(), 401),
        other => panic!("expected a 401, got {:?}", other.map(|_| ())),
    }
    match try_connect(&hs, &bob, Auth::Header, "since=yesterday", None).await {
        Err(WsError::Http(response)) => assert_eq!(response.status(), 400),
        other => panic!("expected a 400, got {:?}", other.map(|_| ())),
    }
});

scenario!(rt_1_a_client_that_does_not_read_is_closed_with_4008, |backend| {
    let hs = TestServer::start_with(backend, |config| config.websocket.send_timeout_ms = 300).await;
    let (alice, bob, room_id) = alice_and_bob_in_a_room(&hs).await;
    // A small receive window, and a client that never reads while messages pour in.
    let mut ws = try_connect(&hs, &bob, Auth::Header, "", Some(4096)).await.expect("opens");
    let big = "x".repeat(30_000);
    let closed = |metrics: &str| {
        metrics.lines().any(|l| l.starts_with("hearth_websockets_closed_total{reason=\"slow\"} 1"))
    };
    let mut sent = 0;
    while !closed(&hs.client().get("/metrics").await.text) {
        assert!(sent < 400, "the server kept buffering for a client that does not read");
        alice.send_text(&room_id, &big).await;
        sent += 1;
    }
    eventually("the open-socket gauge to drop", WAIT, async || {
        let metrics = hs.client().get("/metrics").await.text;
        metrics.lines().any(|l| l == "hearth_websockets_open 0").then_some(())
    })
    .await;

    // Reading now: what was in flight, then the close frame with its code.
    assert_eq!(ws.close_code().await, CloseCode::from(4008));
});

scenario!(rt_1_to_device_messages_wait_for_an_ack_and_survive_a_reconnect, |backend| {
    let hs = TestServer::start(backend).await;
    let (alice, bob, room_id) = alice_and_bob_in_a_room(&hs).await;
    let mut ws = connect(&hs, &bob, "").await;
    let position = next_batch(&ws.next().await);
    let device = bob.device_id.clone().expect("a device");
    let messages = json!({ "messages": { bob.me(): { device: { "n": 1 } } } });
    alice.put("/_matrix/client/v3/sendToDevice/m.test/t1", messages).await.expect_status(200);
    let carries_to_device = |f: &Value| f["to_device"]["events"].as_array().is_some_and(|e| !e.is_empty());
    ws.until("the to-device message", carries_to_device).await;
    ws.0.close(None).await.expect("closing");

    // Never acknowledged: resuming from before it delivers it again.
    let mut ws = connect(&hs, &bob, &format!("since={}", enc(&position))).await;
    let again = ws.until("the to-device message again", carries_to_device).await.pop().expect("a frame");
    assert_eq!(again["to_device"]["events"][0]["content"]["n"], 1);

    // Acknowledged: the socket goes on, and the message is not sent again.
    ws.send(json!({ "type": "ack", "next_batch": next_batch(&again) })).await;
    alice.send_text(&room_id, "after the ack").await;
    let frame = ws.until("the message", |f| !timeline(f, &room_id).is_empty()).await.pop().expect("a frame");
    assert_eq!(bodies(timeline(&frame, &room_id)), ["after the ack"]);
    assert!(!carries_to_device(&frame), "{frame}");
});

scenario!(rt_2_a_message_moves_sent_delivered_read_also_for_a_sync_client, |backend| {
    let hs = TestServer::start_with(backend, |config| {
        // As `receipts = "all"` in config.toml.
        config.delivery.receipts = serde_json::from_value(json!("all")).expect("a delivery setting");
    })
    .await;
    let (alice, bob, room_id) = alice_and_bob_in_a_room(&hs).await;
    let carol = hs.client().register("carol", "passw0rd!").await;
    carol.join_room(&room_id).await;
    let carol_since = next_batch(&carol.sync(None, None, 0).await);
    let mut ws = connect(&hs, &alice, "format=simple").await;
    ws.batch().await;
    let since = next_batch(&bob.sync(None, None, 0).await);

    let send = json!({ "type": "send_message", "conversation_id": room_id, "content": "ping?" });
    let message_id = ws.ask(send).await["message_id"].as_str().expect("message_id").to_owned();
    let status =
        |wanted: &'static str| move |f: &Value| f["type"] == "message_status" && f["status"] == wanted;
    ws.until("sent", status("sent")).await;
    // Bob's client receives it, and acknowledges that response with its next request.
    let response = bob.sync(Some(&since), None, 10_000).await;
    assert_eq!(bodies(timeline(&response, &room_id)), ["ping?"]);
    let acked = next_batch(&bob.sync(Some(&next_batch(&response)), None, 0).await);
    let delivered = ws.until("delivered", status("delivered")).await.pop().expect("a frame");
    assert_eq!((&delivered["message_id"], &delivered["user_id"]), (&json!(message_id), &json!(bob.me())));
    // Delivery is the sender's business: neither another member's sync nor bob's own carries it.
    for (who, seen) in [
        ("carol", carol.sync(Some(&carol_since), None, 0).await),
        ("bob", bob.sync(Some(&acked), None, 0).await),
    ] {
        let receipts: Vec<&Value> =
            ephemeral(&seen, &room_id).iter().filter(|e| e["type"] == "m.receipt").collect();
        assert!(
            receipts.iter().all(|r| r["content"][&message_id]["io.hearth.delivered"].is_null()),
            "{who} sees {receipts:?}"
        );
    }

    let receipt = format!("/_matrix/client/v3/rooms/{}/receipt/m.read/{}", enc(&room_id), enc(&message_id));
    bob.post(&receipt, json!({})).await.expect_status(200);
    let read = ws.until("read", status("read")).await.pop().expect("a frame");
    assert_eq!((&read["message_id"], &read["user_id"]), (&json!(message_id), &json!(bob.me())));
});

scenario!(rt_1_sockets_are_closed_with_1001_when_the_server_stops, |backend| {
    let hs = TestServer::start(backend).await;
    let bob = hs.client().register("bob", "passw0rd!").await;
    let mut ws = connect(&hs, &bob, "format=simple").await;
    ws.batch().await;

    let ((), code) = tokio::join!(hs.stop(), ws.close_code());
    assert_eq!(code, CloseCode::Away);
});
