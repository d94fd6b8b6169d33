"""Two matrix-nio E2EE clients exchange encrypted messages through Hearth and read the plaintext.

Covers, against a running server: key upload/query/claim, an encrypted room (m.megolm.v1.aes-sha2)
with a message each way decrypted, one-time key counts, emoji (SAS) verification and a forwarded
room key over to-device messages, a second device found through device_lists.changed, nio's own
long-polling sync loop, logout removing a device's keys, device_lists.left. Exits non-zero on any
failure. Key backup and cross-signing are not covered: nio does not implement them.

Setup (matrix-nio 0.26's `e2e` extra uses vodozemac wheels: no libolm, no compiler):
    python3 -m venv /work/nio-e2e/venv
    /work/nio-e2e/venv/bin/pip install 'matrix-nio[e2e]'
Run (each run registers new users, so one server serves many runs):
    mkdir -p /tmp/hearth-e2ee
    sed -e 's#127.0.0.1:8008#127.0.0.1:8131#g' -e 's#sqlite://data/hearth.db#sqlite:///tmp/hearth-e2ee/hearth.db#' \
        -e 's#^data_dir = "data"#data_dir = "/tmp/hearth-e2ee"#' config.toml > /tmp/hearth-e2ee/config.toml
    HEARTH__RATE_LIMITS__ENABLED=false cargo run -- --config /tmp/hearth-e2ee/config.toml serve &
    /work/nio-e2e/venv/bin/python docs/nio_e2ee_check.py http://127.0.0.1:8131
(the same against a PostgreSQL-backed server, HEARTH__DATABASE__URL=postgres://..., passes too).
Server bug it found: a sync with nothing new sent the key counts as null, and nio rejected the
whole response (SyncError) — fixed, test in complement-tests/tests/e2ee_sync.rs.

Observed (SQLite, debug build):
    @alice-5ecae0:localhost device SVO2eSZD4y: keys uploaded, key wKcBdbChzlylNS8erETZUySyBh7X++Yc2S7r8+4OpBw
    @bob-5ecae0:localhost device aoHxC9Byxu: keys uploaded, key sEXMt5DSd6MHBLwHoUxcB9+N/JulhRowrxZW5BxhrMw
    @alice-5ecae0:localhost (SVO2eSZD4y) trusts @bob-5ecae0:localhost's device aoHxC9Byxu
    @bob-5ecae0:localhost (aoHxC9Byxu) trusts @alice-5ecae0:localhost's device SVO2eSZD4y
    bob's one-time keys: 50 uploaded, {'signed_curve25519': 49} left after alice's claim
    server stored for alice's message: m.room.encrypted m.megolm.v1.aes-sha2
    bob decrypted: 'hello bob, secretly' from @alice-5ecae0:localhost
    alice decrypted: 'hi alice, secretly' from @bob-5ecae0:localhost
    bob's new device cannot decrypt yet: 2 earlier messages
    @alice-5ecae0:localhost's sync device_lists.changed: ['@bob-5ecae0:localhost']
    @bob-5ecae0:localhost's sync device_lists.changed: ['@bob-5ecae0:localhost']
    SAS emoji match: 🐘 🔨 🐶 📎 🐢 🌳 🌙
    @alice-5ecae0:localhost and @bob-5ecae0:localhost's device n8qNaDH7JZ verified each other by SAS
    @bob-5ecae0:localhost (aoHxC9Byxu) trusts @bob-5ecae0:localhost's device n8qNaDH7JZ
    @bob-5ecae0:localhost (n8qNaDH7JZ) trusts @bob-5ecae0:localhost's device aoHxC9Byxu
    bob's device n8qNaDH7JZ decrypted with a forwarded key: 'hello bob, secretly'
    bob's device aoHxC9Byxu decrypted: 'to both of you'
    bob's device n8qNaDH7JZ decrypted: 'to both of you'
    bob's sync loop decrypted a live message 30 ms after the send
    after logout alice sees bob's devices: ['aoHxC9Byxu']
    alice's sync device_lists.left: ['@bob-5ecae0:localhost']
    OK
"""
import asyncio, json, logging, secrets, sys, tempfile, time
from nio import AsyncClient, AsyncClientConfig, ErrorResponse, MegolmEvent, RoomMessageText

HS = sys.argv[1]
# nio warns about what the check provokes on purpose (history a new device cannot read yet, a
# device answering its own key request); failures surface as assertions.
logging.getLogger("nio").setLevel(logging.ERROR)


def ok(resp):
    """Fail loudly on a Matrix error response."""
    assert not isinstance(resp, ErrorResponse), resp
    return resp


async def sync(c):
    """One sync that does not wait (incremental after the first). Unlike nio's `sync_forever`,
    it leaves key upload, query and claim to the caller."""
    return ok(await c.sync(timeout=0))


