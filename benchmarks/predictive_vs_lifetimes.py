"""Benchmark: the project's predicted-CLV step against lifetimes on the same customers, in the same process.

The step: fit BG/NBD and Gamma-Gamma by maximum likelihood and score every customer (probability alive, expected
transactions over 12 months, expected mean transaction value, predicted CLV discounted at 10 % a year), i.e.
``loyalty.predictive.clv.predict`` as the dbt models run it. lifetimes does the same work with
BetaGeoFitter.fit, GammaGammaFitter.fit, conditional_probability_alive,
conditional_expected_number_of_purchases_up_to_time, conditional_expected_average_profit and
customer_lifetime_value. Months are 30 days on both sides here (lifetimes' freq='D' month), so the outputs can be
compared customer by customer.

Inputs: customers' (x, t_x, T, mean repeat value) in days, read from generated raw data by the DuckDB mirror of the
warehouse's definition (loyalty.predictive.raw_history); the data are generated first unless --raw-dir points at
them. Each repetition times both tools; the report gives medians, the ratio lifetimes / project, the parameter and
prediction agreement, and the project step's peak memory (process RSS sampled every 2 ms by psutil).

    .venv/bin/python benchmarks/predictive_vs_lifetimes.py                      # 1,000,000 customers, 3 repeats
    .venv/bin/python benchmarks/predictive_vs_lifetimes.py --quick              # 20,000 customers
    .venv/bin/python benchmarks/predictive_vs_lifetimes.py --raw-dir /tmp/raw1m --customers 1000000

Other code can call ``run(customers, repeats)``: it returns the figures as a dict.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import psutil

from loyalty.generator import generate
from loyalty.predictive import bgnbd, gamma_gamma
from loyalty.predictive.clv import ClvSettings, predict
from loyalty.predictive.raw_history import customer_histories

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # lifetimes sets a pandas option deprecated in pandas 3
    from lifetimes import BetaGeoFitter, GammaGammaFitter

ANNUAL_DISCOUNT_RATE = 0.10
HORIZON_MONTHS = 12
DAYS_PER_MONTH = 30.0  # lifetimes' month with freq="D"
SCORES = ("probability_alive", "expected_transactions", "expected_mean_transaction_value", "predicted_clv")


class PeakMemory:
    """Largest resident set size of this process while the block runs, sampled by a background thread."""

    def __init__(self, interval: float = 0.002) -> None:
        self.interval = interval
        self.process = psutil.Process()
        self.before = self.peak = 0

    def __enter__(self) -> PeakMemory:
        self.before = self.peak = self.process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(self.interval)

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)


def histories(customers: int, raw_dir: Path | None = None, seed: int = 42) -> pd.DataFrame:
    """(x, t_x, T, mean repeat value) in days for the generated customers in ``raw_dir`` (generated there
    first if it holds no data; into a temporary folder if None), as of the data's last day."""
    if raw_dir is not None and (raw_dir / "manifest.json").exists():
        manifest = json.loads((raw_dir / "manifest.json").read_text())
        return customer_histories(raw_dir, date.fromisoformat(manifest["data_end_date"]))
    with tempfile.TemporaryDirectory(prefix="clv-benchmark-") as tmp:
        target = raw_dir or Path(tmp)
        manifest = generate(target, customers, seed, fmt="parquet", progress=False, force=raw_dir is None)
        return customer_histories(target, date.fromisoformat(manifest["data_end_date"]))


def project_step(frame: pd.DataFrame) -> dict[str, object]:
    """Fit both models and score every customer, as clv_model_parameters + clv_customer_predictions do."""
    settings = ClvSettings(
        horizon_months=HORIZON_MONTHS, annual_discount_rate=ANNUAL_DISCOUNT_RATE, days_per_month=DAYS_PER_MONTH
    )
    result = predict(frame, settings)
    parameters = {(r["model"], r["parameter"]): r["value"] for r in result.parameters.to_pylist()}
    scores = {name: result.predictions.column(name).to_numpy(zero_copy_only=False) for name in SCORES}
    seconds = {f"fit_{fit.model}": fit.seconds for fit in result.fits}  # the optimisation alone
    return {"parameters": parameters, "scores": scores, "seconds": seconds}


