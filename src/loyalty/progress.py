"""What a night is doing, while it does it: the current step, dbt's nodes done out of the total, the time elapsed.

Two ways of showing it:

- **bar** (stderr is a terminal, ``loyalty build``; on stderr): one tqdm line per step, redrawn every second with
  the time in the step; in ``dbt_build`` it becomes a bar of dbt nodes done out of the total, with the node dbt is
  running. A line stays for each finished step.
- **lines** (stderr is not a terminal: cron, a log file, a pipe; on stdout, with dbt's output and the summary, so
  stderr keeps only warnings and the one ``error:`` line of a failed night; under Prefect the lines go to the flow
  run's logger, so they are both on the terminal and in Prefect's logs): a line when a step starts and when it
  ends, with its duration; in dbt steps a line each time another tenth of the nodes is done and a last
  ``N of N`` line; in a step without counts (the GX checkpoint, dbt docs) a line every minute it runs on.

Every line starts with the time since the night started: ``[+0:03:25] dbt_build: 90 of 180 dbt nodes done``.
``quiet`` (``loyalty build --quiet``, for cron) keeps the step lines only, with no bar: two lines per step, the end
line with the step's duration and dbt's count.

dbt's counts come from its own output (``12 of 180 START sql table model main.stg_orders ... [RUN]`` and the
result line ``12 of 180 OK created sql table model ...``, ``PASS``, ``FAIL 3``, ``ERROR``, ``SKIP``...): dbt runs
as a child process (``loyalty.dbt_runner.run_dbt``), which feeds each line it prints to the step's progress.
"""

from __future__ import annotations

import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, Any

# dbt's node lines: "12 of 180 START ...", "12 of 180 OK created ...", "3 of 180 FAIL 2 ...", "4 of 180 SKIP ..."
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_TIME = r"^(?:\d\d:\d\d:\d\d(?:\.\d+)?\s+)?"  # dbt's timestamp at the start of each line
_NODE_LINE = re.compile(_TIME + r"(\d+) of (\d+) (START|OK|PASS|WARN|ERROR|FAIL|SKIP|NO-OP)\b(.*)$")
# dbt's last line, with the number of nodes that ran: "Done. PASS=374 WARN=0 ERROR=0 SKIP=0 NO-OP=4 TOTAL=378"
_DONE_LINE = re.compile(_TIME + r"Done\. .*\bTOTAL=(\d+)$")
_RESULT = re.compile(r"\s*\[[^\]]*\]$")  # "[RUN]", "[OK in 0.1s]" at the end of a node line
FAILED_STATUSES = frozenset({"ERROR", "FAIL"})
LINE_TENTHS = 10  # lines mode: a count line each time another tenth of the nodes is done
HEARTBEAT_SECONDS = 60.0  # lines mode: a line every minute of a step without counts
TICK_SECONDS = 1.0  # bar mode: the bar's clock is redrawn this often


@dataclass(frozen=True)
class NodeLine:
    """One of dbt's node lines: node ``index`` of ``total`` started (``START``) or finished with ``status``."""

    index: int
    total: int
    status: str
    text: str  # the rest of the line, e.g. "sql table model main.stg_orders ..... [RUN]"

    @property
    def started(self) -> bool:
        return self.status == "START"

    @property
    def node(self) -> str:
        """The node's name as dbt prints it (the last word before the dots), or ''."""
        words = _RESULT.sub("", self.text).split(" ..", 1)[0].split()
        return words[-1] if words else ""


def parse_dbt_line(line: str) -> NodeLine | None:
    """The node line in one line of dbt's text output (colours and timestamp allowed), or None."""
    match = _NODE_LINE.match(_ANSI.sub("", line).strip())
    if match is None:
        return None
    index, total, status, rest = match.groups()
    return NodeLine(int(index), int(total), status, rest.strip())


def parse_dbt_total(line: str) -> int | None:
    """The number of nodes that ran, from dbt's ``Done. ... TOTAL=n`` line, or None."""
    match = _DONE_LINE.match(_ANSI.sub("", line).strip())
    return int(match.group(1)) if match else None


@dataclass
class NodeCount:
    """dbt's nodes done out of the total, from its node lines, over the dbt runs of one step (the Spark engine's
    build is two: loyalty.spark_engine.build_in_phases): each run's ``Done.`` line ends it (``finish``)."""

    run_total: int = 0  # of the dbt run under way
    run_done: set[int] = field(default_factory=set)
    failed: int = 0
    earlier: int = 0  # the nodes of the step's earlier runs
    running: str = ""  # the node dbt started last

    @property
    def total(self) -> int:
        return self.earlier + self.run_total

    @property
    def done(self) -> int:
        return self.earlier + len(self.run_done)

    def add(self, line: NodeLine) -> bool:
        """Count ``line``; True when a node finished."""
        self.run_total = max(self.run_total, line.total)
        if line.started:
            self.running = line.node
            return False
        if line.index not in self.run_done and line.status in FAILED_STATUSES:
            self.failed += 1
        self.run_done.add(line.index)
        return True

    def finish(self, total: int) -> None:
        """The run under way ended, having run ``total`` nodes (its ``Done. ... TOTAL=n`` line)."""
        self.earlier += total
        self.run_total, self.run_done = 0, set()

    def describe(self) -> str:
        failed = f" ({self.failed} failed)" if self.failed else ""
        return f"{self.done} of {self.total} dbt nodes done{failed}"


