// The chat page: join a room, show what arrives, send messages and whispers as JSON events.
const $ = (id) => document.getElementById(id);
let ws = null;

function addLine(text, cls) {
  const li = document.createElement("li");
  li.textContent = text;
  li.className = cls;
  $("log").appendChild(li);
}

function describe(ev) {
  if (ev.type === "message") return [`${ev.user}: ${ev.text}`, "message"];
  if (ev.type === "whisper") return [`${ev.user} (to you): ${ev.text}`, "message whisper"];
  if (ev.type === "error") {
    const why = typeof ev.error === "string" ? ev.error : ev.error.map((e) => e.msg).join("; ");
    return [`error: ${why}`, "error"];
  }
  return [`${ev.user} ${ev.type}s`, "system"];  // join, leave
}

function join(room, user) {
  if (ws) ws.close();
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const path = `/ws/${encodeURIComponent(room)}?user=${encodeURIComponent(user)}`;
  ws = new WebSocket(`${scheme}://${location.host}${path}`);
  ws.onopen = () => { $("status").textContent = `connected to ${room} as ${user}`; };
  ws.onclose = (e) => { $("status").textContent = `closed (${e.code}) ${e.reason}`; };
  ws.onmessage = (e) => {
    const ev = JSON.parse(e.data);
    if (ev.members) $("members").textContent = ev.members.length;
    addLine(...describe(ev));
  };
}

$("join").onsubmit = (e) => {
  e.preventDefault();
  join($("room").value, $("user").value);
};

$("say").onsubmit = (e) => {
  e.preventDefault();
  const text = $("text").value;
  const whisper = text.match(/^@(\S+)\s+(.+)$/);
  ws.send(JSON.stringify(whisper ? { type: "whisper", to: whisper[1], text: whisper[2] }
                                 : { type: "message", text }));
  addLine(`me: ${text}`, "mine");
  $("text").value = "";
};

const query = new URLSearchParams(location.search);
if (query.get("user")) join(query.get("room") || "lobby", query.get("user"));
