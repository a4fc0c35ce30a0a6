// Lesson 04's page: log in over HTTP, then open the WebSocket one of four ways.
const $ = (id) => document.getElementById(id);
const log = (line) => { $("log").textContent += line + "\n"; };
const scheme = location.protocol === "https:" ? "wss" : "ws";
let token = null;
let ws = null;

$("login").onsubmit = async (event) => {
  event.preventDefault();
  const response = await fetch("/login", {
    method: "POST",
    headers: {"content-type": "application/json"},
    body: JSON.stringify({username: $("username").value, password: $("password").value}),
  });
  const body = await response.json();
  token = response.ok ? body.access_token : null;
  $("who").textContent = response.ok ? `logged in as ${$("username").value}`
                                     : `login refused: ${body.detail}`;
};

// The URL is all a page controls in a handshake (with the cookies the browser adds).
async function socketUrl(transport) {
  const url = `${scheme}://${location.host}/ws/${transport}`;
  if (transport === "query") return `${url}?token=${encodeURIComponent(token)}`;
  if (transport === "ticket") {
    // fetch() may set Authorization; new WebSocket() may not.
    const response = await fetch("/ticket", {
      method: "POST",
      headers: {authorization: `Bearer ${token}`},
    });
    if (!response.ok) throw new Error(`no ticket: HTTP ${response.status}`);
    return `${url}?ticket=${encodeURIComponent((await response.json()).ticket)}`;
  }
  return url;  // cookie: the browser adds it; first-message: sent once open
}

$("connect").onsubmit = async (event) => {
  event.preventDefault();
  if (ws) ws.close();
  $("status").textContent = "connecting…";  // until this socket's welcome
  const transport = $("transport").value;
  try {
    ws = new WebSocket(await socketUrl(transport));
  } catch (error) {
    $("status").textContent = error.message;
    return;
  }
  ws.onopen = () => {
    if (transport === "first-message") ws.send(JSON.stringify({type: "auth", token}));
  };
  ws.onmessage = (event) => {
    const m = JSON.parse(event.data);
    if (m.type === "welcome") $("status").textContent = `connected as ${m.user}`;
    else if (m.type === "message") log(`[${m.room}] ${m.user}: ${m.text}`);
    else if (m.type === "error") log(`error: ${m.error}`);
    else log(`${m.type} ${m.room}`);
  };
  ws.onclose = (event) => {
    if (event.target !== ws) return;  // an older socket, replaced by Connect
    // A refused handshake (401, 403) reaches a page only as 1006, with no reason.
    $("status").textContent = `closed (${event.code}${event.reason ? " " + event.reason : ""})`;
  };
};

const send = (message) => ws.send(JSON.stringify({...message, room: $("room").value}));
$("join").onclick = () => send({type: "join"});
$("say").onsubmit = (event) => {
  event.preventDefault();
  send({type: "say", text: $("text").value});
  $("text").value = "";
};
