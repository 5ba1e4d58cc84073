"""The public REST methods of the fake exchange, answered from the market's state.

`RestApi.handle(method, params, history=...)` returns the JSON-RPC `result` or raises
`RpcError` the way Deribit does (§4.3, §7). Parameters may arrive as strings (HTTP query);
they are coerced like Deribit coerces them. Trade and chart methods live in rest_trades.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.fake_deribit.errors import (
    INTERNAL_SERVER_ERROR,
    RpcError,
    instrument_not_found,
    invalid_params,
    method_not_found,
)
from tests.fake_deribit.instruments import Instrument, expiry_code
from tests.fake_deribit.market import Market
from tests.fake_deribit.payloads import book_summary, order_book, ticker
from tests.fake_deribit.rest_params import Params
from tests.fake_deribit.rest_trades import TradeMethods

SERVER_VERSION = "1.2.26"
API_CURRENCIES = ("BTC", "ETH", "USDC", "USDT", "EURR")
INSTRUMENT_KINDS = ("future", "option", "spot", "future_combo", "option_combo")
ORDER_BOOK_DEPTHS = (1, 5, 10, 20, 50, 100, 1000, 10000)
_CURRENCY_INFO = {
    "BTC": ("BITCOIN", "Bitcoin", 0.0001, 8),
    "ETH": ("ETHER", "Ethereum", 0.0006, 6),
    "USDC": ("ETH", "USD Coin", 1.0, 6),
}


class RestApi:
    """Deribit's public methods (names without the `public/` prefix)."""

    def __init__(self, market: Market) -> None:
        self.market = market
        self.trades = TradeMethods(market)
        self._methods: dict[str, Callable[[Params], Any]] = {
            "get_instruments": self.get_instruments,
            "get_instrument": self.get_instrument,
            "get_order_book": self.get_order_book,
            "get_order_book_by_instrument_id": self.get_order_book_by_instrument_id,
            "ticker": self.ticker,
            "get_book_summary_by_currency": self.get_book_summary_by_currency,
            "get_book_summary_by_instrument": self.get_book_summary_by_instrument,
            "get_index_price": self.get_index_price,
            "get_index_price_names": self.get_index_price_names,
            "get_supported_index_names": self.get_supported_index_names,
            "get_time": lambda p: self.market.now_ms,
            "get_currencies": self.get_currencies,
            "get_expirations": self.get_expirations,
            "get_contract_size": self.get_contract_size,
            "status": lambda p: {"locked": "false", "locked_indices": []},
            "test": self.test,
            **self.trades.methods(),
        }

    def handle(self, method: str, params: dict[str, Any] | None, *, history: bool = False) -> Any:
        name = method.removeprefix("public/")
        fn = self._methods.get(name)
        if fn is None:
            raise method_not_found()
        p = Params(params or {}, history=history)
        return fn(p)

    # -- helpers ---------------------------------------------------------------------------
    def _instrument(self, p: Params, param: str = "instrument_name") -> Instrument:
        name = p.string(param, required=True)
        inst = self.market.instrument(name)
        if inst is None:
            raise instrument_not_found()
        return inst

    def _api_currency(self, p: Params, *, allow_any: bool) -> str:
        cur = p.string("currency", required=True)
        if cur in API_CURRENCIES or (allow_any and cur == "any"):
            return cur
        raise invalid_params("invalid currency", "currency")

    def _model(self, inst: Instrument) -> Any:
        return self.market.currency_of(inst).model

    # -- instruments -----------------------------------------------------------------------
    def get_instruments(self, p: Params) -> list[dict[str, Any]]:
        cur = self._api_currency(p, allow_any=True)
        kind = p.choice("kind", (*INSTRUMENT_KINDS, "any"), default=None)
        expired = p.boolean("expired", default=False)
        return self.market.instruments(cur, None if kind == "any" else kind, expired)

    def get_instrument(self, p: Params) -> dict[str, Any]:
        return self._instrument(p).info

    def get_contract_size(self, p: Params) -> dict[str, Any]:
        return {"contract_size": self._instrument(p).contract_size}

    def get_expirations(self, p: Params) -> dict[str, Any]:
        cur = p.string("currency", required=True)
        if cur not in (*API_CURRENCIES, "any", "grouped"):
            raise invalid_params("invalid currency", "currency")
        kind = p.choice("kind", ("future", "option", "any"), default="any")
        if cur == "grouped":
            return {
                c.lower(): self._expirations(c, kind)
                for c in sorted({i.group for i in self.market.by_name.values()})
            }
        return self._expirations(cur, kind)

    def _expirations(self, cur: str, kind: str) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for k in ("future", "option"):
            if kind not in ("any", k):
                continue
            live = [
                i
                for i in self.market.by_name.values()
                if i.kind == k
                and not i.expired
                and (cur == "any" or i.group == cur)
                and i.creation_ms <= self.market.now_ms
            ]
            dated = sorted({i.expiry_ms for i in live if not i.is_perp})
            codes = [expiry_code(e) for e in dated]
            if any(i.is_perp for i in live):
                codes.append("PERPETUAL")
            out[k] = codes
        return out

    # -- books and tickers -----------------------------------------------------------------
    def get_order_book(self, p: Params) -> dict[str, Any]:
        inst = self._instrument(p)
        return self._order_book(inst, p)

    def get_order_book_by_instrument_id(self, p: Params) -> dict[str, Any]:
        iid = p.integer("instrument_id", required=True)
        for inst in self.market.by_name.values():
            if inst.instrument_id == iid and inst.creation_ms <= self.market.now_ms:
                return self._order_book(inst, p)
        raise invalid_params("instrument not found", "instrument_id")

    def _order_book(self, inst: Instrument, p: Params) -> dict[str, Any]:
        depth = p.integer("depth", default=20)
        if depth not in ORDER_BOOK_DEPTHS:
            raise invalid_params(
                "must be one of " + ", ".join(map(str, ORDER_BOOK_DEPTHS)), "depth"
            )
        return order_book(self._model(inst), inst, self.market.now_ms, depth)

    def ticker(self, p: Params) -> dict[str, Any]:
        inst = self._instrument(p)
        return ticker(self._model(inst), inst, self.market.now_ms)

    def get_book_summary_by_currency(self, p: Params) -> list[dict[str, Any]]:
        cur = self._api_currency(p, allow_any=False)
        kind = p.choice("kind", (*INSTRUMENT_KINDS, "any"), default=None)
        now = self.market.now_ms
        out = []
        for cs in self.market.currencies.values():
            if cs.setup.api_currency != cur:
                continue
            for inst in cs.active():
                if kind in (None, "any", inst.kind) and inst.creation_ms <= now:
                    out.append(book_summary(cs.model, inst, now))
        return out

    def get_book_summary_by_instrument(self, p: Params) -> list[dict[str, Any]]:
        inst = self._instrument(p)
        return [book_summary(self._model(inst), inst, self.market.now_ms)]

    # -- indices ---------------------------------------------------------------------------
    def get_index_price(self, p: Params) -> dict[str, Any]:
        name = p.string("index_name", required=True)
        cs = self.market.by_index.get(name)
        if cs is None:
            raise invalid_params("wrong format", "index_name")
        price = cs.model.index(self.market.now_ms)
        return {"estimated_delivery_price": price, "index_price": price}

    def get_index_price_names(self, p: Params) -> list[dict[str, Any]]:
        return [{"name": name} for name in self.market.by_index]

    def get_supported_index_names(self, p: Params) -> list[str]:
        return list(self.market.by_index)

    # -- reference -------------------------------------------------------------------------
    def get_currencies(self, p: Params) -> list[dict[str, Any]]:
        out = []
        for cur in sorted({cs.setup.api_currency for cs in self.market.currencies.values()}):
            coin, long_name, fee, decimals = _CURRENCY_INFO.get(cur, ("TOKEN", cur, 0.0, 6))
            out.append(
                {
                    "coin_type": coin,
                    "currency": cur,
                    "currency_long": long_name,
                    "min_confirmations": 1,
                    "min_withdrawal_fee": fee,
                    "withdrawal_fee": fee,
                    "withdrawal_priorities": [],
                    "network_currency": cur if cur != "USDC" else "ETH",
                    "network_fee": fee,
                    "decimals": decimals,
                }
            )
        return out

    def test(self, p: Params) -> dict[str, Any]:
        if p.string("expected_result", default=None) == "exception":
            raise RpcError(INTERNAL_SERVER_ERROR, None, "expected_result=exception")
        return {"version": SERVER_VERSION}
