"""A SIP trunk's registration against a registrar we did not write: Kamailio from Debian.

The registrant (firmware.sip.registrant over the box's SipTransport, on 127.0.0.1 and a free
port) registers an account at a Kamailio that plays the provider (tests/peers/kamailio.py:
digest auth with MD5 or SHA-256 and qop=auth, Min-Expires 10 answered with 423, usrloc in
memory). A binding is proven by Kamailio's own location table (`kamcmd ul.dump`) and by an
OPTIONS sent to the account's address-of-record through Kamailio arriving at the registrant's
socket. Transaction timers are shortened (T1 = 100 ms, so timer F is 6.4 s) and the back-off
starts at half a second, so outages play out in seconds; every wait has a timeout.
"""
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Callable

import pytest
import uvloop

from firmware.sip.endpoint import Event, RequestReceived, SipEndpoint
from firmware.sip.message import Message, Request, make_response, new_tag
from firmware.sip.registrant import Registrant
from firmware.sip.registration import Backoff, Registration, RegistrationSettings, RegistrationState
from firmware.sip.transaction import Timers
from firmware.sip.transport import SipTransport
from tests.peers.kamailio import Kamailio, options
from tests.peers.netutil import LOOPBACK

USER, SECRET = "4930123", "Trunk-Secret-1"
OTHER, OTHER_SECRET = "4930999", "Other-Secret-2"
DOMAIN = "trunk.test"
TIMERS = Timers(t1=0.1)
BACKOFF = Backoff(first=0.5, cap=2.0)


def run(coro_fn: Callable[[], object], timeout: float = 90.0) -> object:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(asyncio.wait_for(coro_fn(), timeout))


@pytest.fixture
def kamailio(tmp_path: Path):
    made: list[Kamailio] = []

    def make(**kw) -> Kamailio:
        kam = Kamailio(tmp_path / f"kamailio{len(made)}", users={USER: SECRET, OTHER: OTHER_SECRET},
                       domain=DOMAIN, **kw)
        made.append(kam)
        kam.start()
        return kam

    try:
        yield make
    finally:
        for kam in made:
            kam.stop()