def lifetimes_step(frame: pd.DataFrame) -> dict[str, object]:
    """The same work with lifetimes (Gamma-Gamma fitted on repeat customers with a positive mean value, as the
    project does: the model has no density at 0)."""
    x = frame["frequency"].to_numpy(np.float64)
    t_x = frame["recency"].to_numpy(np.float64)
    T = frame["tenure"].to_numpy(np.float64)
    m = np.nan_to_num(frame["mean_repeat_value"].to_numpy(np.float64))
    repeat = (x > 0) & (m > 0)
    clock = [time.perf_counter()]

    def lap() -> float:
        clock.append(time.perf_counter())
        return clock[-1] - clock[-2]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bgf = BetaGeoFitter().fit(x, t_x, T)
        seconds = {"fit_bgnbd": lap()}
        ggf = GammaGammaFitter().fit(x[repeat], m[repeat])
        seconds["fit_gamma_gamma"] = lap()
        frequency, recency, tenure, value = (pd.Series(v) for v in (x, t_x, T, m))
        scores = {
            "probability_alive": bgf.conditional_probability_alive(x, t_x, T),
            "expected_transactions": bgf.conditional_expected_number_of_purchases_up_to_time(
                HORIZON_MONTHS * DAYS_PER_MONTH, x, t_x, T
            ),
            "expected_mean_transaction_value": ggf.conditional_expected_average_profit(frequency, value).to_numpy(),
        }
        seconds["scores_without_clv"] = lap()
        scores["predicted_clv"] = ggf.customer_lifetime_value(
            bgf,
            frequency,
            recency,
            tenure,
            value,
            time=HORIZON_MONTHS,
            discount_rate=(1 + ANNUAL_DISCOUNT_RATE) ** (1 / 12) - 1,
            freq="D",
        ).to_numpy()
        seconds["clv"] = lap()
    parameters = {("bgnbd", n): float(bgf.params_[n]) for n in bgnbd.NAMES}
    parameters |= {("gamma_gamma", n): float(ggf.params_["v" if n == "gamma" else n]) for n in gamma_gamma.NAMES}
    return {"parameters": parameters, "scores": scores, "seconds": seconds}


def _timed(step: Callable[[pd.DataFrame], dict], frame: pd.DataFrame) -> tuple[float, dict, PeakMemory]:
    with PeakMemory() as memory:
        started = time.perf_counter()
        out = step(frame)
        seconds = time.perf_counter() - started
    return seconds, out, memory


def _relative_difference(ours: np.ndarray, theirs: np.ndarray) -> float:
    ours, theirs = np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64)
    both = np.isfinite(ours) & np.isfinite(theirs)
    scale = np.maximum(np.abs(theirs[both]), 1e-12)
    return float(np.max(np.abs(ours[both] - theirs[both]) / scale)) if both.any() else float("nan")


