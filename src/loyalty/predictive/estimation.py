"""Maximum likelihood in log-parameter space, with one optimiser and one convergence rule for every model.

Both models have strictly positive parameters. Optimising their logarithms removes the positivity constraint,
puts parameters of very different scales (alpha in days is ~10, a is ~1) on comparable footing, and turns the
bounds into a guard against running off to 0 or infinity, which we report instead of hiding: a maximum at a bound
means the data do not pin the parameter down (too few customers, no repeat buyers, identical values).

The objective is the negative *mean* log-likelihood (the sum divided by the number of customers), so it is O(1)
whatever the number of customers and one set of tolerances works from ten customers to ten million.

Two stages (see DECISIONS.md, "Predicted CLV"):
1. L-BFGS-B with the analytic gradient from the starting values, on a random subsample of the customers when
   there are many (``WARM_START_CUSTOMERS``): cheap, robust far from the optimum, and lands close to it.
2. Newton steps on all customers with the analytic Hessian and a backtracking line search, until the largest
   gradient component is below ``GRADIENT_TOLERANCE``. Near the optimum Newton converges quadratically, so two to
   four full passes over the data replace the 15-40 that L-BFGS-B needs from scratch. Should Newton fail (the
   Hessian not positive definite, no descent), L-BFGS-B on all customers takes over, and Newton polishes again.

Converged means: a finite optimum, the largest |d mean log-likelihood / d log parameter| at most
GRADIENT_TOLERANCE, a positive definite Hessian there (a maximum, not a saddle), and no log-parameter at its bound.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize

# |log parameter| beyond this is treated as "ran off to 0 or infinity": e^16 ~ 9e6, e^-16 ~ 1e-7
LOG_PARAMETER_BOUND = 16.0
# Largest |d mean log-likelihood / d log parameter| accepted at the optimum. The mean log-likelihood is O(1) and
# its summation noise ~1e-13, so this is far above noise, and (with the Hessian's curvature) pins the parameters
# to about 6 significant digits.
GRADIENT_TOLERANCE = 1e-8
WARM_START_CUSTOMERS = 200_000  # above this many customers, stage 1 runs on a subsample of about this size
NEWTON_STEPS = 25
LBFGS_ITERATIONS = 2000
# a parameter beyond e^+-10 (2e4 or 5e-5) when the optimiser stalls is running off to infinity or 0
_RUNNING_OFF = 10.0
_VALUE_NOISE = 1e-11  # relative rounding noise allowed in the mean log-likelihood
_SEED = 20050101  # fixed: the subsample, hence every fit, is reproducible

CONVERGED, NOT_CONVERGED, NOT_FITTED = "converged", "not_converged", "not_fitted"

ValueGradient = Callable[[np.ndarray], tuple[float, np.ndarray]]


@dataclass(frozen=True)
class Objective:
    """The negative mean log-likelihood of one model on one data set, as functions of the log-parameters."""

    value_and_gradient: ValueGradient
    with_hessian: Callable[[np.ndarray], tuple[float, np.ndarray, np.ndarray]]
    total_weight: float


@dataclass(frozen=True)
class FitResult:
    """The outcome of one model's fit, whatever happened. ``parameters`` is None unless converged."""

    model: str
    parameter_names: tuple[str, ...]
    status: str
    message: str | None = None
    parameters: dict[str, float] | None = None
    standard_errors: dict[str, float] | None = None
    log_likelihood: float | None = None
    customers: int = 0
    iterations: int = 0
    seconds: float = 0.0
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def converged(self) -> bool:
        return self.status == CONVERGED


def not_fitted(model: str, names: tuple[str, ...], reason: str, customers: int = 0) -> FitResult:
    return FitResult(model, names, NOT_FITTED, reason, customers=customers)


def _lbfgs(fun: ValueGradient, start: np.ndarray, bound: float) -> tuple[np.ndarray, int, str]:
    with np.errstate(all="ignore"):
        result = minimize(
            fun,
            start,
            jac=True,
            method="L-BFGS-B",
            bounds=[(-bound, bound)] * len(start),
            options={"maxiter": LBFGS_ITERATIONS, "ftol": 1e-13, "gtol": GRADIENT_TOLERANCE, "maxcor": 20},
        )
    return result.x, int(result.nit), str(result.message)


