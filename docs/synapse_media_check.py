"""Remote media both ways between Hearth and Synapse: upload on one, download through the other's
authenticated media API (usage: synapse_media_check.py HEARTH_CLIENT_URL SYNAPSE_CLIENT_URL)."""
import json, sys, urllib.request, random
def call(base, method, path, body=None, token=None, raw=None, ctype="application/json"):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("Content-Type", ctype)
    if token: req.add_header("Authorization", "Bearer " + token)
    with urllib.request.urlopen(req, timeout=30) as r:
        b = r.read()
        return b if raw is not None or path.startswith("/_matrix/client/v1/media/download") else json.loads(b)
def register(base):
    name = "m%06d" % random.randrange(10**6)
    try:
        r = call(base, "POST", "/_matrix/client/v3/register", {"username": name, "password": "passw0rd!pass", "auth": {"type": "m.login.dummy"}})
    except urllib.error.HTTPError as e:
        sess = json.loads(e.read())["session"]
        r = call(base, "POST", "/_matrix/client/v3/register", {"username": name, "password": "passw0rd!pass", "auth": {"type": "m.login.dummy", "session": sess}})
    return r["access_token"]
H, S = sys.argv[1], sys.argv[2]
th, ts = register(H), register(S)
for (up, up_t, down, down_t, label) in ((S, ts, H, th, "Synapse -> Hearth"), (H, th, S, ts, "Hearth -> Synapse")):
    payload = ("media %s %d" % (label, random.randrange(10**9))).encode()
    mxc = call(up, "POST", "/_matrix/media/v3/upload?filename=a.txt", token=up_t, raw=payload, ctype="text/plain")
    mxc = json.loads(mxc)["content_uri"]
    server, media_id = mxc[len("mxc://"):].split("/", 1)
    got = call(down, "GET", "/_matrix/client/v1/media/download/%s/%s" % (server, media_id), token=down_t)
    print("ok  " if got == payload else "FAIL", label, mxc, len(got), "bytes")
