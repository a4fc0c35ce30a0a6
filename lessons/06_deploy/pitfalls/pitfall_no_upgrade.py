"""P40, broken: nginx in front of a WebSocket app, as a location block."""

# nginx's `location` block in front of the app (the rest of nginx.conf: upstream `app`).
LOCATION = """
location / {
    proxy_pass http://app;
    proxy_set_header Host $host;
    proxy_set_header X-Forwarded-For $remote_addr;
    proxy_set_header X-Forwarded-Proto $scheme;
}
"""
