#!/usr/bin/env python3
"""What idle WebSockets cost a running Hearth (docs/BENCHMARKS.md › WebSocket channel).

Registers USERS users (shared-secret admin API, so the server's registration_shared_secret is
needed), puts them all in one room and sets them online. Then opens SOCKETS WebSockets on /_hearth/client/v1/ws,
spread over the users (?format=simple, the token in the query string), in two halves, reading
the server's resident memory (VmRSS of --pid) before, after each half (once idle), and after
closing them all. Each socket reads its first batch (an initial sync), or with --resume starts
from a current sync token, as a reconnecting client does, and gets nothing. The second half's
growth per socket is the figure: the first half also pays for warming caches and allocator
arenas. Standard library only; the handshake is written by hand.

    python3 docs/ws_idle_sockets.py --url http://127.0.0.1:18448 --secret S --pid PID \
        --users 200 --sockets 5000

It sends nothing but the handshake and stays idle for less than two ping intervals, so the
server keeps every socket open.
"""

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import time
import urllib.request


def call(url, method, path, body=None, token=None):
    request = urllib.request.Request(url + path, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", "Bearer " + token)
    data = json.dumps(body).encode() if body is not None else None
    with urllib.request.urlopen(request, data) as response:
        return json.loads(response.read())


def register(url, secret, name):
    nonce = call(url, "GET", "/_synapse/admin/v1/register")["nonce"]
    password = "passw0rd!"
    mac = hmac.new(secret.encode(), digestmod=hashlib.sha1)
    mac.update(b"\0".join([nonce.encode(), name.encode(), password.encode(), b"notadmin"]))
    body = {"nonce": nonce, "username": name, "password": password, "admin": False, "mac": mac.hexdigest()}
    return call(url, "POST", "/_synapse/admin/v1/register", body)["access_token"]


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def read_frame(reader):
    """One server frame (servers do not mask); its opcode and payload."""
    head = await reader.readexactly(2)
    length = head[1] & 0x7F
    if length == 126:
        length = int.from_bytes(await reader.readexactly(2), "big")
    elif length == 127:
        length = int.from_bytes(await reader.readexactly(8), "big")
    return head[0] & 0x0F, await reader.readexactly(length)


async def open_socket(host, port, token, since):
    reader, writer = await asyncio.open_connection(host, port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            f"GET /_hearth/client/v1/ws?format=simple&access_token={token}{since} HTTP/1.1\r\n"
            f"Host: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    status = await reader.readuntil(b"\r\n\r\n")
    if not status.startswith(b"HTTP/1.1 101"):
        raise RuntimeError(status.decode(errors="replace"))
    # The first batch ends with its position frame; a resumed socket has nothing new.
    while not since:
        opcode, payload = await read_frame(reader)
        if opcode == 1 and json.loads(payload).get("type") == "position":
            break
    return reader, writer


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--sockets", type=int, default=5000)
    parser.add_argument("--idle-seconds", type=float, default=10)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args()
    host, port = args.url.removeprefix("http://").split(":")
    prefix = f"ws{int(time.time())}"

    tokens = [register(args.url, args.secret, f"{prefix}_{i}") for i in range(args.users)]
    room = call(args.url, "POST", "/_matrix/client/v3/createRoom", {"preset": "public_chat"}, tokens[0])["room_id"]
    for token in tokens[1:]:
        call(args.url, "POST", f"/_matrix/client/v3/join/{room}", {}, token)
    # Online before the sockets open, so opening them changes nobody's presence (each change
    # would wake every socket sharing the room, and the figure would measure that storm).
    for token in tokens:
        call(args.url, "GET", "/_matrix/client/v3/sync?timeout=0&set_presence=online", None, token)
    since = ""
    if args.resume:
        since = "&since=" + call(args.url, "GET", "/_matrix/client/v3/sync?timeout=0", None, tokens[0])["next_batch"]
    await asyncio.sleep(1)
    before = rss_kib(args.pid)

    started = time.monotonic()
    sockets = []
    half = args.sockets // 2
    rss = []
    for first, last in [(0, half), (half, args.sockets)]:
        for batch in range(first, last, 100):
            count = min(100, last - batch)
            opened = [open_socket(host, port, tokens[(batch + i) % len(tokens)], since) for i in range(count)]
            sockets.extend(await asyncio.gather(*opened))
        await asyncio.sleep(args.idle_seconds)
        rss.append(rss_kib(args.pid))
    opened_in = time.monotonic() - started

    for _, writer in sockets:
        writer.close()
    await asyncio.sleep(3)
    after = rss_kib(args.pid)
    print(
        json.dumps(
            {
                "users": args.users,
                "sockets": args.sockets,
                "resume": args.resume,
                "opened_in_s": round(opened_in, 2),
                "rss_kib": {"before": before, "first_half": rss[0], "all": rss[1], "after_close": after},
                "bytes_per_socket_first_half": round((rss[0] - before) * 1024 / half),
                "bytes_per_socket_second_half": round((rss[1] - rss[0]) * 1024 / (args.sockets - half)),
            }
        )
    )


asyncio.run(main())
