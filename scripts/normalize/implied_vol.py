"""Black-76 implied volatility on numpy arrays: option prices -> IV in percent.

Pure (numpy only). Deribit prices options on the expiry's forward with no discounting
(`interest_rate` 0 in its tickers), so with F the forward and K the strike:

- inverse options (BTC, ETH) are quoted in the coin: price_usd = price_coin * F, so the price
  per unit of forward is the coin price itself;
- linear options (SOL_USDC and co.) are quoted in USDC: the price per unit of forward is
  price_usdc / F.

The inversion works on that normalized price with k = K / F and total volatility s = sigma *
sqrt(T): an in-the-money option is turned into the out-of-the-money one by put-call parity
(c - p = 1 - k), whose value q(s) has no intrinsic part, and Halley's method runs on
ln q(s) - ln q*, which is concave and increasing in s, from a start near the root (below it
for near-the-money strikes, where q(s) <= s / sqrt(2 pi)); three or four steps reach double
precision, and a bracket with bisection catches the rest (underflow far out in the wings).
A price at or below intrinsic value, or at or above the forward (the option's upper bound),
has no IV: NaN.

Why not a library: py_vollib_vectorized (last release 2021) pulls numba and scipy (LLVM, JIT
compilation at start, over 100 MB on a NAS image) and py_lets_be_rational is scalar pure
Python (tens of microseconds a call, per row); this module is one numpy pass per flush batch.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

Floats = NDArray[np.float64]

YEAR_S = 365.0 * 86_400.0  # Deribit's year for time to expiry (ACT/365)
_SQRT_2PI = math.sqrt(2.0 * math.pi)
_INV_SQRT_2PI = 1.0 / _SQRT_2PI
_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_SQRT_PI = math.sqrt(math.pi)
# erf(z) / 2 = z * sum c_n z^2n with c_n = (-1)^n / (n! (2n + 1) sqrt(pi)); 14 terms reach
# double precision for |z| < 0.5 (z^27 / (13! 27) < 1e-17).
_ERF_SERIES = tuple((-1) ** n / (math.factorial(n) * (2 * n + 1) * _SQRT_PI) for n in range(14))
MAX_ITERATIONS = 60
# A time value below this (per unit forward) is float noise of the parity, not a price.
MIN_TIME_VALUE = 1e-12
# A Halley step this small (relative) leaves an error of about its cube (~1e-15): done.
TOLERANCE = 1e-5
# Numerical Recipes' erfcc: erfc(z) ~ t exp(-z^2 + sum c_i t^i), t = 1 / (1 + z/2), z >= 0.
_ERFC_COEFFS = (
    -1.26551223,
    1.00002368,
    0.37409196,
    0.09678418,
    -0.18628806,
    0.27886807,
    -1.13520398,
    1.48851587,
    -0.82215223,
    0.17087277,
)


def _erfc(z: Floats) -> Floats:
    """erfc with a fractional error below 1.2e-7 everywhere, tails included (the Chebyshev
    fit of Numerical Recipes' `erfcc`): the wings keep their relative precision."""
    a = np.abs(z)
    t = 1.0 / (1.0 + 0.5 * a)
    poly = np.full_like(t, _ERFC_COEFFS[-1])
    for c in _ERFC_COEFFS[-2::-1]:  # Horner, highest power first
        poly = poly * t + c
    r = t * np.exp(-a * a + poly)
    return np.where(z >= 0.0, r, 2.0 - r)


def norm_cdf(x: Floats) -> Floats:
    """The standard normal distribution function, elementwise. Near the middle, where an
    at-the-money value is a small difference of two of these, erf's Taylor series (exact to
    double precision for |z| < 0.5) replaces the fit."""
    z = x * _INV_SQRT2
    with np.errstate(over="ignore"):  # exp(-a * a) underflows to 0 far out: the right value
        fit = 0.5 * _erfc(-z)
    near = np.nonzero(np.abs(z) < 0.5)[0]
    if near.size:
        zn = z[near]
        z2 = zn * zn
        poly = np.full_like(zn, _ERF_SERIES[-1])
        for c in _ERF_SERIES[-2::-1]:
            poly = poly * z2 + c
        fit[near] = 0.5 + zn * poly
    return fit


def otm_value(x: Floats, s: Floats, theta: Floats) -> Floats:
    """Undiscounted Black value per unit forward of the out-of-the-money option of log
    strike x = ln(K/F) at total volatility s: a call (theta +1) for x >= 0, else a put."""
    d1 = -x / s + 0.5 * s
    d2 = d1 - s
    return theta * (norm_cdf(theta * d1) - np.exp(x) * norm_cdf(theta * d2))


def black76_price(
    forward: Floats, strike: Floats, years: Floats, sigma: Floats, is_call: NDArray[np.bool_]
) -> Floats:
    """Undiscounted Black-76 value in the forward's currency (for tests and round trips)."""
    x = np.log(strike / forward)
    s = sigma * np.sqrt(years)
    theta = np.where(x >= 0.0, 1.0, -1.0)
    q = otm_value(x, s, theta) * forward
    k = strike / forward
    itm_call = is_call & (x < 0.0)
    itm_put = ~is_call & (x >= 0.0)
    q = np.where(itm_call, q + forward * (1.0 - k), q)
    return np.where(itm_put, q + forward * (k - 1.0), q)


def implied_total_vol(q: Floats, x: Floats) -> Floats:
    """Total volatility s with otm_value(x, s) = q (NaN where there is none)."""
    with np.errstate(all="ignore"):  # inf and underflow are expected far in the wings
        return _solve(q, x)


def _solve(q: Floats, x: Floats) -> Floats:
    theta = np.where(x >= 0.0, 1.0, -1.0)
    upper = np.where(x >= 0.0, 1.0, np.exp(x))  # the OTM option is worth less than this
    ok = (q > MIN_TIME_VALUE) & (q < upper) & np.isfinite(q) & np.isfinite(x)
    out = np.full(q.shape, np.nan)
    idx = np.nonzero(ok)[0]
    if idx.size == 0:
        return out
    qa, xa, th = q[idx], x[idx], theta[idx]
    # A start near the root: sqrt(2 pi) q* is below it for every strike, and far in the
    # wings, where q ~ exp(-x^2 / 2 s^2), |x| / sqrt(-2 ln q*) is close to it.
    s = np.maximum(_SQRT_2PI * qa, np.abs(xa) / np.sqrt(-2.0 * np.log(qa)))
    lo = np.zeros_like(s)
    hi = np.full_like(s, np.inf)
    target = np.log(qa)
    done = np.zeros(s.shape, dtype=bool)
    for _ in range(MAX_ITERATIONS):
        act = np.nonzero(~done)[0]
        if act.size == 0:
            break
        sa, xx, tt = s[act], xa[act], th[act]
        val = otm_value(xx, sa, tt)
        d1 = -xx / sa + 0.5 * sa
        vega = _INV_SQRT_2PI * np.exp(-0.5 * d1 * d1)
        f = np.log(val) - target[act]
        # Halley's step on f = ln q - ln q*: f' = q'/q with q' the vega, and
        # q'' = vega * d1 * d2 / s, so f''/f' = d1 (d1 - s) / s - f'.
        g = vega / val
        h = d1 * (d1 - sa) / sa - g
        newton = f / g
        step = newton / (1.0 - 0.5 * newton * h)
        below = ~(f >= 0.0)  # underflow (val 0, f -inf) counts as below the root
        lo[act] = np.where(below, sa, lo[act])
        hi[act] = np.where(f > 0.0, sa, hi[act])
        new = sa - step
        bad = ~np.isfinite(new) | (new < lo[act]) | (new > hi[act])
        fallback = np.where(np.isfinite(hi[act]), 0.5 * (lo[act] + hi[act]), 2.0 * sa)
        new = np.where(bad, fallback, new)
        s[act] = new
        done[act] = np.abs(new - sa) <= TOLERANCE * new
    s[~done] = np.nan  # did not converge: no value rather than a wrong one
    out[idx] = s
    return out


def implied_vol_pct(
    price: Floats,
    forward: Floats,
    strike: Floats,
    years: Floats,
    is_call: NDArray[np.bool_],
    linear: NDArray[np.bool_],
) -> Floats:
    """Black-76 IV in percent of option prices (coin for inverse, USDC for linear options,
    see the module doc); NaN where the inputs admit none (no price, expired, below
    intrinsic value, no forward)."""
    with np.errstate(all="ignore"):
        p = np.where(linear, price / forward, price)  # per unit of forward
        k = strike / forward
        x = np.log(k)
        itm_call = is_call & (x < 0.0)
        itm_put = ~is_call & (x >= 0.0)
        q = np.where(itm_call, p - (1.0 - k), np.where(itm_put, p - (k - 1.0), p))
        valid = (years > 0.0) & (forward > 0.0) & (price > 0.0) & (strike > 0.0)
        q = np.where(valid, q, np.nan)
        s = implied_total_vol(q, x)
        return 100.0 * s / np.sqrt(np.where(valid, years, np.nan))
