"""The cold start of an execution environment, Python and Node.js, in ms: what ``Init Duration`` reports.

    .venv/bin/python bench/cold_start.py [--runs 20] [--json PATH]

What is measured
    Starting one environment for a pass-through handler (``bench/passthrough_handler.py`` / ``.mjs``) until it is
    ready for its first invocation: the process started (through util-linux's ``setpriv`` on Linux, for the
    parent-death signal), the interpreter up, the bootstrap run, the handler's module loaded, the "ready" frame
    received. Exactly the code the proxy runs for a cold start (``ProcessExecutor``), timed by it (the environment's
    ``init_ms``, the ``Init Duration`` of its first REPORT line). Each run starts a new environment, then stops it.

    Python runs with three interpreters: this virtualenv's (the default of ``python``; its site imports
    edgeproxy's editable-install finder, which costs some 20 ms), the base one it was made from (with whatever
    its site-packages hold), and a new, empty virtualenv, like a function's own.

    For where the time goes, the same runs for what the bootstrap stands on: the bare interpreter (``python -c
    pass``; ``python -S``, no site at all; ``node -e 0``), timed from outside (fork, exec, exit, wait).

    Figures are medians and the fastest run; the machine's load moves them (compare the rows of one run).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from edgeproxy.runtime.functions import Function  # noqa: E402
from edgeproxy.runtime.process import ProcessExecutor  # noqa: E402

BASE_PYTHON = getattr(sys, "_base_executable", sys.executable)


def environment_starts(handler: str, interpreter: str, runs: int) -> list[float]:
    """``init_ms`` of ``runs`` new environments of ``handler``, one after the other."""
    times = []
    for _ in range(runs):
        executor = ProcessExecutor(idle_reclaim=600)
        function = Function.resolve(handler, HERE, isolation="process", interpreter=interpreter)
        try:
            failures = executor.prepare([function])
            if failures:
                raise SystemExit(f"cold_start.py: {handler} failed its init: {failures[function]}")
            [environment] = executor.pools[function].idle
            assert environment.init_ms is not None
            times.append(environment.init_ms)
        finally:
            executor.close()
    return times


def process_runs(command: list[str], runs: int) -> list[float]:
    """Milliseconds from starting ``command`` to its exit, ``runs`` times."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, check=True, cwd=tempfile.gettempdir())
        times.append((time.perf_counter() - started) * 1000)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20, help="environments started per row (default 20)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures to PATH as JSON")
    args = parser.parse_args()
    if os.environ.pop("PYTHONDONTWRITEBYTECODE", None):
        # Set on some machines (this one): then no interpreter caches bytecode, and every start compiles its
        # modules. The environments started here (which get this environment) cache theirs, as by default.
        print("(PYTHONDONTWRITEBYTECODE unset for the environments started here)", file=sys.stderr)
    rows: dict[str, list[float]] = {}
    rows["Python environment (this venv's interpreter)"] = environment_starts(
        "passthrough_handler.py:handler", sys.executable, args.runs
    )
    rows["Python environment (the base interpreter)"] = environment_starts(
        "passthrough_handler.py:handler", BASE_PYTHON, args.runs
    )
    with tempfile.TemporaryDirectory(prefix="edgeproxy-cold-") as folder:
        venv = Path(folder) / "venv"
        subprocess.run([BASE_PYTHON, "-m", "venv", "--without-pip", str(venv)], check=True)
        fresh = str(venv / "bin" / "python")
        rows["Python environment (a function's own new venv)"] = environment_starts(
            "passthrough_handler.py:handler", fresh, args.runs
        )
        rows["python -c pass (a new venv)"] = process_runs([fresh, "-c", "pass"], args.runs)
    node = shutil.which("node")
    if node is not None:
        rows["Node.js environment"] = environment_starts("passthrough_handler.mjs:handler", node, args.runs)
    rows["python -c pass (this venv's interpreter)"] = process_runs([sys.executable, "-c", "pass"], args.runs)
    rows["python -c pass (the base interpreter)"] = process_runs([BASE_PYTHON, "-c", "pass"], args.runs)
    rows["python -S -c pass (no site)"] = process_runs([BASE_PYTHON, "-S", "-c", "pass"], args.runs)
    if node is not None:
        rows["node -e 0"] = process_runs([node, "-e", "0"], args.runs)
    print(f"cold starts, {args.runs} runs each (ms)")
    print(f"{'':48}{'median':>10}{'fastest':>10}")
    for label, times in rows.items():
        print(f"{label:48}{statistics.median(times):>10.1f}{min(times):>10.1f}")
    if args.json:
        figures = {label: {"median_ms": statistics.median(times), "runs_ms": times} for label, times in rows.items()}
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
