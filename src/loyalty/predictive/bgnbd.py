"""BG/NBD repeat-purchase model (Fader, Hardie and Lee 2005, "Counting your customers the easy way").

A customer's history is (x, t_x, T): x repeat transactions, the last at t_x, observed from the first purchase
(time 0) to T. While alive, purchases follow a Poisson process with rate lambda ~ Gamma(r, alpha) (shape r,
rate alpha); after each repeat purchase the customer drops out with probability p ~ Beta(a, b).

Per-customer likelihood (FHL 2005, eq. 6), written in logs so that no factor overflows:

    log L = A1 + A2 + log(exp(A3) + [x > 0] exp(A4))
    A1 = lgamma(r + x) - lgamma(r) + r log(alpha)
    A2 = lgamma(a + b) + lgamma(b + x) - lgamma(b) - lgamma(a + b + x)
    A3 = -(r + x) log(alpha + T)
    A4 = log(a) - log(b + x - 1) - (r + x) log(alpha + t_x)

The last term is a log-sum-exp, evaluated as A3 + softplus(A4 - A3). Fitting works on the distinct (x, t_x, T)
triples with the number of customers sharing each as a weight (on a day grid many customers share a triple), and
splits every term by what it depends on: the lgamma terms depend on x only (evaluated once per distinct x), the
x = 0 customers contribute only A3 (once per distinct T), and only customers with x > 0 need the log-sum-exp.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import digamma, expit, gammaln, hyp2f1, polygamma

from loyalty.predictive.estimation import FitResult, Objective, maximise, not_fitted
from loyalty.predictive.grouping import distinct_rows, value_codes

MODEL = "bgnbd"
NAMES = ("r", "alpha", "a", "b")
# the expectation formula has a removable 0/0 at a = 1 (as generator.expected_repeat_purchases)
_A_NEAR_ONE = 1e-6


@dataclass(frozen=True)
class BgNbdParameters:
    """BG/NBD parameters in the time unit of the data they were fitted on (alpha is a rate scale: per unit)."""

    r: float
    alpha: float
    a: float
    b: float

    @classmethod
    def from_dict(cls, values: dict[str, float]) -> BgNbdParameters:
        return cls(**{n: float(values[n]) for n in NAMES})


def _arrays(*values: np.ndarray | float) -> list[np.ndarray]:
    return [np.asarray(v, dtype=np.float64) for v in values]


def log_likelihood(params: BgNbdParameters, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
    """Per-customer log-likelihood log L(r, alpha, a, b | x, t_x, T) (the module docstring's formula)."""
    x, t_x, T = _arrays(x, t_x, T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    a1 = gammaln(r + x) - gammaln(r) + r * math.log(alpha)
    a2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
    a3 = -(r + x) * np.log(alpha + T)
    with np.errstate(divide="ignore", invalid="ignore"):
        a4 = np.where(x > 0, math.log(a) - np.log(b + x - 1) - (r + x) * np.log(alpha + t_x), -np.inf)
    return a1 + a2 + np.logaddexp(a3, a4)


def _log_odds_dead(params: BgNbdParameters, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
    """log(P(dead) / P(alive)) given the history: log(a / (b + x - 1)) + (r + x) log((alpha + T) / (alpha + t_x))
    for x > 0; -inf for x = 0 (nobody drops out before a repeat purchase)."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    with np.errstate(divide="ignore", invalid="ignore"):
        odds = math.log(a) - np.log(b + np.maximum(x, 1) - 1) + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
    return np.where(x > 0, odds, -np.inf)


def probability_alive(params: BgNbdParameters, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
    """P(alive at T | x, t_x, T) = 1 / (1 + [x > 0] a / (b + x - 1) ((alpha + T) / (alpha + t_x))^(r + x))
    (FHL 2005, eq. 13), computed as the logistic function of minus the log-odds so it never overflows."""
    x, t_x, T = _arrays(x, t_x, T)
    return expit(-_log_odds_dead(params, x, t_x, T))


def alive_expected_transactions(
    params: BgNbdParameters, t: np.ndarray | float, x: np.ndarray, T: np.ndarray
) -> np.ndarray:
    """The numerator of FHL 2005 eq. 10: expected transactions in (T, T + t] of a customer known to be alive at T,
    which depends on (x, T) only:

        (a + b + x - 1) / (a - 1) * [1 - ((alpha + T) / (alpha + T + t))^(r + x) 2F1(r + x, b + x; a + b + x - 1; z)]

    with z = t / (alpha + T + t). Euler's transformation 2F1(A, B; C; z) = (1 - z)^(C - A - B) 2F1(C - A, C - B; C; z)
    turns the bracket into 1 - (1 - z)^(a - 1) 2F1(a + b - 1 - r, a - 1; a + b + x - 1; z): the large parameters
    r + x and b + x (which make the direct series slow and overflow-prone for frequent buyers) disappear.
    """
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    if abs(a - 1) < _A_NEAR_ONE:
        a = 1 + math.copysign(_A_NEAR_ONE, a - 1)
    t = np.asarray(t, dtype=np.float64)
    log_one_minus_z = np.log(alpha + T) - np.log(alpha + T + t)
    z = -np.expm1(log_one_minus_z)
    hyp = hyp2f1(a + b - 1 - r, a - 1, a + b + x - 1, z)
    bracket = -np.expm1((a - 1) * log_one_minus_z) - np.exp((a - 1) * log_one_minus_z) * (hyp - 1)
    return (a + b + x - 1) / (a - 1) * bracket


def expected_transactions(
    params: BgNbdParameters, t: float, x: np.ndarray, t_x: np.ndarray, T: np.ndarray
) -> np.ndarray:
    """E[Y(t) | x, t_x, T]: expected transactions in the next ``t`` time units (FHL 2005, eq. 10), i.e.
    the alive customer's expectation times P(alive)."""
    x, t_x, T = _arrays(x, t_x, T)
    return alive_expected_transactions(params, t, x, T) * probability_alive(params, x, t_x, T)


# ------------------------------------------------------------------------------------------------ fitting


def _dot(weights: np.ndarray, values: np.ndarray) -> float:
    """Weighted sum without BLAS: a multithreaded BLAS dot product stalls for milliseconds on a busy 2-core
    machine, einsum's single loop does not."""
    return float(np.einsum("i,i->", weights, values))


@dataclass(frozen=True)
class Histories:
    """Distinct (x, t_x, T) triples with the number (weight) of customers sharing each, split by x = 0 / x > 0.

    Distinct values of T and t_x are kept once, with a code per triple: the logarithms and reciprocals of
    alpha + T are then computed once per distinct value (about a thousand on a three-year day grid) and gathered.
    """

    zero_T: np.ndarray  # distinct T of customers with x = 0
    zero_weight: np.ndarray
    x: np.ndarray  # distinct triples with x > 0
    weight: np.ndarray
    t_x_values: np.ndarray
    t_x_code: np.ndarray
    T_values: np.ndarray
    T_code: np.ndarray
    x_values: np.ndarray  # distinct x (all customers, increasing) and their total weight
    x_weight: np.ndarray
    x_code: np.ndarray  # for each x > 0 triple: its x's position in x_values

    @property
    def t_x(self) -> np.ndarray:
        return self.t_x_values[self.t_x_code]

    @property
    def T(self) -> np.ndarray:
        return self.T_values[self.T_code]

    @property
    def total_weight(self) -> float:
        return float(self.x_weight.sum())

    @property
    def rows(self) -> int:
        return len(self.zero_T) + len(self.x)

    def thinned(self, share: float, rng: np.random.Generator) -> Histories:
        """A random subsample of the customers (each kept with probability ``share``), still collapsed.
        Fractional weights (not customer counts) are thinned row by row instead."""
        zero_weight, weight = (_thin(v, share, rng) for v in (self.zero_weight, self.weight))
        keep0, keep = zero_weight > 0, weight > 0
        x_weight = np.bincount(self.x_code[keep], weights=weight[keep], minlength=len(self.x_values))
        if len(self.x_values) and self.x_values[0] == 0:
            x_weight[0] = zero_weight.sum()
        return Histories(
            self.zero_T[keep0],
            zero_weight[keep0],
            self.x[keep],
            weight[keep],
            self.t_x_values,
            self.t_x_code[keep],
            self.T_values,
            self.T_code[keep],
            self.x_values,
            x_weight,
            self.x_code[keep],
        )


def _thin(weights: np.ndarray, share: float, rng: np.random.Generator) -> np.ndarray:
    if np.array_equal(weights, np.floor(weights)):
        return rng.binomial(weights.astype(np.int64), share).astype(np.float64)
    return np.where(rng.random(len(weights)) < share, weights, 0.0)


def collapse(x: np.ndarray, t_x: np.ndarray, T: np.ndarray, weights: np.ndarray | None = None) -> Histories:
    """Group identical (x, t_x, T) triples and sum their weights (default: count the customers)."""
    x, t_x, T = _arrays(x, t_x, T)
    (x_code, x_values), (tx_code, tx_values), (T_code, T_values) = (value_codes(v) for v in (x, t_x, T))
    # distinct x in increasing order, so x_values[0] == 0 when there are customers without repeat purchases
    order = np.argsort(x_values)
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    x_code, x_values = rank[x_code], x_values[order]
    (ux_code, utx_code, uT_code), weight = distinct_rows(
        [(x_code, len(x_values)), (tx_code, len(tx_values)), (T_code, len(T_values))], weights
    )
    zero = x_values[ux_code] == 0 if len(x_values) else np.zeros(0, dtype=bool)
    return Histories(
        zero_T=T_values[uT_code[zero]],
        zero_weight=weight[zero],
        x=x_values[ux_code[~zero]],
        weight=weight[~zero],
        t_x_values=tx_values,
        t_x_code=utx_code[~zero],
        T_values=T_values,
        T_code=uT_code[~zero],
        x_values=x_values,
        x_weight=np.bincount(ux_code, weights=weight, minlength=len(x_values)),
        x_code=ux_code[~zero],
    )


def _log_likelihood_derivatives(
    log_params: np.ndarray, h: Histories, hessian: bool
) -> tuple[float, np.ndarray, np.ndarray | None]:
    """Total weighted log-likelihood, its gradient and (``hessian``) Hessian in (r, alpha, a, b).

    With w4 = sigmoid(A4 - A3) (the weight of the 'dropped out after t_x' term), w3 = 1 - w4 and
    d = grad A4 - grad A3, the log-sum-exp term has gradient w3 grad A3 + w4 grad A4 and Hessian
    w3 hess A3 + w4 hess A4 + w3 w4 d d'. The lgamma terms give digamma (trigamma) terms per distinct x.
    softplus(A4 - A3) = log(1 + e^(A4 - A3)) is computed as -log(sigmoid(A3 - A4)), exact up to a difference of
    ~700 and replaced by the difference itself beyond.
    """
    r, alpha, a, b = np.exp(log_params)
    n = h.total_weight
    xv, xw = h.x_values, h.x_weight
    # terms that depend on x only (A1, A2)
    ll = _dot(xw, gammaln(r + xv) + gammaln(b + xv) - gammaln(a + b + xv)) + n * (
        -gammaln(r) + gammaln(a + b) - gammaln(b) + r * math.log(alpha)
    )
    g = np.array(
        [
            _dot(xw, digamma(r + xv)) + n * (math.log(alpha) - digamma(r)),
            n * r / alpha,
            n * digamma(a + b) - _dot(xw, digamma(a + b + xv)),
            n * (digamma(a + b) - digamma(b)) + _dot(xw, digamma(b + xv) - digamma(a + b + xv)),
        ]
    )
    H = np.zeros((4, 4))
    if hessian:
        t_ab, t_abx = polygamma(1, a + b), polygamma(1, a + b + xv)
        H[0, 0] = _dot(xw, polygamma(1, r + xv)) - n * polygamma(1, r)
        H[0, 1] = n / alpha
        H[1, 1] = -n * r / alpha**2
        H[2, 2] = H[2, 3] = n * t_ab - _dot(xw, t_abx)
        H[3, 3] = n * (t_ab - polygamma(1, b)) + _dot(xw, polygamma(1, b + xv) - t_abx)
    # customers without repeat purchases: A3 only
    inv_T0 = 1 / (alpha + h.zero_T)
    log_T0 = np.log(alpha + h.zero_T)
    ll -= r * _dot(h.zero_weight, log_T0)
    g[0] -= _dot(h.zero_weight, log_T0)
    g[1] -= r * _dot(h.zero_weight, inv_T0)
    if hessian:
        H[0, 1] -= _dot(h.zero_weight, inv_T0)
        H[1, 1] += r * _dot(h.zero_weight, inv_T0**2)
    # repeat customers: A3 + softplus(A4 - A3)
    w = h.weight
    rx = r + h.x
    log_T = np.log(alpha + h.T_values)[h.T_code]
    d_r = np.log(alpha + h.t_x_values)[h.t_x_code] - log_T  # minus (dA4/dr - dA3/dr)
    with np.errstate(divide="ignore"):
        log_a_over_bx = math.log(a) - np.log(b + xv - 1)
        inv_bx_values = 1 / (b + xv - 1)
    delta = log_a_over_bx[h.x_code] - rx * d_r  # A4 - A3
    w3 = expit(-delta)
    with np.errstate(divide="ignore"):
        softplus = -np.log(w3)
    huge = delta > 700
    if huge.any():
        softplus[huge] = delta[huge]
    w4 = w * (1 - w3)
    ll += _dot(w, softplus - rx * log_T)
    inv_T = (1 / (alpha + h.T_values))[h.T_code]
    inv_diff = (1 / (alpha + h.t_x_values))[h.t_x_code] - inv_T
    inv_bx = inv_bx_values[h.x_code]
    g[0] -= _dot(w, log_T) + _dot(w4, d_r)
    g[1] -= _dot(w * rx, inv_T) + _dot(w4 * rx, inv_diff)
    g[2] += w4.sum() / a
    g[3] -= _dot(w4, inv_bx)
    if hessian:
        inv_T2 = (1 / (alpha + h.T_values) ** 2)[h.T_code]
        inv_tx2 = (1 / (alpha + h.t_x_values) ** 2)[h.t_x_code]
        # w3 hess A3 + w4 hess A4 = hess A3 + w4 (hess A4 - hess A3)
        H[0, 1] -= _dot(w, inv_T) + _dot(w4, inv_diff)
        H[1, 1] += _dot(w * rx, inv_T2) + _dot(w4 * rx, inv_tx2 - inv_T2)
        H[2, 2] -= w4.sum() / a**2
        H[3, 3] += _dot(w4, inv_bx**2)
        # w3 w4 d d' with d = (-d_r, -rx inv_diff, 1/a, -inv_bx)
        u = w4 * w3
        d = (-d_r, -rx * inv_diff, None, -inv_bx)
        for i in range(4):
            for j in range(i, 4):
                if d[i] is None and d[j] is None:
                    H[i, j] += u.sum() / a**2
                elif d[i] is None or d[j] is None:
                    H[i, j] += _dot(u, d[j] if d[i] is None else d[i]) / a
                else:
                    H[i, j] += _dot(u * d[i], d[j])
        H = np.triu(H) + np.triu(H, 1).T
    return ll, g, H if hessian else None


def _in_log_space(
    theta: np.ndarray, g: np.ndarray, H: np.ndarray | None, n: float
) -> tuple[np.ndarray, np.ndarray | None]:
    """Gradient and Hessian of -(1/n) log-likelihood with respect to log(theta), from those in theta."""
    grad = -g * theta / n
    if H is None:
        return grad, None
    return grad, -(np.outer(theta, theta) * H + np.diag(g * theta)) / n


def negative_mean_log_likelihood(log_params: np.ndarray, h: Histories) -> tuple[float, np.ndarray]:
    """-(1/N) sum of weighted log-likelihoods and its gradient with respect to (log r, log alpha, log a, log b)."""
    ll, g, _ = _log_likelihood_derivatives(log_params, h, hessian=False)
    grad, _ = _in_log_space(np.exp(log_params), g, None, h.total_weight)
    return -ll / h.total_weight, grad


def negative_mean_log_likelihood_hessian(log_params: np.ndarray, h: Histories) -> tuple[float, np.ndarray, np.ndarray]:
    """The same with its Hessian with respect to the log-parameters (for Newton steps and standard errors)."""
    ll, g, H = _log_likelihood_derivatives(log_params, h, hessian=True)
    grad, hess = _in_log_space(np.exp(log_params), g, H, h.total_weight)
    return -ll / h.total_weight, grad, hess


def starting_values(h: Histories) -> np.ndarray:
    """log(r, alpha, a, b) to start from: r = 1 and alpha = 1 / (mean repeat rate of repeat customers, x / t_x),
    so that the prior mean rate r / alpha is of the right order; a = 1, b = 3 (a drop-out probability ~ 0.25)."""
    t_x = h.t_x
    repeat = t_x > 0
    if repeat.any():
        rate = float((h.weight[repeat] * h.x[repeat]).sum() / (h.weight[repeat] * t_x[repeat]).sum())
    else:
        rate = 1.0
    return np.log([1.0, 1.0 / max(rate, 1e-9), 1.0, 3.0])


def fit(x: np.ndarray, t_x: np.ndarray, T: np.ndarray, weights: np.ndarray | None = None) -> FitResult:
    """Maximum-likelihood BG/NBD on customers' (x, t_x, T) (optionally weighted: customers per row).

    Never raises on degenerate data: no customers, a single customer, or no repeat customers give a ``not_fitted``
    result with the reason; a likelihood without an interior maximum gives ``not_converged``.
    """
    h = collapse(x, t_x, T, weights)
    customers = int(round(h.total_weight))
    if customers == 0:
        return not_fitted(MODEL, NAMES, "no customers to fit")
    if customers < 2:
        return not_fitted(
            MODEL, NAMES, "a single customer: maximum likelihood needs a population of customers", customers
        )
    if len(h.x) == 0:
        if len(h.zero_T) == 1:
            reason = (
                "no repeat customers, and every customer is observed for the same time since the first purchase"
                " (all purchases on one day?): the purchase rate and drop-out cannot be estimated"
            )
        else:
            reason = "no repeat customers: the purchase rate and drop-out cannot be estimated"
        return not_fitted(MODEL, NAMES, reason, customers)
    return maximise(
        MODEL,
        NAMES,
        Objective(
            value_and_gradient=lambda p: negative_mean_log_likelihood(p, h),
            with_hessian=lambda p: negative_mean_log_likelihood_hessian(p, h),
            total_weight=h.total_weight,
        ),
        starting_values(h),
        customers,
        warm_start=lambda share, rng: _warm_objective(h, share, rng),
    )


def _warm_objective(h: Histories, share: float, rng: np.random.Generator):
    sample = h.thinned(share, rng)
    return lambda p: negative_mean_log_likelihood(p, sample)
