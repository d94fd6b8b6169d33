// Hearth web chat. Logs in with a password (the Matrix login), lists and creates conversations
// through the REST facade (/api/v1, docs/hearth-api-v1.openapi.yaml), and talks over the
// WebSocket channel (/_hearth/client/v1/ws, docs/WEBSOCKET.md): messages are sent as
// `send_message` frames, arrive as `new_message` frames, and the ticks of one's own messages
// follow the `message_status` frames: ✓ sent, ✓✓ delivered, blue ✓✓ read.
"use strict";

const TICKS = { sending: "…", sent: "✓", delivered: "✓✓", read: "✓✓" };
const RANK = { sending: 0, sent: 1, delivered: 2, read: 3 };

const state = {
  homeserver: "",
  token: "",
  me: "",
  socket: null,
  since: null, // the last `next_batch`: a reconnect resumes there
  current: null, // the open conversation's ID
  conversations: new Map(), // conversation ID → { membership, name }
  messages: new Map(), // conversation ID → Map(message ID → message)
  statuses: new Map(), // own message ID → { status, history: [status…] }
  pending: new Map(), // request_id → { resolve, reject }
  nextRequest: 1,
};

const $ = (id) => document.getElementById(id);

function showError(error) {
  $("error").textContent = error ? String(error.message || error) : "";
}

// --- HTTP ---------------------------------------------------------------------------------

