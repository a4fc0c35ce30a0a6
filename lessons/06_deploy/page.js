// The chat page: one WebSocket to its own origin, resumed from the last message seen.
const room = new URLSearchParams(location.search).get("room") || "lobby";
const status = document.getElementById("status");
const log = document.getElementById("log");
const pending = new Map(); // cid -> text: sent, not yet acknowledged (sent again on reconnect)
let socket = null;
let lastId = null; // the stream id of the last message shown: where to resume
let attempt = 0;
let sent = 0;
document.getElementById("room").textContent = room;

// connect: the scheme follows the page's (https -> wss), the host is the page's own
function url() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const resume = lastId ? `?last=${encodeURIComponent(lastId)}` : "";
  return `${scheme}//${location.host}/ws/${room}${resume}`;
}

function connect() {
  socket = new WebSocket(url());
  socket.onopen = () => {
    attempt = 0;
    for (const [cid, text] of pending) socket.send(JSON.stringify({ cid, text }));
  };
  socket.onmessage = (event) => receive(JSON.parse(event.data));
  socket.onclose = (event) => {
    status.textContent = `closed (${event.code}): reconnecting…`;
    reconnect();
  };
}

// reconnect: exponential backoff with full jitter, so that clients cut together do not
// all come back in the same instant
function reconnect() {
  const ceiling = Math.min(10000, 250 * 2 ** attempt);
  attempt += 1;
  setTimeout(connect, Math.random() * ceiling);
}
// end reconnect

function receive(message) {
  if (message.type === "welcome") {
    lastId = message.last; // where this connection starts: resume from here if it drops
    status.textContent = `connected to instance ${message.instance} as ${message.client}`;
  } else if (message.type === "ack") {
    pending.delete(message.cid);
  } else if (message.type === "message") {
    lastId = message.id;
    const item = document.createElement("li");
    item.textContent = `${message.text} (via ${message.instance})`;
    log.append(item);
  }
}

document.getElementById("form").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = document.getElementById("text");
  const cid = `${Date.now()}-${(sent += 1)}`;
  pending.set(cid, input.value);
  if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ cid, text: input.value }));
  input.value = "";
});

connect();
