//! The outbound federation client: signed requests between two Hearth servers, the remote's
//! errors passed on, transport failures told apart, private addresses refused by default.

use hearth_complement_tests::{
    Client, Cluster, FakePeer, TestServer, client::enc, federation::enable_federation, scenario,
};
use hearth_federation::FedError;
use ruma::{
    OwnedServerName, OwnedUserId,
    api::{error::ErrorKind, federation::query::get_profile_information::v1 as profile_query},
};
use serde_json::json;

fn server(name: &str) -> OwnedServerName {
    OwnedServerName::try_from(name).expect("a server name")
}

fn user(id: &str) -> OwnedUserId {
    OwnedUserId::try_from(id).expect("a user ID")
}

/// `@bob` on `hs`, display name "Bob".
async fn bob_named_bob(hs: &TestServer) -> Client {
    let bob = hs.client().register("bob", "password1234").await;
    let path = format!("/_matrix/client/v3/profile/{}/displayname", enc(bob.me()));
    bob.put(&path, json!({"displayname": "Bob"})).await.expect_status(200);
    bob
}

scenario!(a_server_asks_another_for_a_profile_with_a_signed_request, |backend| {
    let servers = Cluster::start(backend, 2).await;
    let (hs1, hs2) = (&servers[0], &servers[1]);
    let bob = bob_named_bob(hs2).await;

    let client = hs1.federation().client();
    let found = client
        .send(&server(&hs2.server_name), profile_query::Request::new(user(bob.me())))
        .await
        .expect("hs2 answers hs1's signed request");
    assert_eq!(found.get("displayname"), Some(&json!("Bob")));

    let missing = client
        .send(&server(&hs2.server_name), profile_query::Request::new(user(&hs2.user_id("ghost"))))
        .await
        .expect_err("no such user");
    assert_eq!(missing.status().map(|s| s.as_u16()), Some(404), "{missing}");
    assert_eq!(missing.kind(), Some(&ErrorKind::NotFound), "{missing}");
    assert!(!missing.is_transport(), "a 404 is not worth retrying");
});

scenario!(requests_to_a_server_that_does_not_listen_are_transport_failures, |backend| {
    let mut hs = TestServer::start_with(backend, enable_federation).await;
    hs.add_federation_peer("down.test", "https://127.0.0.1:1");
    let failed = hs
        .federation()
        .client()
        .send(&server("down.test"), profile_query::Request::new(user("@x:down.test")))
        .await
        .expect_err("nothing listens");
    assert!(failed.is_transport(), "{failed}");
    assert!(matches!(failed, FedError::Transport { .. }), "{failed}");
});

scenario!(private_addresses_are_refused_unless_allowed, |backend| {
    let peer = FakePeer::start().await;
    let port = peer.url.rsplit(':').next().expect("a port").to_owned();
    let hs = TestServer::start_with(backend, |config| {
        enable_federation(config);
        config.federation.allow_private_addresses = false;
    })
    .await;
    let loopback = server(&format!("127.0.0.1:{port}"));
    let refused = hs
        .federation()
        .client()
        .send(&loopback, profile_query::Request::new(user(&format!("@x:127.0.0.1:{port}"))))
        .await
        .expect_err("loopback is private");
    assert!(matches!(refused, FedError::Invalid { .. }), "{refused}");
    assert!(peer.requests().is_empty(), "nothing reached the peer");
});

scenario!(a_client_reads_the_profile_of_a_user_on_another_server, |backend| {
    let mut servers = Cluster::start(backend, 2).await;
    servers[0].add_federation_peer("down.test", "https://127.0.0.1:1");
    let (hs1, hs2) = (&servers[0], &servers[1]);
    let bob = bob_named_bob(hs2).await;
    let alice = hs1.client().register("alice", "password1234").await;

    let profile = alice.get(&format!("/_matrix/client/v3/profile/{}", enc(bob.me()))).await;
    assert_eq!(profile.expect_status(200)["displayname"], "Bob");
    let name = alice.get(&format!("/_matrix/client/v3/profile/{}/displayname", enc(bob.me()))).await;
    assert_eq!(name.expect_status(200)["displayname"], "Bob");

    let ghost = hs2.user_id("ghost");
    alice.get(&format!("/_matrix/client/v3/profile/{}", enc(&ghost))).await.expect_error(404, "M_NOT_FOUND");
    let down = alice.get(&format!("/_matrix/client/v3/profile/{}", enc("@x:down.test"))).await;
    assert_eq!(down.status, 502, "{}", down.body);
});

scenario!(a_client_resolves_an_alias_of_another_server, |backend| {
    let servers = Cluster::start(backend, 2).await;
    let (hs1, hs2) = (&servers[0], &servers[1]);
    let bob = hs2.client().register("bob", "password1234").await;
    let room_id = bob.create_room(json!({"room_alias_name": "lobby"})).await;
    let alias = format!("#lobby:{}", hs2.server_name);
    let alice = hs1.client().register("alice", "password1234").await;

    let found = alice.get(&format!("/_matrix/client/v3/directory/room/{}", enc(&alias))).await;
    let found = found.expect_status(200);
    assert_eq!(found["room_id"], room_id);
    assert_eq!(found["servers"], json!([hs2.server_name]));

    let unknown = format!("#nowhere:{}", hs2.server_name);
    alice
        .get(&format!("/_matrix/client/v3/directory/room/{}", enc(&unknown)))
        .await
        .expect_error(404, "M_NOT_FOUND");
});

scenario!(a_client_browses_the_room_directory_of_another_server, |backend| {
    let servers = Cluster::start(backend, 2).await;
    let (hs1, hs2) = (&servers[0], &servers[1]);
    let bob = hs2.client().register("bob", "password1234").await;
    let public = bob
        .create_room(json!({"visibility": "public", "name": "Bob's lounge", "preset": "public_chat"}))
        .await;
    bob.create_room(json!({"visibility": "private", "name": "Bob's den"})).await;
    let alice = hs1.client().register("alice", "password1234").await;

    let listed = alice.get(&format!("/_matrix/client/v3/publicRooms?server={}", hs2.server_name)).await;
    let listed = listed.expect_status(200);
    let rooms = listed["chunk"].as_array().expect("chunk");
    assert_eq!(rooms.len(), 1, "{listed}");
    assert_eq!(rooms[0]["room_id"], public);
    assert_eq!(rooms[0]["name"], "Bob's lounge");

    let searched = alice
        .post(
            &format!("/_matrix/client/v3/publicRooms?server={}", hs2.server_name),
            json!({"filter": {"generic_search_term": "nothing like it"}}),
        )
        .await;
    assert_eq!(searched.expect_status(200)["chunk"], json!([]));
    // Our own directory does not list the other server's rooms.
    let ours = alice.get("/_matrix/client/v3/publicRooms").await;
    assert_eq!(ours.expect_status(200)["chunk"], json!([]));
});
