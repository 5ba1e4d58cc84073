"""Deterministic price paths and a Black-76 option model for the fake market.

Index, DVOL, perpetual premium and funding are pure functions of (seed, currency, time): any
past second or hour can be recomputed without storing it, so REST history of any length
agrees with what the stream sent at that time.
"""

from __future__ import annotations

import math
import random

MASK64 = (1 << 64) - 1
MS_PER_YEAR = 365 * 86_400_000
HOUR_MS = 3_600_000
_SQRT2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def hash01(a: int, b: int, c: int) -> float:
    """A uniform float in [0, 1) from three ints (splitmix64); stable across processes."""
    x = (a * 0x9E3779B97F4A7C15 + b * 0xC2B2AE3D27D4EB4F + c) & MASK64
    for _ in range(2):
        x = (x + 0x9E3779B97F4A7C15) & MASK64
        x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK64
        x ^= x >> 31
    return x / 18446744073709551616.0


class Path:
    """`level * exp(sum of slow sines + per-second noise)`: smooth, bounded, any second."""

    def __init__(
        self,
        seed: int,
        salt: int,
        level: float,
        terms: tuple[tuple[float, float], ...],
        noise: float,
    ) -> None:
        rng = random.Random(seed * 1_000_003 + salt)
        self.seed = seed
        self.salt = salt
        self.level = level
        self.noise = noise
        self.terms = tuple(
            (amp, 2 * math.pi / period_s, rng.uniform(0, 2 * math.pi)) for amp, period_s in terms
        )
        self._sec = -1
        self._value = level

    def log_offset(self, sec: int) -> float:
        x = sum(amp * math.sin(w * sec + phi) for amp, w, phi in self.terms)
        if self.noise:
            x += self.noise * (hash01(self.seed, self.salt, sec) - 0.5)
        return x

    def at_second(self, sec: int) -> float:
        if sec != self._sec:
            self._value = self.level * math.exp(self.log_offset(sec))
            self._sec = sec
        return self._value