class Trunk:
    """One registrant and the states it went through."""

    def __init__(self, box: TrunkBox, settings: RegistrationSettings, name: str) -> None:
        loop = asyncio.get_running_loop()
        contact = box.transport.local_tcp if settings.transport == "tcp" else box.transport.local_udp
        self.registration = Registration(settings, contact=contact, now=loop.time(), backoff=BACKOFF)
        self.history: list[RegistrationState] = [self.registration.state]
        self.changed = asyncio.Event()
        self.registrant = Registrant(self.registration, box.transport, on_state=self._on_state, name=name)
        self.contact = f"sip:{settings.contact_user or settings.user}@{contact[0]}:{contact[1]}"

    def _on_state(self, state: RegistrationState) -> None:
        self.history.append(state)
        self.changed.set()

    @property
    def state(self) -> RegistrationState:
        return self.registrant.state

    def kinds(self) -> list[str]:
        return [s.kind for s in self.history]

    async def wait(self, what: str, cond: Callable[[RegistrationState], bool], timeout: float,
                   *, since: int = 0) -> RegistrationState:
        """The first state from index `since` of the history that meets `cond`."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    for state in self.history[since:]:
                        if cond(state):
                            return state
                    self.changed.clear()
                    await self.changed.wait()
        except TimeoutError:
            raise AssertionError(f"no {what} within {timeout:g} s; states: {self.history}") from None


class TrunkBox:
    """The box's SIP side, reduced to what a trunk needs: a transport whose event handler
    gives the registrants their transactions' events and answers requests (OPTIONS) with 200."""

    def __init__(self) -> None:
        self.transport = SipTransport(SipEndpoint(timers=TIMERS), on_event=self._on_event)
        self.trunks: list[Trunk] = []
        self.requests: list[Request] = []
        self.request_arrived = asyncio.Event()

    async def __aenter__(self) -> TrunkBox:
        await self.transport.start(LOOPBACK, 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        for trunk in self.trunks:
            await trunk.registrant.close(timeout=2.0)
        await self.transport.close()

    def trunk(self, settings: RegistrationSettings, name: str = "provider") -> Trunk:
        t = Trunk(self, settings, name)
        self.trunks.append(t)
        t.registrant.start()
        return t

    def _on_event(self, event: Event) -> None:
        for t in self.trunks:
            if t.registrant.handle_event(event):
                return
        if isinstance(event, RequestReceived):
            self.requests.append(event.request)
            self.request_arrived.set()
            self.transport.send_response(event.tx, make_response(event.request, 200, to_tag=new_tag()))


def settings(kam: Kamailio, *, user: str = USER, secret: str = SECRET, transport: str = "udp",
             expires: int = 5, registrar: str | None = None) -> RegistrationSettings:
    return RegistrationSettings(registrar=registrar or kam.host, port=kam.port, transport=transport, user=user, secret=secret,
                                auth_user=user, domain=DOMAIN, expires=expires)


class _Probe(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.finals: asyncio.Queue[int] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        response = Message.parse(data)
        if response.status >= 200:
            self.finals.put_nowait(response.status)


async def probe(kam: Kamailio, uri: str, timeout: float = 5.0) -> int:
    """Send an OPTIONS to `uri` through Kamailio from a socket of the test; its final status."""
    loop = asyncio.get_running_loop()
    udp, protocol = await loop.create_datagram_endpoint(_Probe, local_addr=(LOOPBACK, 0))
    try:
        udp.sendto(options(uri, udp.get_extra_info("sockname")), kam.addr)
        async with asyncio.timeout(timeout):
            return await protocol.finals.get()
    finally:
        udp.close()


async def location(kam: Kamailio) -> str:
    return await asyncio.to_thread(kam.location)


@pytest.mark.parametrize("algorithm, transport", [("MD5", "udp"), ("SHA-256", "tcp")])
def test_a_trunk_registers_is_reachable_refreshes_and_unregisters(kamailio, algorithm, transport):
    kam = kamailio(algorithm=algorithm)

    async def scenario() -> None:
        async with TrunkBox() as box:
            trunk = box.trunk(settings(kam, transport=transport, expires=5))
            contact = trunk.contact + (";transport=tcp" if transport == "tcp" else "")
            first = await trunk.wait("registration", lambda s: s.kind == "registered", 10)
            # asked 5 s without credentials (401), with them (423: Min-Expires 10), then 10 s
            regs = kam.registers(USER)
            assert [(r["auth"], r["expires"]) for r in regs[:3]] == [
                ("<null>", "5"), (USER, "5"), (USER, "10")], kam.log_tail()
            assert [int(r["cseq"]) for r in regs[:3]] == [1, 2, 3]
            assert first.until - asyncio.get_running_loop().time() <= 10.0
            assert f"Address: {contact}" in await location(kam)

            # the provider reaches the box at the registered contact
            assert await probe(kam, f"sip:{USER}@{DOMAIN}") == 200
            assert [(r.method, r.uri) for r in box.requests] == [("OPTIONS", contact)]

            # refreshed before expiry, in one REGISTER: the cached nonce with the next nc
            seen = len(trunk.history)
            refreshed = await trunk.wait("refresh", lambda s: s.kind == "registered", 10, since=seen)
            assert refreshed.until > first.until
            assert [r["auth"] for r in kam.registers(USER)[3:]] == [USER]
            assert trunk.kinds() == ["registering", "registered", "registered"]

            await trunk.registrant.close(timeout=5.0)
            assert trunk.state.kind == "stopped"
            assert kam.registers(USER)[-1]["expires"] == "0"
            assert contact not in await location(kam)
            assert await probe(kam, f"sip:{USER}@{DOMAIN}") == 404

    run(scenario)


def test_a_wrong_password_fails_with_the_last_response_and_is_not_retried(kamailio):
    kam = kamailio()

    async def scenario() -> None:
        async with TrunkBox() as box:
            wrong = box.trunk(settings(kam, user=OTHER, secret="not-the-secret"), name="wrong")
            right = box.trunk(settings(kam), name="right")
            failed = await wrong.wait("failure", lambda s: s.kind == "failing", 10)
            assert str(failed) == "failing: 401 Unauthorized (wrong credentials)"
            assert failed.retry_at is None and wrong.registration.get_timer() is None
            # The clock of this test is the other trunk: registered, then refreshed (5 s later).
            # A wrong trunk that retried would have done so several times by then (back-off 0.5 s).
            await right.wait("registration", lambda s: s.kind == "registered", 10)
            seen = len(right.history)
            await right.wait("refresh", lambda s: s.kind == "registered", 10, since=seen)
            assert [r["auth"] for r in kam.registers(OTHER)] == ["<null>", OTHER]
            assert wrong.kinds() == ["registering", "failing"]
            assert f"sip:{OTHER}@" not in await location(kam)

    run(scenario)


def test_the_registration_survives_a_kamailio_restart(kamailio):
    kam = kamailio()

    async def scenario() -> None:
        async with TrunkBox() as box:
            # by name: the registrant resolves it (/etc/hosts: 127.0.0.1) before every REGISTER
            trunk = box.trunk(settings(kam, registrar="localhost"))
            await trunk.wait("registration", lambda s: s.kind == "registered", 10)
            await asyncio.to_thread(kam.stop)
            # the next refresh (at most 5 s on) gets no answer: timer F, 6.4 s with T1 = 100 ms
            down = await trunk.wait("unreachable", lambda s: s.kind == "unreachable", 20)
            assert down.retry_at is not None and str(down) == "unreachable"
            before = len(kam.registers(USER))
            seen = len(trunk.history)
            await asyncio.to_thread(kam.start)  # same port, empty location table, new nonce secret
            back = await trunk.wait("registration after the restart", lambda s: s.kind == "registered", 20,
                                    since=seen)
            assert back.until > asyncio.get_running_loop().time()
            assert f"Address: {trunk.contact}" in await location(kam)
            assert await probe(kam, f"sip:{USER}@{DOMAIN}") == 200
            # the restarted Kamailio refused the cached credentials once; the new nonce was answered
            after = kam.registers(USER)[before:]
            assert [r["auth"] for r in after][-2:] == [USER, USER] and len(after) >= 2
            kinds = trunk.kinds()
            assert kinds[:2] == ["registering", "registered"] and kinds[-1] == "registered"
            assert "unreachable" in kinds

    run(scenario)