def _newton(objective: Objective, start: np.ndarray, bound: float) -> tuple[np.ndarray, int, bool]:
    """Newton steps with backtracking from ``start``: (point, steps, whether the gradient got below tolerance).

    The full step is evaluated with its Hessian straight away (near the optimum it is always taken), so a step
    costs one pass over the data with second derivatives; shorter steps are tried with the gradient only."""
    point = start
    with np.errstate(all="ignore"):
        value, gradient, hessian = objective.with_hessian(point)
        for step_number in range(NEWTON_STEPS):
            if not (math.isfinite(value) and np.all(np.isfinite(gradient)) and np.all(np.isfinite(hessian))):
                return point, step_number, False
            if np.max(np.abs(gradient)) <= GRADIENT_TOLERANCE:
                return point, step_number, True
            try:
                np.linalg.cholesky(hessian)
                step = -np.linalg.solve(hessian, gradient)
            except np.linalg.LinAlgError:
                return point, step_number, False  # not a convex neighbourhood: let L-BFGS-B handle it
            slope = float(gradient @ step)
            length = 1.0
            while length > 1e-10:
                candidate = np.clip(point + length * step, -bound, bound)
                if length == 1.0:
                    candidate_value, candidate_gradient, candidate_hessian = objective.with_hessian(candidate)
                else:
                    candidate_value, candidate_gradient = objective.value_and_gradient(candidate)
                    candidate_hessian = None
                if _acceptable(value, gradient, candidate_value, candidate_gradient, 1e-4 * length * slope):
                    break
                length /= 2
            else:
                return point, step_number, False
            point, value, gradient = candidate, candidate_value, candidate_gradient
            hessian = candidate_hessian if candidate_hessian is not None else objective.with_hessian(point)[2]
    return point, NEWTON_STEPS, bool(np.max(np.abs(gradient)) <= GRADIENT_TOLERANCE)


def _acceptable(
    value: float, gradient: np.ndarray, new_value: float, new_gradient: np.ndarray, required_decrease: float
) -> bool:
    """Armijo's sufficient decrease; or, next to the optimum, where the decrease (~1e-16) is below the sum's
    rounding noise (~1e-13), a value unchanged up to that noise with a smaller gradient."""
    if not math.isfinite(new_value):
        return False
    if new_value <= value + required_decrease:
        return True
    return abs(new_value - value) <= _VALUE_NOISE * max(1.0, abs(value)) and bool(
        np.max(np.abs(new_gradient)) < np.max(np.abs(gradient))
    )


def maximise(
    model: str,
    names: tuple[str, ...],
    objective: Objective,
    start: np.ndarray,
    customers: int,
    warm_start: Callable[[float, np.random.Generator], ValueGradient] | None = None,
) -> FitResult:
    """Maximum-likelihood estimate of the log-parameters (module docstring), never raising on bad data."""
    started = time.perf_counter()
    bound = LOG_PARAMETER_BOUND
    point = np.clip(np.asarray(start, dtype=np.float64), -bound + 1, bound - 1)
    iterations = 0
    if warm_start is not None and customers > 2 * WARM_START_CUSTOMERS:
        share = WARM_START_CUSTOMERS / customers
        point, nit, _ = _lbfgs(warm_start(share, np.random.default_rng(_SEED)), point, bound)
    else:
        point, nit, _ = _lbfgs(objective.value_and_gradient, point, bound)
    iterations += nit
    point, steps, ok = _newton(objective, point, bound)
    iterations += steps
    message = ""
    if not ok:  # far from a maximum after all: L-BFGS-B on everything, then polish again
        point, nit, message = _lbfgs(objective.value_and_gradient, point, bound)
        point, steps, ok = _newton(objective, point, bound)
        iterations += nit + steps
    with np.errstate(all="ignore"):
        value, gradient, hessian = objective.with_hessian(point)
    seconds = time.perf_counter() - started

    largest_gradient = float(np.max(np.abs(gradient))) if np.all(np.isfinite(gradient)) else math.inf
    at_bound = [n for n, v in zip(names, point, strict=True) if abs(v) >= bound - 1e-6]
    if not at_bound and largest_gradient > GRADIENT_TOLERANCE:  # stopped on the way to the edge
        at_bound = [n for n, v in zip(names, point, strict=True) if abs(v) >= _RUNNING_OFF]
    values = {n: float(math.exp(v)) for n, v in zip(names, point, strict=True)}
    common = {"customers": customers, "iterations": iterations, "seconds": seconds}
    if not math.isfinite(value):
        reason = "the log-likelihood is not finite at the optimiser's last point"
    elif at_bound:
        where = ", ".join(f"{n} -> {'infinity' if point[names.index(n)] > 0 else '0'}" for n in at_bound)
        reason = (
            f"the likelihood has no maximum inside the parameter space ({where}): the data do not determine the model"
        )
    elif largest_gradient > GRADIENT_TOLERANCE:
        reason = f"gradient {largest_gradient:.2g} still above {GRADIENT_TOLERANCE:g} after {iterations} iterations"
        reason += f" ({message})" if message else ""
    elif not _positive_definite(hessian):
        reason = "the optimiser stopped at a saddle point or a flat ridge, not a maximum (Hessian not definite)"
    else:
        # asymptotic covariance of the log-parameters: inverse Hessian of the total negative log-likelihood,
        # i.e. of the mean one divided by the number of customers; delta method back to the parameters
        covariance = np.linalg.inv(hessian) / objective.total_weight
        errors = {n: values[n] * float(math.sqrt(max(covariance[i, i], 0.0))) for i, n in enumerate(names)}
        return FitResult(model, names, CONVERGED, None, values, errors, -value * objective.total_weight, **common)
    last = ", ".join(f"{n}={v:.4g}" for n, v in values.items())
    return FitResult(model, names, NOT_CONVERGED, f"{reason}; last point {last}", **common)


def _positive_definite(matrix: np.ndarray) -> bool:
    if not np.all(np.isfinite(matrix)):
        return False
    try:
        np.linalg.cholesky(matrix)
    except np.linalg.LinAlgError:
        return False
    return True
