#!/usr/bin/env python3
"""Idle-connection memory probe (docs/BENCHMARKS.md, "Idle memory, taken apart"): opens N loopback
connections to a server in one of three modes and reports the server's RSS growth per connection. Modes: tcp (connect only), keepalive (one GET /versions then
idle), longpoll (a /sync with timeout that stays pending). Usage:
  python3 docs/idle_connections.py PORT PID MODE N [TOKEN] [SINCE]"""
import asyncio, sys

port, pid, mode, n = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
token = sys.argv[5] if len(sys.argv) > 5 else ""
since = sys.argv[6] if len(sys.argv) > 6 else ""

def rss_kb():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])

async def one(i, conns):
    r, w = await asyncio.open_connection("127.0.0.1", port)
    conns.append((r, w))
    if mode == "keepalive":
        w.write(b"GET /_matrix/client/versions HTTP/1.1\r\nHost: x\r\n\r\n")
        await w.drain()
        # read the response headers + body
        data = await r.read(65536)
    elif mode == "longpoll":
        w.write(f"GET /_matrix/client/v3/sync?timeout=600000&since={since} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n".encode())
        await w.drain()

async def main():
    conns = []
    before = rss_kb()
    sem = asyncio.Semaphore(200)
    async def guarded(i):
        async with sem:
            await one(i, conns)
    await asyncio.gather(*(guarded(i) for i in range(n)))
    # Let every request reach its waiting state: sample until the RSS stops growing (a loaded
    # machine may still be answering requests after a fixed pause), at most 30 s.
    await asyncio.sleep(3)
    after = rss_kb()
    for _ in range(30):
        await asyncio.sleep(1)
        now = rss_kb()
        if abs(now - after) * 1000 < after:
            break
        after = now
    after = rss_kb()
    print(f"mode={mode} n={n} rss_before={before}KB rss_after={after}KB per_conn={(after-before)*1024/n:.0f}B")
    for r, w in conns:
        w.close()

asyncio.run(main())