async def read_plaintext(c, room, want):
    """Sync until `want` arrives decrypted in `room`; undecryptable events fail the check."""
    got = []
    def on_text(r, e):
        if r.room_id == room and e.decrypted:
            got.append(e)
    def on_undecrypted(r, e):
        raise AssertionError(f"{c.user_id} could not decrypt {e.event_id}: {e}")
    c.add_event_callback(on_text, RoomMessageText)
    c.add_event_callback(on_undecrypted, MegolmEvent)
    for _ in range(10):
        ok(await c.sync(timeout=2000))
        if any(e.body == want for e in got):
            break
    c.event_callbacks.clear()
    event = next((e for e in got if e.body == want), None)
    assert event and event.decrypted and event.verified, f"{c.user_id} did not read {want!r}: {got}"
    return event


async def trust_keys(me, other):
    """`me` queries the keys of `other`'s device (as the sync loop would) and checks they are the
    ones that device holds; returns nio's record of the device."""
    if me.should_query_keys:
        ok(await me.keys_query())
    device = me.device_store[other.user_id][other.device_id]
    assert device.ed25519 == other.olm.account.identity_keys["ed25519"], "keys match the owner's"
    return device


async def trust(me, other):
    """`me` checks `other`'s device keys and verifies the device (out of band)."""
    me.verify_device(await trust_keys(me, other))
    print(f"{me.user_id} ({me.device_id}) trusts {other.user_id}'s device {other.device_id}")


async def sas_verify(a, b):
    """Interactive emoji verification between `a` and `b`'s device, all over to-device messages."""
    await trust_keys(a, b)
    await trust_keys(b, a)
    ok(await a.start_key_verification(a.device_store[b.user_id][b.device_id]))
    tx = a.get_active_sas(b.user_id, b.device_id).transaction_id
    await sync(b)  # m.key.verification.start
    ok(await b.accept_key_verification(tx))
    await sync(a)  # accept: a queues its key
    await a.send_to_device_messages()
    await sync(b)  # a's key: b queues its own
    await b.send_to_device_messages()
    await sync(a)  # b's key
    emoji = [c.key_verifications[tx].get_emoji() for c in (a, b)]
    assert emoji[0] == emoji[1], emoji
    print("SAS emoji match:", " ".join(e for e, _ in emoji[0]))
    for c in (a, b):
        ok(await c.confirm_short_auth_string(tx))
    for c, other in ((a, b), (b, a)):
        await sync(c)  # the other's MAC
        assert c.olm.is_device_verified(c.device_store[other.user_id][other.device_id]), c.user_id
    print(f"{a.user_id} and {b.user_id}'s device {b.device_id} verified each other by SAS")


