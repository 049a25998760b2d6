"""Each formula of the predictive models against an independent computation: numerical integration over the
gamma and beta mixing distributions (the models' definitions, not their closed forms), published values from the
papers, hand-computed numbers, and lifetimes' month-by-month CLV."""

from __future__ import annotations

import math
from pathlib import Path

import lifetimes
import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

from loyalty.predictive import bgnbd, gamma_gamma
from loyalty.predictive.clv import ClvSettings, customer_scores

CDNOW = Path(lifetimes.__file__).parent / "datasets" / "cdnow_customers_summary_with_transactions.csv"

# (r, alpha, a, b): the generator's defaults (days), the CDNOW estimates (weeks), and a > 1 with r > 1
BGNBD = [
    bgnbd.BgNbdParameters(0.8, 24.0, 0.85, 7.0),
    bgnbd.BgNbdParameters(0.243, 4.414, 0.793, 2.426),
    bgnbd.BgNbdParameters(1.7, 9.0, 1.6, 4.0),
]
# (x, t_x, T)
HISTORIES = [(0, 0.0, 30.0), (1, 5.0, 40.0), (3, 20.0, 22.0), (7, 80.0, 300.0)]


# ------------------------------------------------------------------------------------------------ integrals


def _gamma_integral(f, r: float, alpha: float) -> float:
    """E[f(lambda)] for lambda ~ Gamma(shape r, rate alpha), by quadrature (split at the mean, singular at 0)."""
    density = stats.gamma(r, scale=1 / alpha).pdf
    split = r / alpha
    head = integrate.quad(lambda lam: f(lam) * density(lam), 0, split, epsabs=0, epsrel=1e-11, limit=200)[0]
    tail = integrate.quad(lambda lam: f(lam) * density(lam), split, np.inf, epsabs=0, epsrel=1e-11, limit=200)[0]
    return head + tail


def _beta_integral(f, a: float, b: float) -> float:
    """E[f(p)] for p ~ Beta(a, b), by quadrature with the algebraic weight p^(a-1) (1-p)^(b-1)."""
    weighted = integrate.quad(f, 0, 1, weight="alg", wvar=(a - 1, b - 1), epsabs=0, epsrel=1e-11, limit=200)[0]
    norm = integrate.quad(lambda p: 1.0, 0, 1, weight="alg", wvar=(a - 1, b - 1), epsabs=0, epsrel=1e-12)[0]
    return weighted / norm


def _bgnbd_parts(p: bgnbd.BgNbdParameters, x: int, t_x: float, T: float) -> tuple[float, float]:
    """The two terms of the BG/NBD likelihood, each integrated over (lambda, p) numerically: still alive at T
    ((1-p)^x lambda^x e^(-lambda T)) and dropped out right after the last purchase (p (1-p)^(x-1) lambda^x
    e^(-lambda t_x)). Both factor into a lambda integral times a p integral."""
    alive = _beta_integral(lambda q: (1 - q) ** x, p.a, p.b) * _gamma_integral(
        lambda lam: lam**x * math.exp(-lam * T), p.r, p.alpha
    )
    dead = 0.0
    if x > 0:
        dead = _beta_integral(lambda q: q * (1 - q) ** (x - 1), p.a, p.b) * _gamma_integral(
            lambda lam: lam**x * math.exp(-lam * t_x), p.r, p.alpha
        )
    return alive, dead


@pytest.mark.parametrize("params", BGNBD)
@pytest.mark.parametrize("history", HISTORIES)
def test_bgnbd_likelihood_and_probability_alive_match_numerical_integration(
    params: bgnbd.BgNbdParameters, history: tuple[int, float, float]
) -> None:
    x, t_x, T = history
    alive, dead = _bgnbd_parts(params, x, t_x, T)
    assert bgnbd.log_likelihood(params, [x], [t_x], [T])[0] == pytest.approx(math.log(alive + dead), rel=1e-8)
    assert bgnbd.probability_alive(params, [x], [t_x], [T])[0] == pytest.approx(alive / (alive + dead), rel=1e-8)


