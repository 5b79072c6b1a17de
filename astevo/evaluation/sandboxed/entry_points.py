"""The work the sandbox's child process does, named "astevo.evaluation.sandboxed.entry_points:NAME" by the parent.

Each runs untrusted candidate code, so each lives only in the child; the parent gets
back plain stage records and metrics, and each stage is reported the moment it ends
so that a hang or a kill is blamed on the stage that caused it.
"""

from __future__ import annotations

import math
import time
import types
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn as nn

from astevo.data.loading import load_dataset
from astevo.evaluation.sandboxed import versions
from astevo.evaluation.sandboxed.build import (
    CHANNELS_NAMES,
    NUM_CLASSES_NAMES,
    Arguments,
    build_recording,
    choose_model_class,
    count_parameters,
    load_candidate,
)
from astevo.evaluation.sandboxed.cost import measure_cost
from astevo.evaluation.sandboxed.shape_contract import record_block_calls, violation
from astevo.evaluation.sandboxed.train import evaluate_accuracy, pick_device, train
from astevo.evaluation.tasks import CheckedTraining, Checks, Network, Training, Versions, decoded
from astevo.isolation.child import report_progress

PROBE_BATCH = 4
REASON_LIMIT = 400


class StageFailed(Exception):
    """A stage's own verdict: the candidate is invalid for the reason given."""


class StageLog:
    """Times each stage and reports its record to the parent as soon as it ends."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        except Exception as error:  # the candidate may raise anything; it is a verdict, not a crash
            self._end(name, started, _reason(error))
            raise StageFailed(name) from error
        self._end(name, started, None)

    def _end(self, name: str, started: float, reason: str | None) -> None:
        record = {"name": name, "ok": reason is None, "reason": reason, "seconds": time.perf_counter() - started}
        self.records.append(record)
        report_progress(record)


def _reason(error: Exception) -> str:
    if isinstance(error, StageFailed):
        text = str(error)
    else:
        text = f"{type(error).__name__}: {error}"
    text = " ".join(text.split())
    return text if len(text) <= REASON_LIMIT else text[: REASON_LIMIT - 3] + "..."


def inspect_model(payload: dict[str, Any]) -> dict[str, Any]:
    """Which blocks the built model instantiates, with which arguments and parameters."""
    network = decoded(Network, payload)
    torch.manual_seed(0)
    module = load_candidate(network.source)
    model_class = choose_model_class(module, network.model_candidates)
    model, construction = build_recording(module, model_class, network)
    return {
        "model_class": model_class.__name__,
        "parameters": count_parameters(model),
        "blocks": {
            name: {
                "arguments": [i.shown_arguments() for i in instances],
                "parameters": [count_parameters(i.module) for i in instances],
            }
            for name, instances in construction.instances.items()
        },
    }


def check_candidate(payload: dict[str, Any]) -> dict[str, Any]:
    """The fast stages: build, forward/backward probe with block contracts, cost with caps."""
    return _checked(decoded(Checks, payload))


def _checked(task: Checks) -> dict[str, Any]:
    log = StageLog()
    metrics: dict[str, Any] = {}
    network = task.network
    torch.manual_seed(0)
    example = torch.randn(PROBE_BATCH, network.channels, network.image_size, network.image_size)
    try:
        with log.stage("build"):
            module = load_candidate(network.source)
            model_class = choose_model_class(module, network.model_candidates)
            model, construction = build_recording(module, model_class, network)
            metrics["model_class"] = model_class.__name__
        with log.stage("probe"):
            # a file checked on its own (a seed) may be the user's, with arguments astevo does not know
            unknown = construction.arguments if task.reference_source is None else None
            _probe_model(model, example, network.num_classes, unknown)
            if task.reference_source is None or "get_optimizer" in task.rewritten_blocks:
                _check_optimizer(module, model)  # creating an optimizer imports torch._dynamo: about 2.5 s
            _check_block_contracts(task, module, example)
        with log.stage("cost"):
            cost = measure_cost(model, example)
            metrics.update(parameters=cost.parameters, macs=cost.macs, uncounted_ops=cost.uncounted_ops)
            _check_caps(cost.parameters, cost.macs, task.max_parameters, task.max_macs)
    except StageFailed:
        pass
    return {"stages": log.records, "metrics": metrics}


def _probe_model(model: nn.Module, example: torch.Tensor, num_classes: int, arguments: Arguments | None) -> None:
    """Logits of the right shape, finite, and a finite loss with gradients; with the seed's `arguments`, a failure
    its constructor's unknown argument names explain says which setting maps them."""
    expected = (example.shape[0], num_classes)
    model.eval()
    with torch.no_grad():
        try:
            logits = model(example)
        except RuntimeError as error:
            if arguments is not None and arguments.channels is None and "channels" in str(error):
                hint = _unnamed("input-channels", "channels_argument", CHANNELS_NAMES)
                raise StageFailed(f"{error}; {hint}") from error
            raise
    if not isinstance(logits, torch.Tensor):
        raise StageFailed(f"the model returned {type(logits).__name__}, not a tensor of logits")
    if tuple(logits.shape) != expected:
        unknown = arguments is not None and arguments.classes is None
        hint = f"; {_unnamed('class-count', 'classes_argument', NUM_CLASSES_NAMES)}" if unknown else ""
        raise StageFailed(f"the model maps {tuple(example.shape)} to {tuple(logits.shape)}, expected {expected}{hint}")
    if not torch.isfinite(logits).all():
        raise StageFailed("the model's logits contain NaN or infinity on a random batch")
    model.train()
    loss = nn.functional.cross_entropy(model(example), torch.arange(expected[0]) % num_classes)
    if not math.isfinite(loss.item()):
        raise StageFailed("the training loss is not finite on a random batch")
    loss.backward()
    model.zero_grad(set_to_none=True)


