"""P40, fixed: nginx in front of a WebSocket app, as a location block."""

# nginx's `location` block in front of the app (the rest of nginx.conf: upstream `app`).
LOCATION = """
location / {
    proxy_pass http://app;
    proxy_http_version 1.1;
    proxy_set_header Upgrade $http_upgrade;
    proxy_set_header Connection "upgrade";
    proxy_set_header Host $host;
    proxy_set_header X-Forwarded-For $remote_addr;
    proxy_set_header X-Forwarded-Proto $scheme;
}
"""