@pytest.mark.parametrize(
    ("params", "history"),
    [(BGNBD[0], HISTORIES[1]), (BGNBD[0], HISTORIES[3]), (BGNBD[1], HISTORIES[2]), (BGNBD[2], HISTORIES[0])],
)
def test_bgnbd_conditional_expectation_matches_numerical_integration(
    params: bgnbd.BgNbdParameters, history: tuple[int, float, float]
) -> None:
    """E[Y(t) | x, t_x, T] = E over the posterior of [alive at T] (1 - e^(-lambda p t)) / p (FHL 2005: an alive
    customer's expected purchases in t), integrated over (lambda, p) with nested quadrature."""
    x, t_x, T = history
    t = 60.0
    alive, dead = _bgnbd_parts(params, x, t_x, T)

    def given_p(q: float) -> float:
        def alive_purchases(lam: float) -> float:  # (1 - e^(-lambda q t)) / q, lambda t in the limit q -> 0
            return -math.expm1(-lam * q * t) / q if q > 0 else lam * t

        return (1 - q) ** x * _gamma_integral(
            lambda lam: lam**x * math.exp(-lam * T) * alive_purchases(lam), params.r, params.alpha
        )

    expected = _beta_integral(given_p, params.a, params.b) / (alive + dead)
    assert bgnbd.expected_transactions(params, t, [x], [t_x], [T])[0] == pytest.approx(expected, rel=1e-7)


def test_bgnbd_expectation_is_continuous_at_a_equal_one() -> None:
    """The closed form divides by a - 1; at a = 1 it is evaluated next to it and equals the neighbours."""
    values = [
        bgnbd.expected_transactions(bgnbd.BgNbdParameters(0.8, 24.0, a, 7.0), 365.0, [3], [100.0], [200.0])[0]
        for a in (1 - 1e-4, 1.0, 1 + 1e-4)
    ]
    assert values[1] == pytest.approx((values[0] + values[2]) / 2, rel=1e-6)


def test_bgnbd_values_published_for_cdnow() -> None:
    """Fader, Hardie and Lee (2005) on the CDNOW sample (2,357 customers, weeks): r = 0.243, alpha = 4.414,
    a = 0.793, b = 2.426, log-likelihood -9582.4, and 1.226 expected transactions in the next 39 weeks for the
    first customer (x = 2, t_x = 30.43, T = 38.86). The data ship with lifetimes."""
    cdnow = pd.read_csv(CDNOW)
    published = bgnbd.BgNbdParameters(0.243, 4.414, 0.793, 2.426)
    ll = bgnbd.log_likelihood(published, cdnow["x"], cdnow["t_x"], cdnow["T"]).sum()
    assert ll == pytest.approx(-9582.4, abs=0.05)
    assert bgnbd.expected_transactions(published, 39, [2], [30.43], [38.86])[0] == pytest.approx(1.226, abs=5e-4)

    fit = bgnbd.fit(cdnow["x"], cdnow["t_x"], cdnow["T"])
    assert fit.converged
    assert [round(fit.parameters[n], 3) for n in bgnbd.NAMES] == [0.243, 4.414, 0.793, 2.426]
    assert fit.log_likelihood == pytest.approx(-9582.4, abs=0.05)


def test_bgnbd_probability_alive_by_hand() -> None:
    """r = 1, alpha = 1, a = 1, b = 2; x = 1, t_x = 1, T = 3: the odds of having dropped out are
    a / (b + x - 1) * ((alpha + T) / (alpha + t_x))^(r + x) = 1/2 * (4/2)^2 = 2, so P(alive) = 1/3.
    Nobody can have dropped out before a repeat purchase: P(alive | x = 0) = 1."""
    p = bgnbd.BgNbdParameters(1.0, 1.0, 1.0, 2.0)
    assert bgnbd.probability_alive(p, [1, 0], [1.0, 0.0], [3.0, 3.0]).tolist() == pytest.approx([1 / 3, 1.0])


def test_bgnbd_collapsed_likelihood_equals_the_per_customer_sum() -> None:
    """Fitting sums weighted distinct triples; the sum must equal the per-customer log-likelihoods' sum."""
    rng = np.random.default_rng(5)
    x = rng.integers(0, 6, 5000)
    T = rng.integers(0, 20, 5000).astype(float)
    t_x = np.where(x > 0, np.floor(rng.random(5000) * (T + 1)), 0.0)
    params = BGNBD[0]
    h = bgnbd.collapse(x, t_x, T)
    assert h.rows < 1200 and h.total_weight == 5000
    mean_negative, _ = bgnbd.negative_mean_log_likelihood(np.log([params.r, params.alpha, params.a, params.b]), h)
    assert -mean_negative * 5000 == pytest.approx(bgnbd.log_likelihood(params, x, t_x, T).sum(), rel=1e-12)


def _finite_difference_check(objective, with_hessian, point: np.ndarray) -> None:
    value, gradient, hessian = with_hessian(point)
    assert objective(point)[0] == pytest.approx(value, rel=1e-14)
    step = 1e-5
    for i, e in enumerate(np.eye(len(point))):
        up, down = objective(point + step * e), objective(point - step * e)
        assert gradient[i] == pytest.approx((up[0] - down[0]) / (2 * step), abs=1e-7)
        assert hessian[i] == pytest.approx((up[1] - down[1]) / (2 * step), abs=1e-6)


