"""The evaluator seam: requests in, results out as they finish, whatever runs them.

A request carries everything one evaluation needs (the candidate's source, its settings with
the training budget and seed, what it must keep from its parent, a verdict of the fast checks
already run), so an evaluator can run it anywhere and the same request gives the same result.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Protocol

from astevo.settings import FitnessSettings

if TYPE_CHECKING:  # the seam names the sandbox's types; importing it loads nothing of the sandbox
    from astevo.isolation.sandbox import Limits, Outcome

MAC_UNIT = "multiply-adds"  # what the cost stage counts (fvcore's convention)
FAST_STAGES = ("parse", "gate", "build", "probe", "cost")
TRAIN_STAGES = ("train", "validate")


@dataclass(frozen=True)
class StageResult:
    name: str
    ok: bool
    reason: str | None
    seconds: float


@dataclass(frozen=True)
class Evaluation:
    stages: tuple[StageResult, ...]
    metrics: dict[str, Any]
    cached: bool = False

    @property
    def failure(self) -> StageResult | None:
        return next((stage for stage in self.stages if not stage.ok), None)

    @property
    def valid(self) -> bool:
        return self.failure is None

    @property
    def problem(self) -> str | None:
        """Why the candidate failed, as "stage: reason"; None when it passed."""
        failure = self.failure
        return None if failure is None else f"{failure.name}: {failure.reason}"

    def to_record(self) -> dict[str, Any]:
        return {"stages": [asdict(s) for s in self.stages], "metrics": self.metrics}

    @classmethod
    def from_record(cls, record: dict[str, Any], cached: bool = False) -> Evaluation:
        return cls(tuple(StageResult(**s) for s in record["stages"]), record["metrics"], cached)


@dataclass(frozen=True)
class Size:
    """What the cost stage measured: the two numbers a smaller model must lower."""

    parameters: int
    macs: int

    @classmethod
    def of(cls, evaluation: Evaluation) -> Size | None:
        metrics = evaluation.metrics
        if not evaluation.valid or "parameters" not in metrics or "macs" not in metrics:
            return None
        return cls(int(metrics["parameters"]), int(metrics["macs"]))


@dataclass(frozen=True)
class VariantFacts:
    ok: bool
    reason: str | None
    parameters: int | None
    channels_changed: bool


@dataclass(frozen=True)
class VariantsMeasured:
    parameters: int  # the original's
    variants: tuple[VariantFacts, ...]


@dataclass(frozen=True)
class EvaluationRequest:
    """One evaluation: with `settings.train` false, the fast checks only; else the checks and one training."""

    request_id: str
    source: str
    settings: FitnessSettings
    reference: str | None = None  # the parent's source: rewritten blocks must keep its block-level shapes
    rewritten: tuple[str, ...] = ()
    checked: Evaluation | None = None  # the fast checks' passing verdict on this source, when already run


@dataclass(frozen=True)
class EvaluationResult:
    request_id: str
    evaluation: Evaluation
    seconds: float  # wall time this evaluation took here (near 0 when taken from a cache)
    cuda_devices: str | None = None  # the CUDA_VISIBLE_DEVICES it ran with; None: no GPU was assigned


class Evaluator(Protocol):
    """Where evaluations run: here in slots, or as tasks of a cluster."""

    def evaluate(self, requests: Sequence[EvaluationRequest]) -> Iterator[EvaluationResult]:
        """Evaluate every request; yield each result as soon as it is known, in any order."""
        ...

    def submit(self, request: EvaluationRequest) -> Future[EvaluationResult]:
        """Start one evaluation and return at once: the loop proposes more while it runs."""
        ...

    def run_now(self, task: SandboxTask) -> Outcome:
        """Run one short sandboxed task (a model's build, versions measured on the meta device) where `evaluate`
        runs the fast checks: it must not wait behind a training."""
        ...


def finished(result: EvaluationResult) -> Future[EvaluationResult]:
    """A result already known, as a submitted evaluation's future: for evaluators that run in the caller."""
    future: Future[EvaluationResult] = Future()
    future.set_result(result)
    return future


@dataclass(frozen=True)
class SandboxTask:
    """One sandboxed call of an entry point that is not an evaluation (a final test training, a build of a model):
    evaluators run it where they run evaluations, so every sandboxed task can use the slots or the cluster."""

    entry_point: str  # "package.module:function"
    payload: dict[str, Any]
    limits: Limits


class Executor(Evaluator, Protocol):
    """An evaluator that holds slots, processes or a cluster: closing it gives them back."""

    def run(self, task: SandboxTask) -> Future[Outcome]:
        """Start one sandboxed task in a slot (or as a cluster's task) and return at once."""
        ...

    def close(self) -> None:
        """Release everything; evaluations still running are abandoned."""
        ...
