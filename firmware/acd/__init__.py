"""ACD: call-centre queues as pure state machines over call events (STYLE.md §4–6).

``queue.Queue`` is the engine (callers, agents, timers, announcements, callbacks),
``strategies`` the table of pure functions that order free agents for a call,
``events`` the append-only queue log the engine writes, and ``stats`` the figures computed
from that log alone. Import them by module name: the package re-exports nothing, so what reads
only the queue log (the database, the web admin) does not load the engine.
"""