async def main():
    stores = tempfile.TemporaryDirectory()
    config = AsyncClientConfig(encryption_enabled=True, store_sync_tokens=True)
    run = secrets.token_hex(3)  # fresh users on every run against the same server
    names = (f"alice-{run}", f"bob-{run}")
    alice, bob = (AsyncClient(HS, n, store_path=stores.name, config=config) for n in names)
    uploaded = {}
    for c, name in zip((alice, bob), names):
        ok(await c.register(name, "passw0rd!", device_name=f"{name}'s nio"))
        assert c.olm, "the E2EE store is loaded"
        uploaded[c] = ok(await c.keys_upload()).signed_curve25519_count
        print(f"{c.user_id} device {c.device_id}: keys uploaded, key {c.olm.account.identity_keys['ed25519']}")

    room = ok(await alice.room_create(
        name="nio e2ee", invite=[bob.user_id],
        initial_state=[{"type": "m.room.encryption", "state_key": "",
                        "content": {"algorithm": "m.megolm.v1.aes-sha2"}}])).room_id
    await sync(bob)
    assert room in bob.invited_rooms, "bob sees the invite"
    ok(await bob.join(room))
    await sync(alice)
    await sync(bob)
    assert alice.rooms[room].encrypted and bob.rooms[room].encrypted, "both see m.room.encryption"

    await trust(alice, bob)
    await trust(bob, alice)

    sent = ok(await alice.room_send(room, "m.room.message", {"msgtype": "m.text", "body": "hello bob, secretly"}))
    left = (await raw(bob, "POST", "/keys/upload", {}))["one_time_key_counts"]
    print(f"bob's one-time keys: {uploaded[bob]} uploaded, {left} left after alice's claim")
    assert left.get("signed_curve25519") == uploaded[bob] - 1, left
    raw_ev = await raw(bob, "GET", f"/rooms/{room}/event/{sent.event_id}")
    assert raw_ev["type"] == "m.room.encrypted" and "body" not in raw_ev["content"], "ciphertext only"
    print("server stored for alice's message:", raw_ev["type"], raw_ev["content"]["algorithm"])
    got = await read_plaintext(bob, room, "hello bob, secretly")
    print("bob decrypted:", repr(got.body), "from", got.sender)

    reply = ok(await bob.room_send(room, "m.room.message", {"msgtype": "m.text", "body": "hi alice, secretly"}))
    assert (await raw(alice, "GET", f"/rooms/{room}/event/{reply.event_id}"))["type"] == "m.room.encrypted"
    got = await read_plaintext(alice, room, "hi alice, secretly")
    print("alice decrypted:", repr(got.body), "from", got.sender)

    # Bob logs in a second device. Its first sync holds the earlier messages, which it cannot read.
    bob2 = AsyncClient(HS, names[1], store_path=stores.name, config=config)
    ok(await bob2.login("passw0rd!", device_name="bob's second nio"))
    ok(await bob2.keys_upload())
    locked = []
    bob2.add_event_callback(lambda r, e: locked.append(e), MegolmEvent)
    await sync(bob2)
    bob2.event_callbacks.clear()
    print("bob's new device cannot decrypt yet:", len(locked), "earlier messages")
    first = next((e for e in locked if e.event_id == sent.event_id), None)
    assert first, locked

    # Alice and bob learn of it from device_lists.changed; alice verifies it by emoji (SAS).
    for c in (alice, bob):
        changed = (await sync(c)).device_list.changed
        print(f"{c.user_id}'s sync device_lists.changed:", changed)
        assert bob.user_id in changed, changed
    await sas_verify(alice, bob2)

    # Bob's new device asks his devices (to-device to "*") for the missing key; his first device
    # trusts it and forwards the key, and the new device reads the old message.
    await trust(bob, bob2)
    await trust(bob2, bob)
    ok(await bob2.request_room_key(first))
    await sync(bob)  # the request; bob first needs an Olm session with his new device
    assert bob.should_claim_keys
    ok(await bob.keys_claim(bob.get_users_for_key_claiming()))
    # nio retries the pending request when the next sync brings news; nothing new is coming here.
    bob.olm.collect_key_requests()
    await bob.send_to_device_messages()
    await sync(bob2)
    got = bob2.decrypt_event(first)
    assert isinstance(got, RoomMessageText), got
    print(f"bob's device {bob2.device_id} decrypted with a forwarded key:", repr(got.body))

    # Alice's next message reaches both of bob's devices.
    ok(await alice.room_send(room, "m.room.message", {"msgtype": "m.text", "body": "to both of you"}))
    for c in (bob, bob2):
        got = await read_plaintext(c, room, "to both of you")
        print(f"bob's device {c.device_id} decrypted:", repr(got.body))

    # As clients really run: bob long-polls in nio's own sync loop and the next message, a fresh
    # room key sent to-device plus the encrypted event, wakes it up decrypted.
    live = asyncio.Event()
    bob.add_event_callback(lambda r, e: e.body == "live" and live.set(), RoomMessageText)
    loop = asyncio.create_task(bob.sync_forever(timeout=30000))
    await asyncio.sleep(0.5)
    alice.invalidate_outbound_session(room)  # a new megolm session, shared afresh
    started = time.monotonic()
    ok(await alice.room_send(room, "m.room.message", {"msgtype": "m.text", "body": "live"}))
    await asyncio.wait_for(live.wait(), 10)
    print(f"bob's sync loop decrypted a live message {(time.monotonic() - started) * 1000:.0f} ms after the send")
    loop.cancel()
    bob.event_callbacks.clear()

    # Bob signs his second device out: its keys go, and alice hears of it in device_lists.changed.
    ok(await bob2.logout())
    changed = (await sync(alice)).device_list.changed
    assert bob.user_id in changed, changed
    devices = (await raw(alice, "POST", "/keys/query", {"device_keys": {bob.user_id: []}}))["device_keys"]
    assert set(devices[bob.user_id]) == {bob.device_id}, devices
    print("after logout alice sees bob's devices:", sorted(devices[bob.user_id]))

    # Bob leaves: alice's sync lists him in device_lists.left, no encrypted room is shared any more.
    ok(await bob.room_leave(room))
    left = (await sync(alice)).device_list.left
    print("alice's sync device_lists.left:", left)
    assert bob.user_id in left, left

    for c in (alice, bob, bob2):
        await c.close()
    print("OK")


async def raw(c, method, path, body=None):
    """A Client-Server API call that bypasses nio's parsing (and decryption)."""
    resp = await c.send(method, f"/_matrix/client/v3{path}", None if body is None else json.dumps(body),
                        headers={"Authorization": f"Bearer {c.access_token}"})
    assert resp.status == 200, await resp.text()
    return await resp.json()


asyncio.run(main())
