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


def _erfc_fit(a: Floats) -> Floats:
    """t exp(-a^2 + poly(t)) of Numerical Recipes' `erfcc` for a = |z|: erfc(|z|), with a
    fractional error below 1.2e-7 everywhere, tails included (the wings keep their relative
    precision); erfc(-|z|) is 2 minus it."""
    t = 1.0 / (1.0 + 0.5 * a)
    poly = t * _ERFC_COEFFS[-1] + _ERFC_COEFFS[-2]  # Horner, highest power first
    for c in _ERFC_COEFFS[-3::-1]:
        poly = poly * t + c
    with np.errstate(over="ignore", under="ignore"):  # exp(-a * a) is 0 far out: right
        return t * np.exp(-a * a + poly)


def norm_cdf(x: Floats) -> Floats:
    """The standard normal distribution function, elementwise: 0.5 erfc(-z), z = x / sqrt(2),
    from the fit above. Near the middle, where an at-the-money value is a small difference of
    two of these, erf's Taylor series (exact to double precision for |z| < 0.5) replaces the
    fit; each element is computed by one of the two only."""
    z = x * _INV_SQRT2
    a = np.abs(z)
    is_near = a < 0.5
    near = np.nonzero(is_near)[0]
    if near.size == 0:
        r = _erfc_fit(a)
        neg = np.nonzero(z > 0.0)[0]  # erfc(-z) with -z < 0
        r[neg] = 2.0 - r[neg]
        return 0.5 * r
    out = np.empty_like(z)
    if near.size < z.size:
        far = np.nonzero(~is_near)[0]
        zf = z[far]
        r = _erfc_fit(a[far])
        neg = np.nonzero(zf > 0.0)[0]
        r[neg] = 2.0 - r[neg]
        out[far] = 0.5 * r
    zn = z[near]
    z2 = zn * zn
    poly = z2 * _ERF_SERIES[-1] + _ERF_SERIES[-2]
    for c in _ERF_SERIES[-3::-1]:
        poly = poly * z2 + c
    out[near] = 0.5 + zn * poly
    return out


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
    nonneg = x >= 0.0
    ex = np.exp(x)
    upper = np.where(nonneg, 1.0, ex)  # the OTM option is worth less than this
    ok = (q > MIN_TIME_VALUE) & (q < upper) & np.isfinite(q) & np.isfinite(x)
    out = np.full(q.shape, np.nan)
    idx = np.nonzero(ok)[0]
    if idx.size == 0:
        return out
    qa, neg_x, ex = q[idx], -x[idx], ex[idx]
    theta = np.where(nonneg[idx], 1.0, -1.0)
    target = np.log(qa)
    # A start near the root: sqrt(2 pi) q* is below it for every strike, and far in the
    # wings, where q ~ exp(-x^2 / 2 s^2), |x| / sqrt(-2 ln q*) is close to it.
    s = np.maximum(_SQRT_2PI * qa, np.abs(neg_x) / np.sqrt(-2.0 * target))
    lo = np.zeros_like(s)
    hi = np.full_like(s, np.inf)
    found = np.full(idx.size, np.nan)  # did not converge: no value rather than a wrong one
    pos = np.arange(idx.size)  # the elements still iterating, as positions in `found`
    for _ in range(MAX_ITERATIONS):
        # otm_value (its d1 and d2 kept for the derivatives) with exp(x) computed once.
        d1 = neg_x / s + 0.5 * s
        d2 = d1 - s
        val = theta * (norm_cdf(theta * d1) - ex * norm_cdf(theta * d2))
        vega = _INV_SQRT_2PI * np.exp(-0.5 * d1 * d1)
        f = np.log(val) - target
        # Halley's step on f = ln q - ln q*: f' = q'/q with q' the vega, and
        # q'' = vega * d1 * d2 / s, so f''/f' = d1 (d1 - s) / s - f'.
        g = vega / val
        h = d1 * d2 / s - g
        newton = f / g
        step = newton / (1.0 - 0.5 * newton * h)
        # Underflow (val 0, f -inf) counts as below the root.
        lo = np.where(f >= 0.0, lo, s)
        hi = np.where(f > 0.0, s, hi)
        new = s - step
        bad = np.nonzero(~np.isfinite(new) | (new < lo) | (new > hi))[0]
        if bad.size:
            hb, lb = hi[bad], lo[bad]
            new[bad] = np.where(np.isfinite(hb), 0.5 * (lb + hb), 2.0 * s[bad])
        done = np.abs(new - s) <= TOLERANCE * new
        s = new
        if done.any():
            found[pos[done]] = s[done]
            left = np.nonzero(~done)[0]
            if left.size == 0:
                break
            pos, s, lo, hi = pos[left], s[left], lo[left], hi[left]
            neg_x, ex, theta, target = neg_x[left], ex[left], theta[left], target[left]
    out[idx] = found
    return out


def implied_vol_pct(
    price: Floats,
    forward: Floats,
    strike: Floats,
    years: Floats,
    is_call: NDArray[np.bool_],
    linear: NDArray[np.bool_],
    first: NDArray[np.intp] | None = None,
) -> Floats:
    """Black-76 IV in percent of option prices (coin for inverse, USDC for linear options,
    see the module doc); NaN where the inputs admit none (no price, expired, below
    intrinsic value, no forward).

    `first`, when given, is for each element the index of an element with the same price,
    forward, strike and option (often itself): the total volatility is solved once for those,
    and only the time to expiry is each element's own."""
    with np.errstate(all="ignore"):
        valid = (years > 0.0) & (forward > 0.0) & (price > 0.0) & (strike > 0.0)
        if first is None:
            return (
                100.0
                * _total_vol(price, forward, strike, is_call, linear)
                / np.sqrt(np.where(valid, years, np.nan))
            )
        u = np.nonzero(first == np.arange(first.size))[0]
        s = _total_vol(price[u], forward[u], strike[u], is_call[u], linear[u])
        back = np.empty(first.size, dtype=np.intp)
        back[u] = np.arange(u.size)
        return 100.0 * s[back[first]] / np.sqrt(np.where(valid, years, np.nan))


def _total_vol(
    price: Floats,
    forward: Floats,
    strike: Floats,
    is_call: NDArray[np.bool_],
    linear: NDArray[np.bool_],
) -> Floats:
    p = np.where(linear, price / forward, price)  # per unit of forward
    k = strike / forward
    x = np.log(k)
    itm_call = is_call & (x < 0.0)
    itm_put = ~is_call & (x >= 0.0)
    q = np.where(itm_call, p - (1.0 - k), np.where(itm_put, p - (k - 1.0), p))
    q = np.where((forward > 0.0) & (price > 0.0) & (strike > 0.0), q, np.nan)
    return _solve(q, x)