async function call(method, path, body) {
  const headers = { "Content-Type": "application/json" };
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  const response = await fetch(state.homeserver + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(`${json.errcode || response.status}: ${json.error || ""}`);
  return json;
}

async function login(event) {
  event.preventDefault();
  showError(null);
  state.homeserver = $("homeserver").value.replace(/\/+$/, "");
  try {
    const session = await call("POST", "/_matrix/client/v3/login", {
      type: "m.login.password",
      identifier: { type: "m.id.user", user: $("username").value },
      password: $("password").value,
      initial_device_display_name: "Hearth web chat",
    });
    state.token = session.access_token;
    state.me = session.user_id;
    $("me").textContent = state.me;
    $("login").hidden = true;
    $("chat").hidden = false;
    connect();
    await loadConversations();
  } catch (error) {
    showError(error);
  }
}

async function loadConversations() {
  const { conversations } = await call("GET", `/api/v1/users/${encodeURIComponent(state.me)}/conversations`);
  state.conversations = new Map(conversations.map((c) => [c.conversation_id, c]));
  renderConversations();
}

async function createConversation(event) {
  event.preventDefault();
  showError(null);
  try {
    const participant = $("participant").value.trim();
    const created = await call("POST", "/api/v1/conversations", {
      type: "direct",
      participants: [participant],
      name: `${state.me} & ${participant}`,
    });
    $("participant").value = "";
    await loadConversations();
    await open(created.conversation_id);
  } catch (error) {
    showError(error);
  }
}

// --- The WebSocket ------------------------------------------------------------------------

function connect() {
  const url = new URL(state.homeserver.replace(/^http/, "ws") + "/_hearth/client/v1/ws");
  url.searchParams.set("format", "both");
  url.searchParams.set("access_token", state.token);
  if (state.since) url.searchParams.set("since", state.since);
  const socket = new WebSocket(url);
  state.socket = socket;
  socket.onopen = () => setConnection("online");
  socket.onmessage = (event) => receive(JSON.parse(event.data));
  socket.onclose = (event) => {
    setConnection("offline");
    for (const { reject } of state.pending.values()) reject(new Error("disconnected"));
    state.pending.clear();
    // 4001: the token was revoked; anything else: come back where we left off.
    if (event.code !== 4001) setTimeout(connect, 1000);
  };
}

function setConnection(connection) {
  $("connection").dataset.state = connection;
  $("connection").textContent = connection;
}

/** Sends a command frame; resolves with its `result`, rejects with its `error`. */
function ask(frame) {
  return new Promise((resolve, reject) => {
    const request_id = `web-${Date.now()}-${state.nextRequest++}`;
    if (!state.socket || state.socket.readyState !== WebSocket.OPEN) {
      reject(new Error("not connected"));
      return;
    }
    state.pending.set(request_id, { resolve, reject });
    state.socket.send(JSON.stringify({ ...frame, request_id }));
  });
}

function receive(frame) {
  switch (frame.type) {
    case "new_message":
      addMessage(frame);
      break;
    case "message_status":
      setStatus(frame.message_id, frame.status);
      break;
    case "typing_update":
      if (frame.conversation_id === state.current) {
        $("typing").textContent = frame.is_typing ? `${frame.user_id} is typing…` : "";
      }
      break;
    case "sync":
      state.since = frame.next_batch;
      // Invites and newly joined rooms change the list of conversations.
      if (frame.rooms && (hasKeys(frame.rooms.invite) || hasKeys(frame.rooms.leave) || newRooms(frame.rooms.join))) {
        loadConversations().catch(showError);
      }
      break;
    case "result":
    case "error": {
      const waiting = state.pending.get(frame.request_id);
      state.pending.delete(frame.request_id);
      if (!waiting) break;
      if (frame.type === "result") waiting.resolve(frame);
      else waiting.reject(new Error(`${frame.errcode}: ${frame.error}`));
      break;
    }
    default:
      break;
  }
}

const hasKeys = (object) => object && Object.keys(object).length > 0;
const newRooms = (joined) => Object.keys(joined || {}).some((id) => state.conversations.get(id)?.membership !== "join");

// --- Messages -----------------------------------------------------------------------------

function messagesOf(conversationId) {
  if (!state.messages.has(conversationId)) state.messages.set(conversationId, new Map());
  return state.messages.get(conversationId);
}

function addMessage(message) {
  messagesOf(message.conversation_id).set(message.message_id, message);
  if (message.sender === state.me) {
    setStatus(message.message_id, "sent");
  }
  if (message.conversation_id === state.current) {
    renderMessages();
    if (message.sender !== state.me) markRead(message);
  } else {
    const item = document.querySelector(`#conversations li[data-id="${CSS.escape(message.conversation_id)}"]`);
    if (item) item.classList.add("unread");
  }
}

function setStatus(messageId, status) {
  const known = state.statuses.get(messageId) || { status: "sending", history: [] };
  // Frames may repeat a status (a resumed socket) or come late: ticks only move forward.
  if (RANK[status] > RANK[known.status]) {
    known.status = status;
    known.history.push(status);
  }
  state.statuses.set(messageId, known);
  const tick = document.querySelector(`#messages li[data-id="${CSS.escape(messageId)}"] .tick`);
  if (tick) paintTick(tick, known);
}

function paintTick(tick, known) {
  tick.dataset.status = known.status;
  tick.dataset.history = known.history.join(" ");
  tick.textContent = TICKS[known.status];
  tick.title = known.status;
}

function markRead(message) {
  ask({ type: "read_receipt", message_id: message.message_id, conversation_id: message.conversation_id }).catch(
    showError,
  );
}

async function open(conversationId) {
  state.current = conversationId;
  const conversation = state.conversations.get(conversationId);
  $("title").textContent = (conversation && conversation.name) || conversationId;
  $("typing").textContent = "";
  try {
    if (conversation && conversation.membership === "invite") {
      await ask({ type: "join_conversation", conversation_id: conversationId });
      await loadConversations();
    }
    const path = `/api/v1/conversations/${encodeURIComponent(conversationId)}/messages?limit=50`;
    const page = await call("GET", path);
    for (const message of page.messages) {
      messagesOf(conversationId).set(message.message_id, message);
      if (message.sender === state.me && !state.statuses.has(message.message_id)) setStatus(message.message_id, "sent");
    }
    $("text").disabled = false;
    $("send").disabled = false;
    renderConversations();
    renderMessages();
    const last = page.messages.find((m) => m.sender !== state.me);
    if (last) markRead(last);
  } catch (error) {
    showError(error);
  }
}

async function send(event) {
  event.preventDefault();
  const text = $("text").value;
  if (!text || !state.current) return;
  $("text").value = "";
  try {
    const result = await ask({ type: "send_message", conversation_id: state.current, content: text });
    // The `new_message` frame usually comes after the result; until then it shows as sending.
    if (!messagesOf(state.current).has(result.message_id)) {
      messagesOf(state.current).set(result.message_id, {
        message_id: result.message_id,
        conversation_id: state.current,
        sender: state.me,
        content: { msgtype: "m.text", body: text },
        timestamp: Date.now(),
      });
      renderMessages();
    }
  } catch (error) {
    $("text").value = text;
    showError(error);
  }
}

// --- Rendering ----------------------------------------------------------------------------

function renderConversations() {
  const list = $("conversations");
  list.replaceChildren();
  for (const [id, conversation] of state.conversations) {
    const item = document.createElement("li");
    item.dataset.id = id;
    item.dataset.membership = conversation.membership;
    item.textContent = (conversation.name || id) + (conversation.membership === "invite" ? " (invited)" : "");
    if (id === state.current) item.classList.add("current");
    item.onclick = () => open(id);
    list.append(item);
  }
}

function renderMessages() {
  const list = $("messages");
  const messages = [...messagesOf(state.current).values()].sort((a, b) => a.timestamp - b.timestamp);
  list.replaceChildren();
  for (const message of messages) {
    const own = message.sender === state.me;
    const item = document.createElement("li");
    item.dataset.id = message.message_id;
    item.classList.toggle("own", own);
    const sender = document.createElement("span");
    sender.className = "sender";
    sender.textContent = message.sender;
    const body = document.createElement("span");
    body.className = "body";
    body.textContent = message.content.body ?? "(no text)";
    item.append(sender, body);
    if (own) {
      const tick = document.createElement("span");
      tick.className = "tick";
      paintTick(tick, state.statuses.get(message.message_id) || { status: "sending", history: [] });
      item.append(tick);
    }
    list.append(item);
  }
  list.scrollTop = list.scrollHeight;
}

// --- Start --------------------------------------------------------------------------------

$("homeserver").value = new URLSearchParams(location.search).get("homeserver") || location.origin;
$("login").onsubmit = login;
$("new-conversation").onsubmit = createConversation;
$("composer").onsubmit = send;
