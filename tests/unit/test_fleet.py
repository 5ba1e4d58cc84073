"""The fleet's credit budget: however many currencies, the processes' shares fit Deribit's
per-IP limits (requests/s, burst, subscribe pool, 32 connections), as each process derives
them from the same environment the compose file gives every service."""

from __future__ import annotations

import pytest

from scripts import fleet
from scripts.config import ConfigError, Settings, load_settings

ALL = ("BTC", "ETH", "SOL", "XRP", "BNB", "PAXG", "AVAX")


def fleet_settings(codes: tuple[str, ...], **extra: str) -> list[tuple[str, Settings]]:
    """Every process of a deployment of `codes`, as the compose file configures them."""
    env = {
        "DATABASE_URL": "postgresql://chaintape@db/chaintape",
        "CURRENCIES": ",".join(codes),
        "FLEET_REST_REQUESTS_PER_S": "18",
        **extra,
    }
    out = [(f"ws-{c}", load_settings({**env, "CURRENCY": c}, fleet_role="ws")) for c in codes]
    out.append(("rest", load_settings(env, need_currency="many", fleet_role="rest")))
    out.append(("funding", load_settings(env, need_currency="many", fleet_role="funding")))
    return out


@pytest.mark.parametrize("n", [1, 2, 3, 5, 7])
def test_shares_fit_deribits_per_ip_limits(n: int) -> None:
    procs = fleet_settings(ALL[:n])
    ws = [s for name, s in procs if name.startswith("ws-")]
    assert len(procs) == n + 2
    total = sum(s.rest_requests_per_s for _, s in procs)
    assert total == pytest.approx(18.0)
    assert total <= fleet.DERIBIT_REQUESTS_PER_S
    assert sum(s.rest_burst for _, s in procs) <= fleet.DERIBIT_BURST_REQUESTS
    assert sum(s.subscribe_share for s in ws) == pytest.approx(1.0)
    connections = sum(s.ws_max_connections + fleet.WS_HTTP_IN_FLIGHT for s in ws)
    assert connections + fleet.REST_COLLECTORS_IN_FLIGHT <= fleet.DERIBIT_CONNECTIONS_PER_IP
    # a real-time collector of an 800-option chain needs ~2.7 requests/s for its book
    # snapshots at the default 300 s interval: up to 3 currencies it keeps that pace
    if n <= 3:
        assert min(s.rest_requests_per_s for s in ws) >= 2.7
    print(
        f"[fleet] {n} currencies: "
        + ", ".join(f"{name} {s.rest_requests_per_s:.2f}/s" for name, s in procs[n - 1 :])
    )


def test_seed_default_four_processes_at_5_per_s_was_the_whole_budget() -> None:
    """Without a fleet total each process keeps REST_REQUESTS_PER_S (5): 2 currencies make 20/s,
    a third passes Deribit's limit; that is what the fleet total replaces."""
    env = {"DATABASE_URL": "postgresql://u@h/d", "CURRENCIES": "BTC,ETH,SOL"}
    assert load_settings({**env, "CURRENCY": "SOL"}, fleet_role="ws").rest_requests_per_s == 5.0


def test_an_explicit_share_wins() -> None:
    procs = dict(fleet_settings(("BTC", "ETH"), REST_REQUESTS_PER_S="2", WS_MAX_CONNECTIONS="1"))
    assert procs["ws-BTC"].rest_requests_per_s == 2.0
    assert procs["ws-BTC"].ws_max_connections == 1


def test_a_collector_outside_the_fleet_list_is_refused() -> None:
    env = {
        "DATABASE_URL": "postgresql://u@h/d",
        "CURRENCIES": "BTC,ETH",
        "CURRENCY": "SOL",
        "FLEET_REST_REQUESTS_PER_S": "18",
    }
    with pytest.raises(ConfigError, match="CURRENCY=SOL is not in CURRENCIES=BTC,ETH"):
        load_settings(env, fleet_role="ws")
    with pytest.raises(ConfigError, match="FLEET_REST_REQUESTS_PER_S=25"):
        load_settings(
            {**env, "CURRENCY": "BTC", "FLEET_REST_REQUESTS_PER_S": "25"}, fleet_role="ws"
        )
    with pytest.raises(ConfigError, match="one IP has room for 7"):
        load_settings(
            {**env, "CURRENCY": "BTC", "CURRENCIES": ",".join((*ALL, "TRX"))}, fleet_role="ws"
        )
