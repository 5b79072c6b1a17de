"""The fitness cascade: cheapest check first, each stage recorded with outcome, reason and time.

A broken candidate is told apart in seconds (parse, safety gate, build, probe, cost)
before any training starts; everything that runs candidate code runs in the sandbox.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, replace
from typing import Any, TypeVar

import astevo
from astevo.code.blocks import ModelFile
from astevo.code.canonical import canonical_hash
from astevo.data.prepared import data_identity
from astevo.errors import AstevoError, CandidateRejected
from astevo.evaluation.base import FAST_STAGES, TRAIN_STAGES, Evaluation, StageResult
from astevo.evaluation.cache import EvaluationCache, cache_key
from astevo.evaluation.gate.safety import check_source
from astevo.evaluation.payloads import data, network, sandbox_limits, sandboxed_task, training_threads
from astevo.evaluation.tasks import CheckedTraining, Checks, Training, as_record
from astevo.isolation import sandbox
from astevo.settings import FitnessSettings


def evaluate(
    source: str,
    settings: FitnessSettings,
    *,
    reference: str | None = None,
    rewritten: tuple[str, ...] = (),
    cache: EvaluationCache | None = None,
    checked: Evaluation | None = None,
    slot: sandbox.Slot = sandbox.ANYWHERE,
) -> Evaluation:
    """Run the cascade on one model file's source; with `cache`, never evaluate the same thing twice.

    `reference`: the parent's source, whose block-level shapes the `rewritten` blocks must keep.
    `checked`, the passing verdict of the fast checks on this very source and settings, spares
    running them again: only the training then runs. `slot` says where the sandbox runs.
    """
    key = None
    if cache is not None:
        key = _key(source, settings, reference, rewritten)
        if key and (record := cache.get(key)):
            return Evaluation.from_record(record, cached=True)
    for _ in range(1 + RETRIES_AFTER_A_KILL):
        if checked is not None and _complete_checks(checked) and settings.train:
            evaluation = _train_checked(source, settings, checked, slot)
        else:
            evaluation = _run_cascade(source, settings, reference, rewritten, slot)
        if not _killed(evaluation):
            break
    if cache is not None and key and not _depends_on_load(evaluation):
        cache.put(key, evaluation.to_record())
    return evaluation


# A child killed with SIGKILL was stopped from outside: by the kernel's out-of-memory killer when the machine ran
# short (the sandbox's own memory cap raises MemoryError instead), or by a user. The candidate is not to blame,
# and its evaluation is deterministic, so it is run again; a candidate killed every time keeps that verdict.
RETRIES_AFTER_A_KILL = 2
_KILLED = "killed by signal 9 "


# Failures the machine may cause rather than the candidate: the clock, the memory cap, the kernel's
# out-of-memory killer, a sandbox that could not start. Not verdicts to keep.
_LOAD_FAILURES = (
    "timed out",
    "exceeded the memory limit",
    _KILLED,
    "could not start the sandbox",
    "abandoned",
)


def _killed(evaluation: Evaluation) -> bool:
    failure = evaluation.failure
    return failure is not None and (failure.reason or "").startswith(_KILLED)


def _complete_checks(checked: Evaluation) -> bool:
    """A passing verdict of every fast stage (the gate only when it is on): only then may training skip them."""
    names = [stage.name for stage in checked.stages]
    return checked.valid and names in (list(FAST_STAGES), [s for s in FAST_STAGES if s != "gate"])


def _depends_on_load(evaluation: Evaluation) -> bool:
    failure = evaluation.failure
    return failure is not None and (failure.reason or "").startswith(_LOAD_FAILURES)


def _key(source: str, settings: FitnessSettings, reference: str | None, rewritten: tuple[str, ...]) -> str | None:
    try:
        code = canonical_hash(source)
    except SyntaxError:
        return None  # unparsable code fails in microseconds; nothing worth caching
    return cache_key(
        {
            "astevo": astevo.__version__,
            "code": code,
            "reference": canonical_hash(reference) if reference and rewritten else None,
            "rewritten": sorted(rewritten),
            "settings": asdict(replace(settings, threads=training_threads(settings), warm_workers=True)),
            "data": data_identity(settings),
        }
    )


def _run_cascade(
    source: str,
    settings: FitnessSettings,
    reference: str | None,
    rewritten: tuple[str, ...],
    slot: sandbox.Slot,
) -> Evaluation:
    stages: list[StageResult] = []
    metrics: dict[str, Any] = {}
    model_file = _timed(stages, "parse", lambda: _parse(source))
    if model_file is None:
        return Evaluation(tuple(stages), metrics)
    if settings.safety_gate and not _timed(stages, "gate", lambda: _gate(source)):
        return Evaluation(tuple(stages), metrics)
    checks = Checks(
        network(model_file, settings),
        reference_source=reference,
        rewritten_blocks=rewritten,
        max_parameters=settings.max_parameters,
        max_macs=settings.max_macs,
    )
    if settings.train:  # one child for checks and training, the checks still held to their own time limit
        task = as_record(CheckedTraining(checks, data(settings), settings.budget))
        limits = replace(
            sandbox_limits(settings, training=True),
            milestone=(len(FAST_STAGES[2:]), settings.check_seconds),
        )
        _sandboxed(
            stages, metrics, sandboxed_task("evaluate_candidate"), task, limits, FAST_STAGES[2:] + TRAIN_STAGES, slot
        )
    else:
        limits = sandbox_limits(settings, training=False)
        _sandboxed(stages, metrics, sandboxed_task("check_candidate"), as_record(checks), limits, FAST_STAGES[2:], slot)
    return Evaluation(tuple(stages), metrics)


def _train_checked(source: str, settings: FitnessSettings, checked: Evaluation, slot: sandbox.Slot) -> Evaluation:
    """Training alone, after the fast checks passed elsewhere: their stages and metrics are carried over."""
    stages, metrics = list(checked.stages), dict(checked.metrics)
    task = as_record(Training(network(ModelFile(source, "candidate.py"), settings), data(settings), settings.budget))
    limits = sandbox_limits(settings, training=True)
    _sandboxed(stages, metrics, sandboxed_task("train_candidate"), task, limits, TRAIN_STAGES, slot)
    return Evaluation(tuple(stages), metrics)


def _stage_records(progress: tuple[dict, ...], expected: tuple[str, ...]) -> list[StageResult]:
    """The well-formed records for the expected stages, in order, up to the first that is not."""
    records = []
    for record, name in zip(progress, expected, strict=False):
        if not (
            isinstance(record, dict)
            and set(record) == {"name", "ok", "reason", "seconds"}
            and record["name"] == name
            and isinstance(record["ok"], bool)
            and isinstance(record["reason"], (str, type(None)))
            and isinstance(record["seconds"], (int, float))
        ):
            break
        records.append(StageResult(**record))
    return records


Result = TypeVar("Result")


def _timed(stages: list[StageResult], name: str, step: Callable[[], Result]) -> Result | None:
    """Run an in-process stage; a CandidateRejected is the candidate's failure, recorded as the reason."""
    started = time.perf_counter()
    try:
        result = step()
    except CandidateRejected as error:
        stages.append(StageResult(name, False, str(error), time.perf_counter() - started))
        return None
    stages.append(StageResult(name, True, None, time.perf_counter() - started))
    return result