def clock(seconds: float) -> str:
    """``H:MM:SS``."""
    whole = int(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def _is_terminal(stream: IO[str]) -> bool:
    """A terminal a bar can be drawn on: a pseudo-terminal without a size (0 columns) shows no tqdm bar at all."""
    if not getattr(stream, "isatty", lambda: False)():
        return False
    try:
        return os.get_terminal_size(stream.fileno()).columns > 0
    except (OSError, ValueError, AttributeError):
        return True  # a terminal of its own kind (no file descriptor): tqdm finds its width


def _tqdm() -> Any:
    from tqdm import tqdm

    return tqdm


class Progress:
    """The night's progress (see the module's docstring). ``log`` takes each plain line (default: print to
    ``stream``); ``bar`` None means a bar exactly when ``stream`` is a terminal and the output is not quiet."""

    def __init__(
        self,
        *,
        stream: IO[str] | None = None,
        log: Callable[[str], None] | None = None,
        bar: bool | None = None,
        quiet: bool = False,
        clock_: Callable[[], float] = time.monotonic,
    ) -> None:
        if bar is None:
            bar = not quiet and log is None and _is_terminal(stream or sys.stderr)
        # the bar on stderr (where a terminal's bars go), plain lines on stdout with the command's other output:
        # stderr stays for warnings and the one ``error:`` line
        self.stream = stream or (sys.stderr if bar else sys.stdout)
        self.quiet = quiet
        self.bar = bar
        self._log = log
        self._now = clock_
        self.started = clock_()
        self.step: str | None = None
        self.step_started = 0.0
        self.count: NodeCount | None = None
        self._lines_at = 0  # the tenth of the nodes the last count line was at
        self._last_line = 0.0
        self._lock = threading.Lock()
        self._bar: Any = None
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    # -------------------------------------------------------------------------------------------- the lines

    def elapsed(self) -> str:
        return clock(self._now() - self.started)

    def line(self, text: str) -> None:
        """One plain line, with the time since the night started (above the bar in bar mode)."""
        text = f"[+{self.elapsed()}] {text}"
        self._last_line = self._now()
        if self._log is not None:
            self._log(text)
        elif self._bar is not None:
            self._bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def passthrough(self, text: str) -> None:
        """A line of dbt's own output (shown when not quiet), kept above the bar in bar mode."""
        if self._bar is not None:
            self._bar.write(text, file=sys.stdout)
        else:
            print(text, flush=True)

    # -------------------------------------------------------------------------------------------- steps

    @contextmanager
    def in_step(self, name: str) -> Iterator[None]:
        """Show the step while it runs; its end line says how long it took (and dbt's count, if any)."""
        global _ACTIVE
        self.step, self.step_started, self.count, self._lines_at = name, self._now(), None, 0
        previous, _ACTIVE = _ACTIVE, self
        if self.bar:
            self._open_bar()
        else:
            self.line(f"{name}: started")
        self._start_ticker()
        ok = False
        try:
            yield
            ok = True
        finally:
            self._stop_ticker()
            seconds = self._now() - self.step_started
            counted = f", {self.count.describe()}" if self.count and self.count.total else ""
            self._close_bar()
            self.line(f"{name}: {'done in' if ok else 'failed after'} {seconds:.1f} s{counted}")
            _ACTIVE = previous
            self.step = None

    def dbt_output(self, text: str) -> None:
        """One line of dbt's output, during a step: counts its node lines. dbt 1.11's "of Y" counts unit tests
        more than once (dbt-core#11185): the total is corrected by its last line (``Done. ... TOTAL=n``)."""
        node, total = parse_dbt_line(text), None
        if node is None and (total := parse_dbt_total(text)) is None:
            return
        with self._lock:
            if self.count is None:
                self.count = NodeCount()
            count = self.count
            if node is not None:
                finished = count.add(node)
            else:
                count.finish(total or 0)
                finished = True
            if self._bar is not None:
                if self._bar.total != count.total:  # (not reset(): it would restart the bar's clock)
                    self._bar.total = count.total
                    self._bar.bar_format = "{desc}: {n_fmt}/{total_fmt} dbt nodes |{bar}| {elapsed}{postfix}"
                self._bar.n = count.done
                running = count.running  # (cut: a long test name would squeeze the bar to nothing)
                self._bar.set_postfix_str(running if len(running) <= 40 else running[:39] + "…", refresh=False)
                self._bar.refresh()
                return
        if self.quiet or not finished:
            return
        tenth = count.done * LINE_TENTHS // max(count.total, 1)
        if tenth > self._lines_at or total is not None:
            self._lines_at = tenth
            self.line(f"{self.step}: {count.describe()}")

    # -------------------------------------------------------------------------------------------- the bar

    def _open_bar(self) -> None:
        self._bar = _tqdm()(
            total=None,
            desc=self.step,
            file=self.stream,
            leave=False,
            dynamic_ncols=True,
            bar_format="{desc}: {elapsed}{postfix}",
            mininterval=0.2,
        )

    def _close_bar(self) -> None:
        with self._lock:
            if self._bar is not None:
                self._bar.close()
                self._bar = None

    def _start_ticker(self) -> None:
        """Bar mode: redraw the bar's clock every second; lines mode: a line every minute without a count line."""
        if not self.bar and self.quiet:
            return
        self._stop.clear()
        self._ticker = threading.Thread(target=self._tick, name="loyalty-progress", daemon=True)
        self._ticker.start()

    def _stop_ticker(self) -> None:
        if self._ticker is not None:
            self._stop.set()
            self._ticker.join()
            self._ticker = None

    def _tick(self) -> None:
        while not self._stop.wait(TICK_SECONDS if self.bar else 1.0):
            with self._lock:
                if self._bar is not None:
                    self._bar.refresh()
                    continue
            if self._now() - self._last_line >= HEARTBEAT_SECONDS:
                self.line(f"{self.step}: running for {clock(self._now() - self.step_started)}")


_ACTIVE: Progress | None = None


def active() -> Progress | None:
    """The progress of the step running now (``Progress.in_step``), for dbt's output; None outside a night."""
    return _ACTIVE
