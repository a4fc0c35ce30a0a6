// Lesson 05's page: one room, reconnecting with backoff and jitter, resuming by last id.
const $ = (id) => document.getElementById(id);
const log = (line) => { $("log").textContent += line + "\n"; };
const scheme = location.protocol === "https:" ? "wss" : "ws";
const BASE = 500, CAP = 15000;      // backoff: 0.5 s doubling up to 15 s...
let attempt = 0, lastId = null, reconnects = 0, ws = null, watchdog = null;
let peers = [], port = location.port;  // the instances' ports, from the welcome

function backoff() {                 // ...with full jitter, so clients do not retry in step
  return Math.random() * Math.min(CAP, BASE * 2 ** attempt++);
}
function alive(seconds) {            // no message, not even a ping: the server is gone
  clearTimeout(watchdog);
  watchdog = setTimeout(() => ws.close(), seconds * 1000);
}

function connect() {
  const query = lastId ? `?last_id=${encodeURIComponent(lastId)}` : "";
  const host = port ? `${location.hostname}:${port}` : location.host;
  ws = new WebSocket(`${scheme}://${host}/ws${query}`);
  ws.onmessage = (event) => {
    const msg = JSON.parse(event.data);
    if (msg.id) { lastId = msg.id; $("last").textContent = lastId; }
    if (msg.type === "welcome") {
      attempt = 0;                   // reset on success
      $("status").textContent = "connected";
      $("instance").textContent = msg.instance;
      alive(msg.heartbeat);
      ws.heartbeat = msg.heartbeat;
      peers = msg.peers.map(String);
      return;
    }
    alive(ws.heartbeat);
    if (msg.type === "ping") { ws.send(JSON.stringify({type: "pong"})); return; }
    if (msg.type === "message") log(`${msg.instance}: ${msg.text}`);
    else log(JSON.stringify(msg));
  };
  ws.onclose = (event) => {
    clearTimeout(watchdog);
    const delay = backoff();
    const closed = `closed (${event.code}${event.reason ? " " + event.reason : ""})`;
    $("status").textContent = `${closed}, retrying in ${Math.round(delay)} ms`;
    log(closed);                     // the status changes on every retry; the log keeps them
    if (peers.length) port = peers[(peers.indexOf(port) + 1) % peers.length];  // next instance
    setTimeout(() => { reconnects++; $("reconnects").textContent = reconnects; connect(); },
               delay);
  };
}

$("form").onsubmit = (event) => {
  event.preventDefault();
  if (ws.readyState !== WebSocket.OPEN) return;
  ws.send(JSON.stringify({type: "say", text: $("text").value}));
  $("text").value = "";
};
connect();