def _unnamed(role: str, setting: str, usual: tuple[str, ...]) -> str:
    return (
        f"the constructor has no {role} argument astevo knows ({', '.join(usual)}): name it with the setting "
        f"fitness.{setting} in a --config file"
    )


def _check_optimizer(module: types.ModuleType, model: nn.Module) -> None:
    make = getattr(module, "get_optimizer", None)
    if make is None:
        return
    optimizer = make(model, 0.05, 5e-4)
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise StageFailed(f"get_optimizer returned {type(optimizer).__name__}, not a torch optimizer")
    covered = {id(p) for group in optimizer.param_groups for p in group["params"]}
    missing = sum(p.numel() for p in model.parameters() if p.requires_grad and id(p) not in covered)
    if missing:
        raise StageFailed(f"get_optimizer leaves {missing:,} trainable parameters out of its groups")


def _check_block_contracts(task: Checks, module: types.ModuleType, example: torch.Tensor) -> None:
    """Each rewritten class block must keep the shapes the reference model's instances produced."""
    if not task.rewritten_blocks or not task.reference_source:
        return
    reference = load_candidate(task.reference_source, name="reference")
    reference_class = choose_model_class(reference, task.network.model_candidates)
    reference_model, construction = build_recording(reference, reference_class, task.network)
    for name in task.rewritten_blocks:
        new_class = getattr(module, name, None)
        instances = construction.instances.get(name)
        if instances is None or not (isinstance(new_class, type) and issubclass(new_class, nn.Module)):
            continue
        reason = violation(new_class, record_block_calls(reference_model, instances, example))
        if reason:
            raise StageFailed(f"block contract: {reason}")


def _check_caps(parameters: int, macs: int, max_parameters: int | None, max_macs: int | None) -> None:
    if max_parameters is not None and parameters > max_parameters:
        raise StageFailed(f"{parameters:,} parameters exceed the cap of {max_parameters:,}")
    if max_macs is not None and macs > max_macs:
        raise StageFailed(f"{macs:,} multiply-adds exceed the cap of {max_macs:,}")


def evaluate_candidate(payload: dict[str, Any]) -> dict[str, Any]:
    """The fast stages, then, when they all pass, training and validation: one child, one torch import."""
    task = decoded(CheckedTraining, payload)
    checked = _checked(task.checks)
    if any(not record["ok"] for record in checked["stages"]):
        return checked
    trained = _train_and_measure(Training(task.checks.network, task.data, task.budget), with_test=False)
    return {"stages": checked["stages"] + trained["stages"], "metrics": {**checked["metrics"], **trained["metrics"]}}


def train_candidate(payload: dict[str, Any]) -> dict[str, Any]:
    """Short training on the training split, then, as its own stage, accuracy on the validation split."""
    return _train_and_measure(decoded(Training, payload), with_test=False)


def final_candidate(payload: dict[str, Any]) -> dict[str, Any]:
    """A finalist's training (with the seed in the task's budget), then validation and, only here, test accuracy."""
    return _train_and_measure(decoded(Training, payload), with_test=True)


def _train_and_measure(task: Training, *, with_test: bool) -> dict[str, Any]:
    """Train as the task says, then measure accuracy per split as its own stage: val, and test when loaded."""
    log = StageLog()
    metrics: dict[str, Any] = {}
    spec, budget, network = task.data, task.budget, task.network
    data = load_dataset(
        spec.name,
        spec.data_dir,
        val_fraction=spec.val_fraction,
        split_seed=spec.split_seed,
        limit_train=spec.limit_train,
        with_test=with_test,
    )
    torch.manual_seed(budget.training_seed)
    module = load_candidate(network.source)
    model_class = choose_model_class(module, network.model_candidates)
    model, _ = build_recording(module, model_class, network)
    try:
        with log.stage("train"):
            device = pick_device()
            result = train(model, data, budget, getattr(module, "get_optimizer", None), device)
            metrics.update(
                train_loss=result.train_loss,
                images_seen=result.images_seen,
                epochs=result.epochs_done,
                train_seconds=result.seconds,
                images_per_second=result.images_per_second,
                stopped_by=result.stopped_by,
            )
        with log.stage("validate"):
            metrics["val_accuracy"] = evaluate_accuracy(model, data.val, data, device, budget.batch_size)
        if data.test is not None:
            with log.stage("test"):
                metrics["test_accuracy"] = evaluate_accuracy(model, data.test, data, device, budget.batch_size)
    except StageFailed:
        pass
    return {"stages": log.records, "metrics": metrics}


def measure_versions(payload: dict[str, Any]) -> dict[str, Any]:
    """Versions of the model built (and run) on the meta device: what a size edit would do, at no memory."""
    return versions.measure_versions(decoded(Versions, payload))
