#!/usr/bin/env python3
"""Hearth <-> Synapse rooms over federation, checked through both client APIs.

Both servers run on loopback with IP-literal server names (docs/FEDERATION.md). Steps, each
printed with its outcome: a Synapse user joins a room on Hearth and a Hearth user joins a room on
Synapse; in each room: messages both ways, an edit, a redaction, typing, a read receipt, presence,
profile look-ups, then leaves. Exits non-zero at the first step that fails.

  python3 docs/synapse_rooms_check.py HEARTH_CLIENT_URL SYNAPSE_CLIENT_URL
"""
import json, sys, time, uuid, urllib.request, urllib.error, urllib.parse

HEARTH, SYNAPSE = sys.argv[1], sys.argv[2]
DEADLINE = 30.0
FAILURES = []

def call(base, method, path, token=None, body=None):
    req = urllib.request.Request(base + path, method=method,
                                 data=None if body is None else json.dumps(body).encode())
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")

def ok(base, method, path, token=None, body=None):
    status, out = call(base, method, path, token, body)
    if status != 200:
        raise SystemExit(f"FAIL {method} {base}{path}: {status} {out}")
    return out

class User:
    def __init__(self, base, name):
        self.base = base
        out = ok(base, "POST", "/_matrix/client/v3/register",
                 body={"username": name, "password": "interop-password-1", "auth": {"type": "m.login.dummy"}})
        self.token, self.user_id = out["access_token"], out["user_id"]
        self.since = ok(base, "GET", "/_matrix/client/v3/sync?timeout=0", self.token)["next_batch"]

    def call(self, method, path, body=None):
        return ok(self.base, method, path, self.token, body)

    def send(self, room, content, kind="m.room.message"):
        q = urllib.parse.quote(room)
        return self.call("PUT", f"/_matrix/client/v3/rooms/{q}/send/{kind}/{uuid.uuid4().hex}", content)["event_id"]

    def wait(self, what, pred):
        """Syncs until pred(sync response) is truthy; returns its value."""
        end = time.time() + DEADLINE
        while time.time() < end:
            out = self.call("GET", f"/_matrix/client/v3/sync?timeout=5000&since={self.since}")
            self.since = out["next_batch"]
            found = pred(out)
            if found:
                return found
        raise SystemExit(f"FAIL {self.user_id} never saw {what}")

def timeline(out, room):
    return out.get("rooms", {}).get("join", {}).get(room, {}).get("timeline", {}).get("events", [])

def ephemeral(out, room):
    return out.get("rooms", {}).get("join", {}).get(room, {}).get("ephemeral", {}).get("events", [])

def step(name):
    print(f"ok   {name}", flush=True)

def exercise(host, guest, host_server):
    """host creates a room on its server; guest (other server) joins and both talk."""
    room = host.call("POST", "/_matrix/client/v3/createRoom",
                     {"preset": "public_chat", "name": f"interop {host_server}"})["room_id"]
    q = urllib.parse.quote(room)
    guest.call("POST", f"/_matrix/client/v3/join/{q}?server_name={urllib.parse.quote(host_server)}", {})
    step(f"{guest.user_id} joined {room} on {host_server}")
    host.wait("the guest's join", lambda o: any(e["type"] == "m.room.member" and e["state_key"] == guest.user_id
                                                and e["content"].get("membership") == "join" for e in timeline(o, room)))
    step("host saw the join")
    members = guest.call("GET", f"/_matrix/client/v3/rooms/{q}/joined_members")["joined"]
    assert host.user_id in members and guest.user_id in members, members
    step("guest sees both members")

    hello = host.send(room, {"msgtype": "m.text", "body": "hello from the host"})
    guest.wait("the host's message", lambda o: any(e["event_id"] == hello for e in timeline(o, room)))
    step("host -> guest message")
    reply = guest.send(room, {"msgtype": "m.text", "body": "hello from the guest"})
    host.wait("the guest's message", lambda o: any(e["event_id"] == reply for e in timeline(o, room)))
    step("guest -> host message")

    edit = host.send(room, {"msgtype": "m.text", "body": "* edited", "m.new_content": {"msgtype": "m.text", "body": "edited"},
                            "m.relates_to": {"rel_type": "m.replace", "event_id": hello}})
    guest.wait("the edit", lambda o: any(e["event_id"] == edit for e in timeline(o, room)))
    step("edit reached the guest")
    redaction = guest.call("PUT", f"/_matrix/client/v3/rooms/{q}/redact/{urllib.parse.quote(reply)}/{uuid.uuid4().hex}",
                           {"reason": "interop"})["event_id"]
    host.wait("the redaction", lambda o: any(e["event_id"] == redaction for e in timeline(o, room)))
    redacted = host.call("GET", f"/_matrix/client/v3/rooms/{q}/event/{urllib.parse.quote(reply)}")
    assert "body" not in redacted.get("content", {}), redacted
    step("redaction applied on the host")

    guest.call("PUT", f"/_matrix/client/v3/rooms/{q}/typing/{urllib.parse.quote(guest.user_id)}", {"typing": True, "timeout": 20000})
    host.wait("typing", lambda o: any(e["type"] == "m.typing" and guest.user_id in e["content"].get("user_ids", [])
                                      for e in ephemeral(o, room)))
    step("typing guest -> host")
    host.call("POST", f"/_matrix/client/v3/rooms/{q}/receipt/m.read/{urllib.parse.quote(reply)}", {})
    guest.wait("the read receipt", lambda o: any(e["type"] == "m.receipt" and reply in e["content"] for e in ephemeral(o, room)))
    step("read receipt host -> guest")

    profile = guest.call("GET", f"/_matrix/client/v3/profile/{urllib.parse.quote(host.user_id)}")
    step(f"guest looked up the host's profile: {profile}")
    host.call("PUT", f"/_matrix/client/v3/presence/{urllib.parse.quote(host.user_id)}/status", {"presence": "online", "status_msg": "interop"})
    try:
        guest.wait("presence", lambda o: any(e["sender"] == host.user_id for e in o.get("presence", {}).get("events", [])))
        step("presence host -> guest")
    except SystemExit as failure:
        FAILURES.append(str(failure))
        print(failure, flush=True)

    guest.call("POST", f"/_matrix/client/v3/rooms/{q}/leave", {})
    host.wait("the leave", lambda o: any(e["type"] == "m.room.member" and e["state_key"] == guest.user_id
                                         and e["content"].get("membership") == "leave" for e in timeline(o, room)))
    step("guest left; host saw it")

def main():
    tag = uuid.uuid4().hex[:6]
    h1, s1 = User(HEARTH, f"alice{tag}"), User(SYNAPSE, f"bob{tag}")
    hearth_server, synapse_server = h1.user_id.split(":", 1)[1], s1.user_id.split(":", 1)[1]
    print(f"== a Synapse user joins a room on Hearth ({hearth_server})")
    exercise(h1, s1, hearth_server)
    h2, s2 = User(HEARTH, f"carol{tag}"), User(SYNAPSE, f"dave{tag}")
    print(f"== a Hearth user joins a room on Synapse ({synapse_server})")
    exercise(s2, h2, synapse_server)
    if FAILURES:
        raise SystemExit(f"{len(FAILURES)} step(s) failed")
    print("all steps passed")

main()
