// Lesson 01's page: one WebSocket to /ws/echo. What you type goes out; echoes come back.
const statusLine = document.getElementById("status");
const form = document.getElementById("form");
const input = document.getElementById("text");
const log = (line) => { document.getElementById("log").textContent += line + "\n"; };
const scheme = location.protocol === "https:" ? "wss" : "ws"; // wss:// beside https://

const ws = new WebSocket(`${scheme}://${location.host}/ws/echo`);
ws.onopen = () => { statusLine.textContent = "connected"; };
ws.onmessage = (event) => log("← " + event.data);
ws.onclose = (event) => { statusLine.textContent = `closed (${event.code})`; };
form.onsubmit = (event) => {
  event.preventDefault();
  ws.send(input.value);
  log("→ " + input.value);
  input.value = "";
};
