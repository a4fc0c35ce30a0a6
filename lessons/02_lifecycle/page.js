// Lesson 02's page: open a connection, send messages, close it, and show every phase.
let ws = null;
const log = (line) => { document.getElementById("log").textContent += line + "\n"; };
const status = (text) => { document.getElementById("status").textContent = text; };

// connect: the handshake is an HTTP GET to /ws/{client_id}?name=...
document.getElementById("join").onsubmit = (event) => {
  event.preventDefault();
  const id = encodeURIComponent(document.getElementById("client").value);
  const name = encodeURIComponent(document.getElementById("name").value);
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  ws = new WebSocket(`${scheme}://${location.host}/ws/${id}?name=${name}`);
  status("connecting");
  ws.onopen = () => { status("open"); log("⇄ connected"); };
  ws.onmessage = (event) => log("← " + event.data);
  ws.onclose = (event) => {  // a refused handshake arrives here too, as 1006
    status(`closed (${event.code}${event.reason ? " " + event.reason : ""})`);
    log(`✕ closed: code ${event.code}, reason "${event.reason}"`);
  };
};
// end of connect

document.getElementById("form").onsubmit = (event) => {
  event.preventDefault();
  const input = document.getElementById("text");
  ws.send(input.value);
  log("→ " + input.value);
  input.value = "";
};
document.getElementById("leave").onclick = () => ws.close(1000, "bye from the page");
