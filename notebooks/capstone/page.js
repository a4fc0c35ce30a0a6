// The capstone's browser client: log in over HTTP, then follow the board over a WebSocket.
let token = null;
let lastId = null; // the id of the last event seen: sent as "since" when reconnecting
let retries = 0;
const tasks = new Map();
const $ = (id) => document.getElementById(id);

function api(method, path, body) {
  return fetch(path, {method, headers: {"Content-Type": "application/json",
    Authorization: `Bearer ${token}`}, body: body && JSON.stringify(body)});
}

function render() {
  $("tasks").replaceChildren(...[...tasks.values()].sort((a, b) => a.id - b.id).map((task) => {
    const item = document.createElement("li");
    const box = document.createElement("input");
    box.type = "checkbox"; box.checked = task.done;
    box.onchange = () => api("PUT", `/tasks/${task.id}`, {done: box.checked});
    const label = document.createElement("span");
    label.textContent = task.title; label.className = task.done ? "done" : "";
    const remove = document.createElement("button");
    remove.textContent = "×"; remove.title = "delete";
    remove.onclick = () => api("DELETE", `/tasks/${task.id}`);
    item.append(box, " ", label, " ", remove); item.dataset.id = task.id;
    return item;
  }));
}

function apply(message) {
  if (message.id) lastId = message.id;
  if (message.type === "hello") {
    retries = 0;
    $("status").textContent = `live as ${message.user}`; $("add").hidden = false;
    tasks.clear(); message.tasks.forEach((task) => tasks.set(task.id, task));
  } else if (message.type === "presence") {
    $("online").textContent = `online: ${message.online.join(", ")}`;
  } else if (message.type === "task_deleted") {
    tasks.delete(message.task.id);
  } else {
    tasks.set(message.task.id, message.task);
  }
  if (message.task) {
    const line = document.createElement("li");
    line.textContent = `${message.user}: ${message.type} "${message.task.title}"`;
    $("activity").prepend(line);
  }
  render();
}

// connect-start
function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}/ws/tasks`);
  ws.onopen = () => ws.send(JSON.stringify({token, since: lastId})); // first-message auth
  ws.onmessage = (event) => apply(JSON.parse(event.data));
  ws.onclose = (event) => {
    if (event.code === 1008) { // refused or expired: log in again
      $("status").textContent = `logged out: ${event.reason}`; $("add").hidden = true;
      return;
    }
    // 1012 (a restart), 1013 (too slow), 1006 (gone): come back with jitter, resume from lastId
    const delay = Math.min(5000, 250 * 2 ** retries++) * (0.5 + Math.random() / 2);
    $("status").textContent = `reconnecting (${event.code})`;
    setTimeout(connect, delay);
  };
}
// connect-end

$("login").onsubmit = async (event) => {
  event.preventDefault();
  const reply = await fetch("/login", {method: "POST",
    headers: {"Content-Type": "application/json"},
    body: JSON.stringify({username: $("user").value, password: $("password").value})});
  if (!reply.ok) { $("status").textContent = "login failed"; return; }
  token = (await reply.json()).token; connect();
};
$("add").onsubmit = (event) => {
  event.preventDefault(); api("POST", "/tasks", {title: $("title").value}); $("title").value = "";
};
