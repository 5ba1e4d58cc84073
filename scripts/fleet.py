"""One credit budget for the whole fleet behind one IP (pure: no I/O).

Deribit meters public requests per IP, not per process: about 20 requests/s (10,000 credits/s
at 500 per request, a pool of 50,000 credits = 100 requests of burst), subscriptions from one
subscribe pool, and 32 connections (WebSockets and HTTP requests in flight together). A
deployment runs one real-time collector per currency plus one REST collector (bars, greeks,
indices) and one funding collector, all behind the same address. Each process takes the share
of the fleet total that its weight gives it, so the sum stays within the limits however many
currencies `CURRENCIES` lists (tests/unit/test_fleet.py checks 1 to 7).

Weights follow the load: a real-time collector snapshots every option's order book each
`ORDERBOOK_SNAPSHOT_INTERVAL_S` and repairs trades (about 2.7 requests/s for an 800-option
chain at the default 300 s); the REST collector polls bars each minute and greeks once an hour
per option; the funding collector a few requests every 10 minutes.
"""

from __future__ import annotations

import math

ROLES = ("ws", "rest", "funding")
WEIGHTS = {"ws": 4.0, "rest": 2.0, "funding": 1.0}
DERIBIT_REQUESTS_PER_S = 20.0  # public requests per IP (10,000 credits/s / 500)
DERIBIT_BURST_REQUESTS = 100  # the credit pool (50,000 / 500)
DERIBIT_CONNECTIONS_PER_IP = 32
FLEET_BURST_REQUESTS = 90  # the pool less headroom for a manual backfill or verify
WS_HTTP_IN_FLIGHT = 3  # per real-time collector: chain, trade repairer, book snapshots
REST_COLLECTORS_IN_FLIGHT = 4  # the REST and funding collectors' sequential pollers
MAX_WS_CONNECTIONS = 4  # WS_MAX_CONNECTIONS's default
MAX_CURRENCIES = 7  # beyond this one IP cannot give each real-time collector a socket


def fleet_weight(currencies: int) -> float:
    """The weights of every process: one real-time collector per currency, plus REST and funding."""
    return currencies * WEIGHTS["ws"] + WEIGHTS["rest"] + WEIGHTS["funding"]


def rest_requests_share(total_per_s: float, role: str, currencies: int) -> float:
    """This process's requests/s out of the fleet's `total_per_s`."""
    return total_per_s * WEIGHTS[role] / fleet_weight(currencies)


def rest_burst_share(role: str, currencies: int) -> int:
    """This process's burst (requests) out of the fleet's FLEET_BURST_REQUESTS."""
    return max(1, math.floor(FLEET_BURST_REQUESTS * WEIGHTS[role] / fleet_weight(currencies)))


def subscribe_share(role: str, currencies: int) -> float:
    """The fraction of Deribit's subscribe pool a process may spend: the real-time collectors
    split it (the REST collectors subscribe to nothing)."""
    return 1.0 / currencies if role == "ws" else 0.0


def ws_connections_share(currencies: int, cap: int = MAX_WS_CONNECTIONS) -> int:
    """WebSockets per real-time collector so that every socket and request in flight of the
    fleet fits Deribit's 32 connections per IP."""
    room = (DERIBIT_CONNECTIONS_PER_IP - REST_COLLECTORS_IN_FLIGHT) // max(1, currencies)
    return max(1, min(cap, room - WS_HTTP_IN_FLIGHT))
