"""Gamma-Gamma spend model (Fader and Hardie, "The Gamma-Gamma model of monetary value", 2013 note; Fader, Hardie
and Lee 2005, "RFM and CLV").

A customer's transaction values are Gamma(p, nu) (shape p, rate nu) around their own mean p / nu, and
nu ~ Gamma(q, gamma) across customers. For a repeat customer with x transactions of mean value m, the
likelihood of m (the note's eq. 1a; the sum of x values is Gamma(px, nu), and m is that sum over x) is

    log f(m | p, q, gamma, x) = lgamma(px + q) - lgamma(px) - lgamma(q) + q log(gamma)
                                + (px - 1) log(m) + px log(x) - (px + q) log(gamma + m x)

and the conditional expectation of the customer's mean transaction value (the note's eq. 5) is

    E[M | p, q, gamma, m, x] = p (gamma + m x) / (px + q - 1),

a weighted average of the population mean p gamma / (q - 1) and the customer's own mean m.

Fitting needs the per-customer term log(gamma + m x) only: every other term is either constant (summed once,
before the optimisation, e.g. sum of x log m) or depends on x alone (evaluated once per distinct x).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from scipy.special import digamma, gammaln, polygamma

from loyalty.predictive.estimation import FitResult, Objective, maximise, not_fitted

MODEL = "gamma_gamma"
NAMES = ("p", "q", "gamma")


@dataclass(frozen=True)
class GammaGammaParameters:
    """Gamma-Gamma parameters; gamma is in the unit of the transaction values (the reporting currency)."""

    p: float
    q: float
    gamma: float

    @classmethod
    def from_dict(cls, values: dict[str, float]) -> GammaGammaParameters:
        return cls(**{n: float(values[n]) for n in NAMES})

    @property
    def population_mean(self) -> float:
        """p gamma / (q - 1): the mean transaction value of a customer we know nothing about; infinite (NaN
        here) when q <= 1."""
        return self.p * self.gamma / (self.q - 1) if self.q > 1 else math.nan


def _dot(weights: np.ndarray, values: np.ndarray) -> float:
    return float(np.einsum("i,i->", weights, values))


def log_likelihood(params: GammaGammaParameters, x: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Per-customer log f(m | p, q, gamma, x) for repeat customers (x >= 1, m > 0)."""
    x, m = np.asarray(x, dtype=np.float64), np.asarray(m, dtype=np.float64)
    p, q, g = params.p, params.q, params.gamma
    px = p * x
    return (
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * math.log(g)
        + (px - 1) * np.log(m)
        + px * np.log(x)
        - (px + q) * np.log(g + m * x)
    )


def expected_mean_value(params: GammaGammaParameters, x: np.ndarray, m: np.ndarray) -> np.ndarray:
    """E[M | x, m] = p (gamma + m x) / (p x + q - 1); for x = 0 the population mean p gamma / (q - 1).

    NaN where the expectation does not exist (p x + q <= 1, only possible when q <= 1)."""
    x = np.asarray(x, dtype=np.float64)
    m = np.where(x > 0, np.nan_to_num(np.asarray(m, dtype=np.float64)), 0.0)
    p, q, g = params.p, params.q, params.gamma
    denominator = p * x + q - 1
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, p * (g + m * x) / denominator, np.nan)


@dataclass(frozen=True)
class _SpendData:
    """Repeat customers' (x, m) with weights, and the sums that do not depend on the parameters."""

    w: np.ndarray
    wx: np.ndarray  # w x
    mx: np.ndarray  # m x
    x_values: np.ndarray
    x_weight: np.ndarray
    n: float
    sum_x_log_m: float  # sum of w x log m
    sum_log_m: float  # sum of w log m

    @classmethod
    def of(cls, x: np.ndarray, m: np.ndarray, w: np.ndarray) -> _SpendData:
        x_values, x_code = np.unique(x, return_inverse=True)
        log_m = np.log(m)
        return cls(
            w=w,
            wx=w * x,
            mx=m * x,
            x_values=x_values,
            x_weight=np.bincount(x_code, weights=w, minlength=len(x_values)),
            n=float(w.sum()),
            sum_x_log_m=_dot(w * x, log_m),
            sum_log_m=_dot(w, log_m),
        )

    def thinned(self, share: float, rng: np.random.Generator) -> _SpendData:
        """A random subsample of the rows (for the optimiser's warm start)."""
        keep = rng.random(len(self.w)) < share
        x = self.wx[keep] / self.w[keep]
        return _SpendData.of(x, self.mx[keep] / x, self.w[keep])