def test_bgnbd_gradient_and_hessian_match_finite_differences() -> None:
    rng = np.random.default_rng(8)
    x = rng.integers(0, 12, 3000)
    T = rng.integers(0, 300, 3000).astype(float)
    t_x = np.where(x > 0, np.floor(rng.random(3000) * T), 0.0)
    h = bgnbd.collapse(x, t_x, T)
    _finite_difference_check(
        lambda p: bgnbd.negative_mean_log_likelihood(p, h),
        lambda p: bgnbd.negative_mean_log_likelihood_hessian(p, h),
        np.log([0.7, 20.0, 0.9, 5.0]),
    )


# ------------------------------------------------------------------------------------------------ Gamma-Gamma

GAMMA_GAMMA = [gamma_gamma.GammaGammaParameters(4.0, 4.0, 45.0), gamma_gamma.GammaGammaParameters(6.25, 3.74, 15.44)]


def _spend_density(p: gamma_gamma.GammaGammaParameters, x: int, m: float, f=lambda nu: 1.0) -> float:
    """Integral over nu ~ Gamma(q, rate gamma) of f(nu) times the density of the mean m of x values drawn
    Gamma(p, rate nu): their sum is Gamma(px, rate nu), so m has density x * Gamma(px, nu).pdf(x m)."""
    prior = stats.gamma(p.q, scale=1 / p.gamma).pdf

    def integrand(nu: float) -> float:
        return f(nu) * x * stats.gamma(p.p * x, scale=1 / nu).pdf(x * m) * prior(nu)

    mode = p.p * x / (x * m)  # where the likelihood of nu peaks
    pieces = [(0, mode / 4), (mode / 4, mode * 4), (mode * 4, np.inf)]
    return sum(integrate.quad(integrand, lo, hi, epsabs=0, epsrel=1e-11, limit=200)[0] for lo, hi in pieces)


@pytest.mark.parametrize("params", GAMMA_GAMMA)
@pytest.mark.parametrize(("x", "m"), [(1, 12.5), (3, 60.0), (10, 41.3)])
def test_gamma_gamma_density_and_expectation_match_numerical_integration(
    params: gamma_gamma.GammaGammaParameters, x: int, m: float
) -> None:
    density = _spend_density(params, x, m)
    assert gamma_gamma.log_likelihood(params, [x], [m])[0] == pytest.approx(math.log(density), rel=1e-8)
    # E[M | x, m] = E[p / nu | x, m]: the customer's mean value p / nu averaged over nu's posterior
    posterior_mean = _spend_density(params, x, m, lambda nu: params.p / nu) / density
    assert gamma_gamma.expected_mean_value(params, [x], [m])[0] == pytest.approx(posterior_mean, rel=1e-8)


def test_gamma_gamma_expectation_by_hand() -> None:
    """p = 6.25, q = 3.74, gamma = 15.44: x = 1, m = 10 gives 6.25 (15.44 + 10) / (6.25 + 2.74) = 159 / 8.99;
    x = 0 gives the population mean 6.25 * 15.44 / 2.74; with q <= 1 that mean does not exist (NaN)."""
    p = GAMMA_GAMMA[1]
    assert gamma_gamma.expected_mean_value(p, [1, 0], [10.0, np.nan]).tolist() == pytest.approx(
        [159 / 8.99, 6.25 * 15.44 / 2.74]
    )
    assert math.isnan(gamma_gamma.expected_mean_value(gamma_gamma.GammaGammaParameters(2, 0.8, 10), [0], [0])[0])


def test_gamma_gamma_values_published_for_cdnow() -> None:
    """Fader and Hardie's Gamma-Gamma note on the CDNOW repeat customers (946, mean spend zbar): p = 6.25,
    q = 3.74, gamma = 15.44, to two decimals (we find 6.2488, 3.7446 and 15.4477: the last one a hundredth off,
    from the note's rounding of zbar or Excel's optimiser)."""
    cdnow = pd.read_csv(CDNOW)
    repeat = cdnow[cdnow["x"] > 0]
    fit = gamma_gamma.fit(repeat["x"], repeat["zbar"])
    assert fit.converged and fit.customers == 946
    assert [fit.parameters[n] for n in gamma_gamma.NAMES] == pytest.approx([6.25, 3.74, 15.44], abs=0.01)


