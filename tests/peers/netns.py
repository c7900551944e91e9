"""A network namespace of a test's own, joined to this one by a veth pair: a LAN nothing leaves.

    with veth_namespace("lbweb", host="198.51.100.1", inside="198.51.100.2") as (ns, ns_if):
        subprocess.run(["ip", "netns", "exec", ns, ...])

Tests that may run at the same time give each pair its own prefix and subnet (TEST-NET-2,
TEST-NET-3): two veth pairs in one subnet would route each other's packets.
"""
from __future__ import annotations

import contextlib
import os
import subprocess
from typing import Iterator


def ip(*args: str, ns: str | None = None) -> str:
    argv = ["ip", *(["netns", "exec", ns, "ip"] if ns else []), *args]
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


@contextlib.contextmanager
def veth_namespace(prefix: str, *, host: str, inside: str, bits: int = 24) -> Iterator[tuple[str, str]]:
    """(namespace, its interface): ``inside`` is its address, ``host`` ours on the other end."""
    tag = f"{os.getpid() % 100000}"
    ns, host_if, ns_if = f"{prefix}{tag}", f"{prefix[:3]}h{tag}", f"{prefix[:3]}n{tag}"
    subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    ip("netns", "add", ns)
    try:
        ip("link", "add", host_if, "type", "veth", "peer", "name", ns_if)
        ip("link", "set", ns_if, "netns", ns)
        ip("addr", "add", f"{host}/{bits}", "dev", host_if)
        ip("link", "set", host_if, "up")
        ip("addr", "add", f"{inside}/{bits}", "dev", ns_if, ns=ns)
        ip("link", "set", ns_if, "up", ns=ns)
        ip("link", "set", "lo", "up", ns=ns)
        yield ns, ns_if
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)  # takes the veth pair with it
        subprocess.run(["ip", "link", "del", host_if], capture_output=True)
