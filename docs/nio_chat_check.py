"""Two matrix-nio clients chat through Hearth: messages, typing and read receipts arrive live."""
import asyncio, sys, time
from nio import AsyncClient, RoomMessageText, TypingNoticeEvent, ReceiptEvent, InviteMemberEvent

HS = sys.argv[1]

async def main():
    alice, bob = AsyncClient(HS, "alice"), AsyncClient(HS, "bob")
    for c, name in ((alice, "alice"), (bob, "bob")):
        r = await c.register(name, "passw0rd!")
        assert c.access_token, r
    room = (await alice.room_create(name="nio chat", invite=[bob.user_id])).room_id
    await bob.sync(timeout=0)
    assert room in bob.invited_rooms, "bob sees the invite"
    await bob.join(room)
    await alice.sync(timeout=0)
    await bob.sync(timeout=0)
    seen = {"msg": None, "typing": None, "receipt": None}
    bob.add_event_callback(lambda r, e: seen.__setitem__("msg", e.body), RoomMessageText)
    bob.add_ephemeral_callback(lambda r, e: seen.__setitem__("typing", e.users) if e.users else None, TypingNoticeEvent)
    alice.add_ephemeral_callback(lambda r, e: seen.__setitem__("receipt", e.receipts) if e.receipts else None, ReceiptEvent)

    async def bob_sync():
        return await bob.sync(timeout=10000)
    t = time.monotonic()
    poll = asyncio.create_task(bob_sync())
    await asyncio.sleep(0.2)
    await alice.room_typing(room, True, timeout=10000)
    await poll
    print("typing seen by bob:", seen["typing"], f"{(time.monotonic()-t)*1000:.0f} ms")
    poll = asyncio.create_task(bob_sync())
    await asyncio.sleep(0.2)
    t = time.monotonic()
    sent = await alice.room_send(room, "m.room.message", {"msgtype": "m.text", "body": "hello bob"})
    await poll
    print("message seen by bob:", seen["msg"], f"{(time.monotonic()-t)*1000:.0f} ms after send")
    await alice.sync(timeout=0)  # catch up on her own typing and message first
    poll = asyncio.create_task(alice.sync(timeout=10000))
    await asyncio.sleep(0.2)
    t = time.monotonic()
    await bob.room_read_markers(room, sent.event_id, sent.event_id)
    await poll
    print(f"receipt wait {(time.monotonic()-t)*1000:.0f} ms")
    print("receipt seen by alice:", bool(seen["receipt"]))
    assert seen["msg"] == "hello bob" and seen["typing"] and seen["receipt"]
    for c in (alice, bob):
        await c.close()
    print("OK")

asyncio.run(main())