def test_gamma_gamma_gradient_and_hessian_match_finite_differences() -> None:
    rng = np.random.default_rng(9)
    x = rng.integers(1, 15, 3000).astype(float)
    m = rng.gamma(3.0, 20.0, 3000)
    d = gamma_gamma._SpendData.of(x, m, np.ones(3000))
    _finite_difference_check(
        lambda p: gamma_gamma.negative_mean_log_likelihood(p, d),
        lambda p: gamma_gamma.negative_mean_log_likelihood_hessian(p, d),
        np.log([2.5, 3.5, 40.0]),
    )


# ------------------------------------------------------------------------------------------------ CLV


def test_discount_factors_by_hand() -> None:
    """10 % a year, each month's transactions discounted at the month's end: month 12 by exactly 1.1, month 6 by
    sqrt(1.1); one month is 365.25 / 12 = 30.4375 days or 4.3482 weeks."""
    settings = ClvSettings()
    factors = settings.discount_factors()
    assert len(factors) == 12
    assert factors[11] == pytest.approx(1 / 1.1, rel=1e-15)
    assert factors[5] == pytest.approx(1 / math.sqrt(1.1), rel=1e-15)
    assert settings.month_length == 30.4375 and settings.horizon_length == 365.25
    assert ClvSettings(time_unit="week").month_length == pytest.approx(30.4375 / 7)
    assert ClvSettings(annual_discount_rate=0.0).discount_factors().tolist() == [1.0] * 12


@pytest.mark.parametrize("time_unit", ["day", "week"])
def test_clv_is_the_month_by_month_discounted_sum(time_unit: str) -> None:
    """predicted_clv = E[M] * sum over months of (E[Y(m L)] - E[Y((m-1) L)]) / 1.1^(m / 12), evaluated here
    directly, customer by customer, with bgnbd.expected_transactions."""
    settings = ClvSettings(time_unit=time_unit, horizon_months=12, annual_discount_rate=0.10)
    scale = 7.0 if time_unit == "week" else 1.0
    bg = bgnbd.BgNbdParameters(0.8, 24.0 / scale, 0.85, 7.0)
    gg = GAMMA_GAMMA[0]
    x = np.array([0, 1, 4, 4, 12])
    t_x = np.array([0, 30, 200, 200, 600]) / scale
    T = np.array([10, 400, 250, 700, 610]) / scale
    m = np.array([np.nan, 55.0, 80.0, 80.0, 20.0])
    scores = customer_scores(bg, gg, x, t_x, T, m, settings)
    value = gamma_gamma.expected_mean_value(gg, x, m)
    month = 365.25 / 12 / scale
    for i in range(len(x)):
        cumulative = [
            bgnbd.expected_transactions(bg, k * month, x[i : i + 1], t_x[i : i + 1], T[i : i + 1])[0] for k in range(13)
        ]
        clv = sum(value[i] * (cumulative[k] - cumulative[k - 1]) / 1.1 ** (k / 12) for k in range(1, 13))
        assert scores["predicted_clv"][i] == pytest.approx(clv, rel=1e-12)
        assert scores["expected_transactions"][i] == pytest.approx(cumulative[12], rel=1e-12)
    # the same history gives the same scores (customers 2 and 3 differ only in T)
    assert scores["probability_alive"][2] > scores["probability_alive"][3]


def test_clv_equals_lifetimes_customer_lifetime_value_with_its_30_day_months() -> None:
    """lifetimes discounts month i (30 days with freq='D') by (1 + monthly rate)^i; with 30-day months and the
    monthly rate equivalent to 10 % a year, our CLV must be the same number."""
    bg, gg = BGNBD[0], GAMMA_GAMMA[0]
    bgf = lifetimes.BetaGeoFitter()
    bgf.params_ = pd.Series({"r": bg.r, "alpha": bg.alpha, "a": bg.a, "b": bg.b})
    bgf.predict = bgf.conditional_expected_number_of_purchases_up_to_time
    ggf = lifetimes.GammaGammaFitter()
    ggf.params_ = pd.Series({"p": gg.p, "q": gg.q, "v": gg.gamma})
    x = pd.Series([0.0, 1, 3, 9, 25])
    t_x = pd.Series([0.0, 100, 300, 500, 700])
    T = pd.Series([50.0, 400, 320, 900, 720])
    m = pd.Series([0.0, 40, 70, 55, 90])
    theirs = ggf.customer_lifetime_value(bgf, x, t_x, T, m, time=12, discount_rate=1.1 ** (1 / 12) - 1, freq="D")
    settings = ClvSettings(days_per_month=30.0)
    ours = customer_scores(bg, gg, x.to_numpy(), t_x.to_numpy(), T.to_numpy(), m.to_numpy(), settings)
    assert ours["predicted_clv"] == pytest.approx(theirs.to_numpy(), rel=1e-9)