class PriceModel:
    """Index, DVOL, perpetual premium and hourly funding of one currency."""

    def __init__(self, seed: int, salt: int, spot: float, dvol: float, price_digits: int) -> None:
        self.digits = price_digits
        self.index_path = Path(
            seed,
            salt * 10 + 1,
            spot,
            ((0.002, 3_607.0), (0.006, 21_611.0), (0.015, 151_003.0), (0.03, 777_001.0)),
            0.0003,
        )
        self.dvol_path = Path(seed, salt * 10 + 2, dvol, ((0.03, 7_211.0), (0.08, 97_007.0)), 0.002)
        self.premium_path = Path(seed, salt * 10 + 3, 1.0, ((0.6, 5_003.0), (0.9, 61_001.0)), 0.0)
        self.seed = seed
        self.salt = salt
        self._interest_8h = (-1, 0.0)

    def index(self, ms: int) -> float:
        return round(self.index_path.at_second(ms // 1000), self.digits)

    def dvol(self, ms: int) -> float:
        """DVOL in percent, as `deribit_volatility_index` sends it."""
        return round(self.dvol_path.at_second(ms // 1000), 2)

    def atm_vol(self, ms: int) -> float:
        return self.dvol_path.at_second(ms // 1000) / 100.0

    def premium(self, ms: int) -> float:
        """Perpetual mark premium over the index (fraction), a few bp either way."""
        return (math.log(self.premium_path.at_second(ms // 1000)) + 0.15) * 0.0004

    def perp_price(self, ms: int) -> float:
        return round(self.index_path.at_second(ms // 1000) * (1.0 + self.premium(ms)), self.digits)

    def forward(self, ms: int, expiry_ms: int) -> float:
        years = max(0.0, (expiry_ms - ms) / MS_PER_YEAR)
        return self.index_path.at_second(ms // 1000) * (1.0 + 0.06 * years)

    def interest_1h(self, hour_ms: int) -> float:
        """Funding paid for the hour ending at `hour_ms` (a multiple of 3,600,000)."""
        h = hour_ms // HOUR_MS
        base = 0.0000125 + 0.00002 * math.sin(h / 7.3 + self.salt)
        return base + 0.00001 * (hash01(self.seed, self.salt * 10 + 4, h) - 0.5)

    def interest_8h(self, hour_ms: int) -> float:
        if self._interest_8h[0] != hour_ms:  # every perpetual ticker asks, twice
            value = sum(self.interest_1h(hour_ms - k * HOUR_MS) for k in range(8))
            self._interest_8h = (hour_ms, value)
        return self._interest_8h[1]

    def current_funding(self, ms: int) -> float:
        """Instantaneous 8h-equivalent rate (`perpetual.interest`, ticker `current_funding`)."""
        return max(-0.005, min(0.005, self.premium(ms) * 0.5 + 0.0001))


def norm_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / _SQRT2))


def smile_vol(atm: float, strike: float, forward: float, years: float) -> float:
    """A plausible smile: convex in log-moneyness scaled by sqrt(T), puts a little richer."""
    t = max(years, 1.0 / (365 * 24))
    x = math.log(strike / forward) / (atm * math.sqrt(t))
    x = max(-4.0, min(4.0, x))
    return atm * (1.0 + 0.03 * x * x - 0.03 * x)


def black76(
    forward: float, strike: float, years: float, sigma: float, is_call: bool
) -> tuple[float, float, float, float, float, float]:
    """(value, delta, gamma, vega per 1 vol point, theta per day, rho per 1%) in USD, r = 0."""
    t = max(years, 1e-7)
    sq = sigma * math.sqrt(t)
    d1 = (math.log(forward / strike) + 0.5 * sq * sq) / sq
    d2 = d1 - sq
    pdf = _INV_SQRT_2PI * math.exp(-0.5 * d1 * d1)
    if is_call:
        nd1 = norm_cdf(d1)
        nd2 = norm_cdf(d2)
        value = forward * nd1 - strike * nd2
        delta = nd1
        rho = strike * t * nd2 / 100.0
    else:
        nd1 = norm_cdf(-d1)
        nd2 = norm_cdf(-d2)
        value = strike * nd2 - forward * nd1
        delta = -nd1
        rho = -strike * t * nd2 / 100.0
    gamma = pdf / (forward * sq)
    vega = forward * pdf * math.sqrt(t) / 100.0
    theta = -forward * pdf * sigma / (2.0 * math.sqrt(t)) / 365.0
    return max(value, 0.0), delta, gamma, vega, theta, rho


def black76_iv(
    price_usd: float, forward: float, strike: float, years: float, is_call: bool
) -> float | None:
    """The sigma at which `black76` gives `price_usd` (bisection, scalar; independent of the
    collector's vectorized solver); None when no sigma in (0.0001, 20] does."""
    intrinsic = max(0.0, forward - strike) if is_call else max(0.0, strike - forward)
    if years <= 0 or price_usd <= intrinsic or price_usd >= (forward if is_call else strike):
        return None
    lo, hi = 1e-4, 20.0
    if black76(forward, strike, years, hi, is_call)[0] < price_usd:
        return None
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if black76(forward, strike, years, mid, is_call)[0] < price_usd:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def decimals_of(step: float) -> int:
    """Digits after the point needed to write multiples of `step` exactly."""
    text = f"{step:.10f}".rstrip("0")
    return len(text.split(".")[1]) if "." in text else 0


def floor_to(price: float, tick: float, digits: int) -> float:
    return round(math.floor(price / tick + 1e-9) * tick, digits)


def ceil_to(price: float, tick: float, digits: int) -> float:
    return round(math.ceil(price / tick - 1e-9) * tick, digits)


def nearest(price: float, tick: float, digits: int) -> float:
    return round(round(price / tick) * tick, digits)