def _parse(source: str) -> ModelFile:
    try:
        return ModelFile(source, "candidate.py")
    except AstevoError as error:  # the file's own fault here, not the user's
        raise CandidateRejected(str(error)) from None


def _gate(source: str) -> bool:
    violations = check_source(source)
    if violations:
        shown = "; ".join(str(v) for v in violations[:3])
        more = f" (+{len(violations) - 3} more)" if len(violations) > 3 else ""
        raise CandidateRejected(f"{shown}{more}")
    return True


def _sandboxed(
    stages: list[StageResult],
    metrics: dict,
    task: str,
    payload: dict,
    limits: sandbox.Limits,
    expected: tuple[str, ...],
    slot: sandbox.Slot,
) -> bool:
    """Run child stages; a child that dies is blamed on the first stage it had not finished."""
    outcome = sandbox.run(task, payload, limits, slot=slot)
    reported = _stage_records(outcome.progress, expected)
    stages.extend(reported)
    if len(reported) < len(outcome.progress):  # the candidate wrote on the channel itself
        stages.append(
            StageResult(
                expected[len(reported)] if len(reported) < len(expected) else expected[-1],
                False,
                "sent a malformed stage record",
                0.0,
            )
        )
        return False
    if outcome.ok and outcome.value is not None:
        metrics.update(outcome.value["metrics"])
        return all(stage.ok for stage in reported) and len(reported) == len(expected)
    if not reported or reported[-1].ok:
        unfinished = expected[len(reported)] if len(reported) < len(expected) else expected[-1]
        spent = outcome.seconds - sum(stage.seconds for stage in reported)
        stages.append(StageResult(unfinished, False, outcome.error, max(spent, 0.0)))
    return False