def _log_likelihood_derivatives(
    log_params: np.ndarray, d: _SpendData, hessian: bool
) -> tuple[float, np.ndarray, np.ndarray | None]:
    """Total weighted log-likelihood, gradient and (``hessian``) Hessian in (p, q, gamma)."""
    p, q, g = np.exp(log_params)
    xv, xw, n = d.x_values, d.x_weight, d.n
    pxv = p * xv
    log_gmx = np.log(g + d.mx)
    inv_gmx = 1 / (g + d.mx)
    s_wx_log, s_w_log = _dot(d.wx, log_gmx), _dot(d.w, log_gmx)
    s_wx_inv, s_w_inv = _dot(d.wx, inv_gmx), _dot(d.w, inv_gmx)
    ll = (
        _dot(xw, gammaln(pxv + q) - gammaln(pxv) + pxv * np.log(xv))
        + n * (q * math.log(g) - gammaln(q))
        + p * d.sum_x_log_m
        - d.sum_log_m
        - p * s_wx_log
        - q * s_w_log
    )
    gradient = np.array(
        [
            _dot(xw * xv, digamma(pxv + q) - digamma(pxv) + np.log(xv)) + d.sum_x_log_m - s_wx_log,
            _dot(xw, digamma(pxv + q)) + n * (math.log(g) - digamma(q)) - s_w_log,
            n * q / g - p * s_wx_inv - q * s_w_inv,
        ]
    )
    if not hessian:
        return ll, gradient, None
    trigamma_pxq = polygamma(1, pxv + q)
    H = np.empty((3, 3))
    H[0, 0] = _dot(xw * xv**2, trigamma_pxq - polygamma(1, pxv))
    H[0, 1] = H[1, 0] = _dot(xw * xv, trigamma_pxq)
    H[0, 2] = H[2, 0] = -s_wx_inv
    H[1, 1] = _dot(xw, trigamma_pxq) - n * polygamma(1, q)
    H[1, 2] = H[2, 1] = n / g - s_w_inv
    inv2 = inv_gmx * inv_gmx
    H[2, 2] = -n * q / g**2 + p * _dot(d.wx, inv2) + q * _dot(d.w, inv2)
    return ll, gradient, H


def _negative_mean(log_params: np.ndarray, d: _SpendData, hessian: bool) -> tuple[float, np.ndarray, np.ndarray | None]:
    ll, g, H = _log_likelihood_derivatives(log_params, d, hessian)
    theta = np.exp(log_params)
    grad = -g * theta / d.n
    hess = None if H is None else -(np.outer(theta, theta) * H + np.diag(g * theta)) / d.n
    return -ll / d.n, grad, hess


def negative_mean_log_likelihood(log_params: np.ndarray, d: _SpendData) -> tuple[float, np.ndarray]:
    """-(1/N) weighted sum of log f(m | p, q, gamma, x) and its gradient in (log p, log q, log gamma)."""
    value, grad, _ = _negative_mean(log_params, d, hessian=False)
    return value, grad


def negative_mean_log_likelihood_hessian(log_params: np.ndarray, d: _SpendData) -> tuple[float, np.ndarray, np.ndarray]:
    """The same with its Hessian in the log-parameters."""
    return _negative_mean(log_params, d, hessian=True)  # type: ignore[return-value]


def starting_values(d: _SpendData) -> np.ndarray:
    """log(p, q, gamma): p = 2, q = 3 and gamma so that the population mean p gamma / (q - 1) equals the weighted
    mean of the observed means (gamma then carries the currency's scale, the rest is scale-free)."""
    mean = _dot(d.w, d.mx / (d.wx / d.w)) / d.n
    p, q = 2.0, 3.0
    return np.log([p, q, mean * (q - 1) / p])


def fit(x: np.ndarray, m: np.ndarray, weights: np.ndarray | None = None) -> FitResult:
    """Maximum-likelihood Gamma-Gamma on repeat customers' (x, mean value m); rows with x < 1 or m <= 0 (or
    missing) cannot come from the model and are left out, with a note saying how many."""
    x = np.asarray(x, dtype=np.float64)
    m = np.asarray(m, dtype=np.float64)
    w = np.ones(len(x)) if weights is None else np.asarray(weights, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        usable = (x >= 1) & np.isfinite(m) & (m > 0) & (w > 0)
        zero_value = int(((x >= 1) & np.isfinite(m) & (m <= 0)).sum())
    notes = ()
    if zero_value:
        notes = (
            f"{zero_value} repeat customer(s) with a mean repeat transaction value of 0 or less (refunded) left"
            " out of the spend model's fit",
        )
    x, m, w = x[usable], m[usable], w[usable]
    customers = int(round(w.sum()))
    if customers == 0:
        result = not_fitted(MODEL, NAMES, "no repeat customers with a positive mean repeat transaction value")
    elif customers < 2:
        result = not_fitted(
            MODEL, NAMES, "a single repeat customer: maximum likelihood needs a population of customers", customers
        )
    elif np.ptp(m) == 0:
        result = not_fitted(
            MODEL,
            NAMES,
            "every repeat customer has the same mean transaction value: spend variation cannot be estimated",
            customers,
        )
    else:
        d = _SpendData.of(x, m, w)
        result = maximise(
            MODEL,
            NAMES,
            Objective(
                value_and_gradient=lambda lp: negative_mean_log_likelihood(lp, d),
                with_hessian=lambda lp: negative_mean_log_likelihood_hessian(lp, d),
                total_weight=d.n,
            ),
            starting_values(d),
            customers,
            warm_start=lambda share, rng: _warm_objective(d, share, rng),
        )
    if result.converged and result.parameters["q"] <= 1:
        notes += (
            "q <= 1: the population mean transaction value p gamma / (q - 1) does not exist, so customers without"
            " repeat purchases get a null expected value and CLV",
        )
    return replace(result, notes=(*result.notes, *notes))


def _warm_objective(d: _SpendData, share: float, rng: np.random.Generator):
    sample = d.thinned(share, rng)
    return lambda lp: negative_mean_log_likelihood(lp, sample)
