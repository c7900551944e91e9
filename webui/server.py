"""Serves the web admin with cheroot: a threaded, pure-Python WSGI server.

Each live dashboard holds one worker thread for its Server-Sent Events stream, so the pool is
sized for ``max_sse`` streams plus the threads that answer ordinary pages.
"""

from __future__ import annotations

import logging
import sys

from cheroot import wsgi

from firmware.api.localapi import LocalApi
from webui.app import WebAdmin, WebConfig
from webui.webdb import WebDb

log = logging.getLogger("linebox.web")
PAGE_THREADS = 8


def build(cfg: WebConfig) -> WebAdmin:
    return WebAdmin(cfg, LocalApi(cfg.data, cfg.api), WebDb(cfg.data))


def serve(cfg: WebConfig, host: str, port: int) -> int:
    web = build(cfg)
    server = wsgi.Server((host, port), web.wsgi, numthreads=cfg.max_sse + PAGE_THREADS,
                         server_name="linebox-web", shutdown_timeout=2)
    server.prepare()  # binds now, so a port in use is reported before "ready"
    web.settle()
    print(f"linebox-web: ready on http://{host}:{server.bind_addr[1]}/ (box API {cfg.api})", file=sys.stderr, flush=True)
    try:
        server.serve()
    except KeyboardInterrupt:
        pass
    finally:
        web.stopping.set()  # ends the SSE streams, so their threads can be joined
        server.stop()
        web.api.close()
        web.db.close()
    return 0
