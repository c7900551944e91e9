"""The box's network: interfaces, addresses and routes (read over rtnetlink), and a static
address change that rolls back by itself unless confirmed from the new address in time
(firmware.system.netconf). DHCP is the image's default; this page is for giving the box a fixed
address an office's phones can rely on."""

from __future__ import annotations

from typing import Any

import bottle
from bottle import request

from firmware.system.netconf import NetChanger, NetError, Netlink, describe
from webui.wsgiserver import LOCAL_ADDRESS

NAV = [("Network", "/network")]
APPLY_DELAY = 1.0  # seconds: this page reaches the browser over the old address first


def install(admin: Any) -> None:
    net = NetChanger(Netlink(), admin.cfg.data, window=admin.cfg.network_rollback,
                     on_event=lambda what: admin.db.audit("system", "-", what, admin.clock()))
    admin.net = net

    def state() -> dict[str, Any]:
        try:
            return describe(net.backend.state())
        except OSError as exc:  # no netlink here (a container without it): say so, do not crash
            return {"interfaces": [], "routes": [], "error": str(exc)}

    def page(status: int = 200, **ctx: Any) -> str:
        st = state()
        p = net.pending
        pending = None
        if p is not None:
            port = request.urlparts.port or 80
            pending = {"address": str(p.address), "ifname": p.ifname,
                       "url": f"{request.urlparts.scheme}://{p.address.address}:{port}/network/confirm/{p.id}",
                       "seconds": max(0, round(p.deadline - admin.clock()))}
        return admin._render("network", status, title="Network", state=st, pending=pending, saved=net.saved(),
                             window=net.window, **ctx)

    def show() -> str:
        return page()

    def change() -> str:
        form = {k: (request.forms.getunicode(k, "") or "").strip() for k in ("interface", "address", "prefix", "gateway")}
        try:
            p = net.change(form["interface"], form["address"], form["prefix"] or "24", form["gateway"] or None,
                           delay=APPLY_DELAY)
        except NetError as exc:
            return page(422, form=form, errors={exc.field: str(exc)})
        admin._audit(f"network: {p.ifname} -> {p.address}" + (f" via {p.gateway}" if p.gateway else "")
                     + f" (rolls back in {net.window:g} s unless confirmed)")
        return page(notice=f"{p.ifname} gets {p.address} in a second. Open the confirmation link below from the "
                           f"new address within {net.window:g} seconds, or the old settings come back.", form=form)

    def confirm_page(change_id: str) -> str:
        return admin._render("network_confirm", title="Confirm the network change", change_id=change_id,
                             csrf=admin._anon_csrf(), user=None, done=None, error=None)

    def confirm(change_id: str) -> str:
        # The address the browser really reached: the Host header it sends could name the new one
        # over the old, and a change that does not work would be kept.
        seen_on = request.environ.get(LOCAL_ADDRESS) or ""
        try:
            ok = net.confirm(change_id, seen_on)
        except NetError as exc:
            return admin._render("network_confirm", 409, title="Confirm the network change", change_id=change_id,
                                 csrf=admin._anon_csrf(), user=None, done=None, error=str(exc))
        if not ok:
            bottle.abort(404, "No change is waiting for that confirmation: it was confirmed already, or it "
                              "rolled back. Check the Network page.")
        return admin._render("network_confirm", title="Network change kept", change_id=change_id,
                             csrf="", user=None, done=True, error=None)

    admin.app.get("/network", callback=show)
    admin.app.post("/network", callback=change)
    admin.app.get("/network/confirm/<change_id>", callback=confirm_page)
    admin.app.post("/network/confirm/<change_id>", callback=confirm)
