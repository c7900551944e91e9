"""Serves the web admin with webui.wsgiserver: a thread per connection, started as it comes.

Each live dashboard holds one connection for its Server-Sent Events stream, so the cap is
``max_sse`` streams plus the connections that answer ordinary pages.
"""

from __future__ import annotations

import logging
import sys

from firmware.api.localapi import LocalApi
from webui.app import SECURITY_HEADERS, WebAdmin, WebConfig
from webui.pages.system import MAX_UPLOAD
from webui.webdb import WebDb
from webui.wsgiserver import WebServer

log = logging.getLogger("linebox.web")
PAGE_THREADS = 8
STOP_TIMEOUT = 2.0  # seconds the connections' threads get to end once the streams are told to


def build(cfg: WebConfig) -> WebAdmin:
    return WebAdmin(cfg, LocalApi(cfg.data, cfg.api), WebDb(cfg.data))


def serve(cfg: WebConfig, host: str, port: int) -> int:
    web = build(cfg)
    # Binds now, so a port in use is reported before "ready". The largest body is the System
    # page's backup restore, which checks its own limit again.
    server = WebServer((host, port), web.wsgi, max_connections=cfg.max_sse + PAGE_THREADS, max_body=MAX_UPLOAD,
                       headers=[*SECURITY_HEADERS, ("Cache-Control", "no-store")])
    web.settle()
    print(f"linebox-web: ready on http://{host}:{server.port}/ (box API {cfg.api})", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        web.stopping.set()  # ends the SSE streams, so their threads can be joined
        server.stop(STOP_TIMEOUT)
        web.api.close()
        web.db.close()
    return 0