def run(
    customers: int = 1_000_000,
    repeats: int = 3,
    raw_dir: Path | None = None,
    seed: int = 42,
    log: Callable[[str], None] = lambda _: None,
) -> dict[str, object]:
    """Time ``repeats`` repetitions of the project step and the lifetimes step on the same customers; return the
    medians, their ratio, the agreement of parameters and predictions, and the project step's peak memory."""
    started = time.perf_counter()
    frame = histories(customers, raw_dir, seed)
    log(f"inputs: {len(frame):,} customers with a valid order ({time.perf_counter() - started:.0f} s to prepare)")
    warm = frame.head(2000)  # imports, first-call overheads and autograd tracing, on both sides
    project_step(warm)
    lifetimes_step(warm)

    project_seconds, lifetimes_seconds, peaks, increases = [], [], [], []
    lifetimes_parts: list[dict[str, float]] = []
    project_parts: list[dict[str, float]] = []
    for repetition in range(1, repeats + 1):
        seconds, ours, memory = _timed(project_step, frame)
        project_seconds.append(seconds)
        project_parts.append(ours["seconds"])
        peaks.append(memory.peak)
        increases.append(memory.peak - memory.before)
        seconds, theirs, _ = _timed(lifetimes_step, frame)
        lifetimes_seconds.append(seconds)
        lifetimes_parts.append(theirs["seconds"])
        log(f"repetition {repetition}: project {project_seconds[-1]:.2f} s, lifetimes {seconds:.2f} s")

    parameter_difference = {
        f"{model}.{name}": abs(ours["parameters"][(model, name)] / value - 1)
        for (model, name), value in theirs["parameters"].items()
    }
    project_median, lifetimes_median = statistics.median(project_seconds), statistics.median(lifetimes_seconds)
    parts = {name: statistics.median(p[name] for p in lifetimes_parts) for name in lifetimes_parts[0]}
    optimisation = {name: statistics.median(p[name] for p in project_parts) for name in project_parts[0]}
    without_clv = statistics.median(
        p["fit_bgnbd"] + p["fit_gamma_gamma"] + p["scores_without_clv"] for p in lifetimes_parts
    )
    return {
        "customers": len(frame),
        "distinct_histories": int(frame[["frequency", "recency", "tenure"]].drop_duplicates().shape[0]),
        "repeats": repeats,
        "project_seconds": project_seconds,
        "lifetimes_seconds": lifetimes_seconds,
        "project_median_seconds": project_median,
        "lifetimes_median_seconds": lifetimes_median,
        "speedup": lifetimes_median / project_median,
        "lifetimes_median_seconds_by_part": parts,
        "project_median_optimisation_seconds": optimisation,
        "lifetimes_median_seconds_without_clv": without_clv,
        "speedup_against_lifetimes_without_clv": without_clv / project_median,
        "project_peak_rss_bytes": max(peaks),
        "project_peak_increase_bytes": max(increases),
        "parameters": {f"{m}.{n}": v for (m, n), v in ours["parameters"].items()},
        "lifetimes_parameters": {f"{m}.{n}": v for (m, n), v in theirs["parameters"].items()},
        "max_parameter_relative_difference": max(parameter_difference.values()),
        "parameter_relative_difference": parameter_difference,
        "score_max_relative_difference": {
            name: _relative_difference(ours["scores"][name], theirs["scores"][name]) for name in SCORES
        },
    }


def _report(figures: dict[str, object]) -> str:
    gib = 2**30
    lines = [
        f"customers: {figures['customers']:,} ({figures['distinct_histories']:,} distinct (x, t_x, T)),"
        f" {figures['repeats']} repetitions",
        f"project   median {figures['project_median_seconds']:8.2f} s   runs "
        + ", ".join(f"{s:.2f}" for s in figures["project_seconds"]),
        f"lifetimes median {figures['lifetimes_median_seconds']:8.2f} s   runs "
        + ", ".join(f"{s:.2f}" for s in figures["lifetimes_seconds"]),
        "project optimisation alone (median): "
        + ", ".join(f"{name} {value:.2f} s" for name, value in figures["project_median_optimisation_seconds"].items()),
        "lifetimes median by part: "
        + ", ".join(f"{name} {value:.2f} s" for name, value in figures["lifetimes_median_seconds_by_part"].items()),
        f"ratio lifetimes / project: {figures['speedup']:.1f}x (same outputs);"
        f" {figures['speedup_against_lifetimes_without_clv']:.1f}x against lifetimes without customer_lifetime_value"
        f" ({figures['lifetimes_median_seconds_without_clv']:.2f} s)",
        f"project step peak memory: {figures['project_peak_rss_bytes'] / gib:.2f} GiB process RSS"
        f" ({figures['project_peak_increase_bytes'] / gib:.2f} GiB above the RSS before the step)",
        "parameters (project / lifetimes, relative difference):",
    ]
    for key, value in figures["parameters"].items():
        theirs = figures["lifetimes_parameters"][key]
        lines.append(f"  {key:<18} {value:14.6g} {theirs:14.6g}   {figures['parameter_relative_difference'][key]:.1e}")
    lines.append("predictions, largest relative difference over customers:")
    lines += [f"  {name:<32} {value:.1e}" for name, value in figures["score_max_relative_difference"].items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000, help="customers to generate (default 1,000,000)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repetitions (default 3; medians reported)")
    parser.add_argument("--quick", action="store_true", help="20,000 customers, for a smoke run")
    parser.add_argument("--raw-dir", type=Path, help="generated raw data to use, or an empty folder to keep them")
    parser.add_argument("--seed", type=int, default=42, help="generator seed (default 42)")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    customers = 20_000 if args.quick else args.customers
    figures = run(customers, args.repeats, args.raw_dir, args.seed, log=lambda line: print(line, file=sys.stderr))
    print(_report(figures))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
