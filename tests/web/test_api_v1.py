"""The REST API: a token made on the API page works (Bearer), no token or a revoked one gets
401, writes are validated like the forms (422 with field paths, nothing changed), changes apply
live and are audited; and docs/openapi.json names exactly the routes bottle serves under /api/v1."""
from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from pathlib import Path

from tests.web.conftest import finish_wizard

OPENAPI = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def call(web, method: str, path: str, token: str | None = None, body=None, ctype="application/json"):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers["Content-Type"] = ctype
    req = urllib.request.Request(web.url(path), data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read()), r.headers
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null"), exc.headers


def test_api_tokens_auth_validation_and_changes(box_factory, web_factory, page):
    box = box_factory("box", extensions=("1001", "1002"))
    web = web_factory(box)
    finish_wizard(page, web)
    page.goto(web.url("/tokens"))
    page.fill("#name", "")
    page.click("#token-form button[type=submit]")
    assert "1 to 40 characters" in page.inner_text("#name-error")
    page.fill("#name", "crm-sync")
    page.click("#token-form button[type=submit]")
    token = page.inner_text("#token-secret").strip()
    assert token.startswith("lbx_") and len(token) > 40
    assert token not in (box.data / "webui.db").read_bytes().decode("latin-1")  # only its hash is kept

    status, body, headers = call(web, "GET", "/api/v1/extensions")
    assert status == 401 and "token" in body["error"] and headers.get("WWW-Authenticate", "").startswith("Bearer")
    assert call(web, "GET", "/api/v1/extensions", token[:-2] + "xx")[0] == 401
    status, body, _ = call(web, "GET", "/api/v1/extensions", token)
    assert status == 200 and [e["number"] for e in body["extensions"]] == ["1001", "1002"]
    assert "secret" not in json.dumps(body)

    # The form's rules: a bad number and a bad name, both reported by path; nothing added.
    status, body, _ = call(web, "POST", "/api/v1/extensions", token, {"number": "12ab", "name": 'a"b'})
    assert status == 422 and set(body["errors"]) == {"number", "name"}, body
    status, body, _ = call(web, "POST", "/api/v1/extensions", token, {"number": "1001"})
    assert status == 422 and "already exists" in body["errors"]["number"]
    assert call(web, "POST", "/api/v1/extensions", token, b"{not json")[0] == 400
    assert call(web, "POST", "/api/v1/extensions", token, b"number=1003", "application/x-www-form-urlencoded")[0] == 415
    assert [e["number"] for e in json.loads(box.cli("config", "export").stdout)["extensions"]] == ["1001", "1002"]

    status, body, _ = call(web, "POST", "/api/v1/extensions", token, {"number": "1003", "name": "Desk"})
    assert status == 201 and body["applied"]["live"] is True and len(body["secret"]) >= 16
    assert re.search(r"1003\s+Desk", box.cli("ext", "list").stdout)
    assert call(web, "DELETE", "/api/v1/extensions/1003", token)[0] == 200
    assert call(web, "DELETE", "/api/v1/extensions/1003", token)[0] == 404

    status, body, _ = call(web, "GET", "/api/v1/calls", token)
    assert status == 200 and body == {"calls": []}
    assert call(web, "POST", "/api/v1/calls/nope/hangup", token)[0] == 404
    assert call(web, "GET", "/api/v1/queues", token)[0] == 200
    status, body, _ = call(web, "GET", "/api/v1/queues/stats?period=week&since=yesterday", token)
    assert status == 422 and set(body["errors"]) == {"period", "since"}
    status, body, _ = call(web, "GET", "/api/v1/queues/stats?period=day&agents=true", token)
    assert status == 200 and body["period"] == "day" and body["agents"] == []
    status, body, _ = call(web, "GET", "/api/v1/cdrs?limit=5", token)
    assert status == 200 and body == {"total": 0, "offset": 0, "cdrs": []}
    assert call(web, "GET", "/api/v1/cdrs?from=2026-02-30", token)[0] == 422
    assert call(web, "GET", "/api/v1/nothing", token)[0] == 404

    page.goto(web.url("/audit"))
    assert "api:crm-sync" in page.inner_text("#audit") and "added extension 1003" in page.inner_text("#audit")

    # Revoked: refused at once.
    page.goto(web.url("/tokens"))
    page.click("#tokens tr[data-token] button:has-text('Revoke')")
    page.wait_for_selector("#tokens td:has-text('revoked')")
    assert call(web, "GET", "/api/v1/extensions", token)[0] == 401


def test_openapi_names_exactly_the_routes(tmp_path):
    from firmware.api.localapi import LocalApi
    from webui.app import WebAdmin, WebConfig
    from webui.webdb import WebDb

    api = LocalApi(tmp_path, api=None)
    db = WebDb(tmp_path)
    try:
        admin = WebAdmin(WebConfig(data=tmp_path, api=None), api, db)
        served = {(re.sub(r"<(\w+)(:[^>]*)?>", r"{\1}", r.rule), r.method.lower())
                  for r in admin.app.routes if r.rule.startswith("/api/v1")}
    finally:
        api.close()
        db.close()
    doc = json.loads(OPENAPI.read_text())
    assert doc["openapi"].startswith("3.1")
    documented = {(path, method) for path, ops in doc["paths"].items() for method in ops
                  if method in ("get", "post", "put", "patch", "delete")}
    assert documented == served
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert "401" in op["responses"], (path, method)
            for name in re.findall(r"{(\w+)}", path):
                assert any(p["name"] == name and p["in"] == "path" for p in op.get("parameters", [])), (path, name)
