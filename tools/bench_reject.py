"""How fast the cascade rejects broken candidates: the hostile and broken corpus of the tests,
each evaluated once (no cache), with the median and the spread of seconds to the verdict.

    python tools/bench_reject.py
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from astevo.evaluation.cascade import evaluate  # noqa: E402
from astevo.settings import FitnessSettings
from tests.test_fitness import GATE_CASES, RUNTIME_CASES  # noqa: E402

SLOW_BY_DESIGN = {"infinite loop"}  # rejected by the wall-clock limit, whatever it is set to


def main() -> None:
    settings = FitnessSettings(train=False, check_seconds=15.0, memory_mb=2500, max_parameters=100_000)
    cases = {name: source for name, (source, _) in GATE_CASES.items()}
    cases.update({name: source for name, (source, _, _) in RUNTIME_CASES.items() if name not in SLOW_BY_DESIGN})
    times: dict[str, float] = {}
    for name, source in cases.items():
        started = time.perf_counter()
        evaluation = evaluate(source, settings)
        times[name] = time.perf_counter() - started
        stage = evaluation.failure.name if evaluation.failure else "valid?!"
        print(f"{name:<34} {stage:<6} {times[name]:7.2f} s", flush=True)
    gate = [times[n] for n in GATE_CASES]
    runtime = [times[n] for n in cases if n not in GATE_CASES]
    print(f"median to reject, all {len(times)}: {statistics.median(times.values()):.2f} s")
    print(
        f"median to reject at the gate ({len(gate)}): {statistics.median(gate):.3f} s; "
        f"in the sandbox ({len(runtime)}): {statistics.median(runtime):.2f} s"
    )


if __name__ == "__main__":
    main()
