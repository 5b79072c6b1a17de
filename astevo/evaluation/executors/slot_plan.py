"""How many evaluation slots, and how many training threads each, suit this machine and this run.

The best setting moves with the machine (cores, GPUs), the model (seconds per proposal, whether it
runs on the CPU) and the seed (seconds per training), so astevo measures them at the start of a run
and predicts a generation's wall time for every setting: proposals are made one after another,
each child trains as soon as it is proposed and a slot is free, and the children that racing trains
again follow with the model idle. On a CPU every thread shares the cores; a training with several
threads is held to the speed of its slowest one, and llama.cpp's threads spin while they wait for
each other, so only single-thread trainings may run beyond the cores the model leaves, and only
beside a single-thread model (measured: 2 slots of 1 thread next to a 1-thread model, 1.28x one slot).
With GPUs, each slot trains on its own GPU.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

_CLOSE = 0.03  # predictions this close count as a tie: the fewer slots (less memory) win, then more threads


@dataclass(frozen=True)
class MachineTimings:
    """What the choice is made from: measured at the start of a run, or given in a test."""

    cores: int
    gpus: int
    model_cores: float  # cores the variation's process took on average while it proposed
    propose_seconds: float  # one proposal, its fast checks included
    train_seconds: dict[int, float]  # one evaluation's seconds by training threads, on an idle machine
    population: int
    further_trainings: int  # racing's trainings per generation, after the proposals

    def __post_init__(self) -> None:
        if self.cores < 1 or not self.train_seconds or min(self.train_seconds) < 1:
            raise ValueError(f"timings need a core and a training time at 1 thread or more: {self}")

    def training_seconds(self, cores: float) -> float:
        """A training's seconds with this many cores (fewer than one: time-sliced), by Amdahl's law fitted to the
        thread counts measured (without a measurement at 1 thread, no speed-up is assumed)."""
        fewest, most = min(self.train_seconds), max(self.train_seconds)
        single = self.train_seconds[fewest]
        serial = 1.0
        if fewest == 1 and most > 1:
            ratio = self.train_seconds[most] / single
            serial = min(max((ratio - 1 / most) / (1 - 1 / most), 0.0), 1.0)
        if cores <= 1:
            return single / cores
        return single * (serial + (1 - serial) / cores)


@dataclass(frozen=True)
class SlotPlan:
    """The setting chosen, what it is predicted to give, and why, in one line."""

    slots: int
    threads: int
    per_hour: float  # predicted individuals per hour
    reason: str

    def record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> SlotPlan:
        return cls(int(record["slots"]), int(record["threads"]), float(record["per_hour"]), str(record["reason"]))


def plan_slots(timings: MachineTimings, *, threads: int | None = None) -> SlotPlan:
    """The setting with the most individuals per hour; a given thread count is kept."""
    settings = _settings(timings, threads)
    rates = {setting: individuals_per_hour(timings, *setting) for setting in settings}
    best = max(rates.values())
    chosen = min((s for s in settings if rates[s] >= best * (1 - _CLOSE)), key=lambda s: (s[0], -s[1]))
    return SlotPlan(chosen[0], chosen[1], rates[chosen], _reason(timings, chosen, rates))


def individuals_per_hour(timings: MachineTimings, slots: int, threads: int) -> float:
    seconds = _generation_seconds(timings, slots, threads)
    return 3600.0 * timings.population / seconds if seconds > 0 else float("inf")


def widest_training(cores: int, model_cores: float) -> int:
    """The most threads one training may get beside the model: a wider one would run beyond the cores the model
    leaves, where threads that wait for each other collapse."""
    return max(1, math.floor(cores - model_cores + 1e-9))


def _settings(timings: MachineTimings, threads: int | None) -> list[tuple[int, int]]:
    """Every (slots, threads) worth predicting: one slot per GPU with the cores shared out; on a CPU, settings
    that keep every training within the cores, or single threads beside a single-thread model. Given threads
    are kept: with more than fit, one slot."""
    cores, model = timings.cores, timings.model_cores
    if timings.gpus:
        return [(timings.gpus, threads or max(1, int(cores - model) // timings.gpus))]
    weighed = [
        (slots, count)
        for slots in range(1, cores + 1)
        for count in range(1, cores // slots + 1)
        if (model + slots * count <= cores or (count == 1 and model <= 1)) and threads in (None, count)
    ]
    return weighed or [(1, threads or 1)]


def _generation_seconds(timings: MachineTimings, slots: int, threads: int) -> float:
    """A generation's wall time as a fluid simulation: everything running shares the cores fairly."""
    proposing = _run_trainings(timings, slots, threads, timings.population, proposals=True)
    return proposing + _run_trainings(timings, slots, threads, timings.further_trainings, proposals=False)


def _run_trainings(timings: MachineTimings, slots: int, threads: int, count: int, *, proposals: bool) -> float:
    """Seconds until `count` trainings are done: each ready when its proposal is (or at once), run in `slots`."""
    now = 0.0
    proposed = 0 if proposals else count
    proposal_left = timings.propose_seconds
    waiting = 0 if proposals else count
    running: list[float] = []  # each training's work left, as a fraction of the whole
    done = 0
    while done < count:
        while waiting and len(running) < slots:
            waiting -= 1
            running.append(1.0)
        model_busy = proposed < count
        demand = (timings.model_cores if model_busy else 0) + (0 if timings.gpus else threads * len(running))
        share = min(1.0, timings.cores / demand) if demand else 1.0
        training_rate = 1.0 / _training_seconds(timings, slots, threads * share)
        steps = [left / training_rate for left in running]
        if model_busy:
            steps.append(proposal_left / (share if timings.model_cores and not timings.gpus else 1.0))
        step = min(steps)
        now += step
        if model_busy:
            proposal_left -= step * (share if timings.model_cores and not timings.gpus else 1.0)
            if proposal_left <= 1e-9:
                proposed, waiting, proposal_left = proposed + 1, waiting + 1, timings.propose_seconds
        running = [left - step * training_rate for left in running]
        done += sum(1 for left in running if left <= 1e-9)
        running = [left for left in running if left > 1e-9]
    return now


def _training_seconds(timings: MachineTimings, slots: int, cores: float) -> float:
    if timings.gpus:  # on its own GPU, at the threads the GPU measurement used; slots beyond the GPUs share them
        return timings.train_seconds[max(timings.train_seconds)] * max(1.0, slots / timings.gpus)
    return timings.training_seconds(cores)


def _reason(timings: MachineTimings, chosen: tuple[int, int], rates: dict[tuple[int, int], float]) -> str:
    slots, threads = chosen
    measured = ", ".join(f"{timings.train_seconds[t]:.1f} s on {t} thread(s)" for t in sorted(timings.train_seconds))
    where = f"{timings.gpus} GPU(s)" if timings.gpus else f"{timings.cores} cores"
    bound = (
        "the model's proposals set the pace"
        if timings.population * timings.propose_seconds >= _generation_seconds(timings, slots, threads) * 0.8
        else "trainings set the pace"
    )
    one_slot = max((rate for (k, _), rate in rates.items() if k == 1), default=None)
    against = f"; 1 slot: {one_slot:.0f}" if one_slot is not None and slots != 1 else ""
    return (
        f"{slots} slot(s) x {threads} training thread(s) on {where}, predicted {rates[chosen]:.0f} individuals per "
        f"hour{against}: a proposal takes {timings.propose_seconds:.1f} s, a training {measured}; {bound}"
    )
