"""The live view's HTTP server: the standard library's ``ThreadingHTTPServer`` on 127.0.0.1,
the page and its scripts from the package, the state as JSON and as server-sent events.

Routes (GET only, unless the stop control is on):

- ``/``: the page; ``/static/<name>``: its script, plotting code and style (package data);
- ``/state``: the current state (JSON);
- ``/events``: server-sent events, one ``data:`` line with the whole state each time it
  changes (at most ``MAX_RATE_HZ`` a second), a comment every 15 s to keep the line open.

- ``POST /stop?token=T``: only with ``control=True`` (``corrlab run --live --live-control``):
  stop the run after the trial in progress, through the protocol's safe state (the run ends
  ``interrupted``, resumable). ``T`` is the per-run token in the printed URL; without it, or
  with another one, 403.

Requests whose ``Host`` is not this server's loopback address (a DNS-rebinding page in the same
browser) or that carry a foreign ``Origin`` are refused with 403.
"""

from __future__ import annotations

import hmac
import http.server
import json
import secrets
import threading
import time
from importlib import resources
from urllib.parse import parse_qs, urlsplit

from corrlab.daq.live.hub import Hub
from corrlab.errors import CorrlabError

HOST = "127.0.0.1"
MAX_RATE_HZ = 4.0
STATIC = {"live.js": "text/javascript", "plot.js": "text/javascript", "live.css": "text/css",
          "index.html": "text/html"}


def _asset(name: str) -> bytes:
    return resources.files("corrlab.daq.live").joinpath("static", name).read_bytes()


class LiveServer:
    """Serves one hub. ``port=0`` lets the OS choose; :attr:`url` is the address to open."""

    def __init__(self, hub: Hub, *, port: int = 0, control: bool = False):
        self.hub = hub
        self.token = secrets.token_urlsafe(18) if control else None
        self.assets = {name: _asset(name) for name in STATIC}  # read once: the page works offline
        handler = type("Handler", (_Handler,), {"live": self})
        try:
            self.httpd = http.server.ThreadingHTTPServer((HOST, port), handler)
        except OSError as exc:  # a port in use or not ours to take: one line, named
            raise CorrlabError(f"--port {port}: the live view cannot listen on {HOST}:{port} "
                               f"({exc.strerror or exc})") from exc
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.allowed_hosts = {f"{HOST}:{self.port}", f"localhost:{self.port}"}
        self.closing = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The page's address (with the stop control: and its token)."""
        return f"http://{HOST}:{self.port}/" + (f"?token={self.token}" if self.token else "")

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}/"

    def start(self) -> "LiveServer":
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="corrlab-live-http", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.closing.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread is not None:
            self._thread.join(2.0)


class _Handler(http.server.BaseHTTPRequestHandler):
    live: LiveServer
    protocol_version = "HTTP/1.1"
    server_version = "corrlab-live"

    def log_message(self, format, *args):  # quiet: the terminal belongs to the run
        pass

    def _send(self, code: int, body: bytes, ctype: str = "text/plain; charset=utf-8", extra: dict | None = None):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", "default-src 'self'; img-src 'self' data:")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _allowed(self) -> bool:
        host = self.headers.get("Host", "")
        if host not in self.live.allowed_hosts:
            return False
        origin = self.headers.get("Origin")
        if origin is not None and urlsplit(origin).netloc not in self.live.allowed_hosts:
            return False
        return True

    def do_GET(self):
        if not self._allowed():
            self._send(403, b"forbidden: the live view answers on its loopback address only\n")
            return
        path = urlsplit(self.path).path
        if path in ("/", "/index.html"):
            self._send(200, self.live.assets["index.html"], "text/html; charset=utf-8")
        elif path.startswith("/static/") and path[len("/static/"):] in STATIC:
            name = path[len("/static/"):]
            self._send(200, self.live.assets[name], STATIC[name] + "; charset=utf-8")
        elif path == "/state":
            _, data = self.live.hub.snapshot_json()
            self._send(200, data, "application/json")
        elif path == "/events":
            self._events()
        elif path == "/favicon.ico":
            self._send(204, b"")
        else:
            self._send(404, b"not found\n")

    def _refuse(self):
        self._send(405, b"the live view is read-only\n", extra={"Allow": "GET"})

    do_PUT = do_DELETE = do_PATCH = _refuse

    def do_POST(self):
        live = self.live
        url = urlsplit(self.path)
        if url.path != "/stop" or live.token is None:
            self._refuse()
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(min(length, 4096))
        if not self._allowed():
            self._send(403, b"forbidden: the live view answers on its loopback address only\n")
            return
        token = (parse_qs(url.query).get("token") or [""])[0] or self.headers.get("X-Corrlab-Token", "")
        if not hmac.compare_digest(token.encode(), live.token.encode()):
            self._send(403, b"forbidden: this run's token is missing or wrong\n")
            return
        trial = live.hub.request_stop("the live view (stop after this trial)")
        self._send(202, json.dumps({"stop": "requested", "after_trial": trial}).encode(), "application/json")

    def _events(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        hub, closing = self.live.hub, self.live.closing
        version, data = hub.snapshot_json()
        last_sent = last_write = time.monotonic()
        try:
            self.wfile.write(b"data: " + data + b"\n\n")
            self.wfile.flush()
            while not closing.is_set():
                wait = 1.0 / MAX_RATE_HZ - (time.monotonic() - last_sent)
                if wait > 0:
                    time.sleep(wait)
                new, data = hub.wait(version, timeout=1.0)
                if closing.is_set():
                    break
                if new != version:
                    version = new
                    self.wfile.write(b"data: " + data + b"\n\n")
                    last_sent = last_write = time.monotonic()
                elif time.monotonic() - last_write >= 15.0:
                    self.wfile.write(b": keep-alive\n\n")
                    last_write = time.monotonic()
                else:
                    continue
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass  # the browser went away: nothing else to do
