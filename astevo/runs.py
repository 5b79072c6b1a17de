"""The composition root: where a command's choices become a run's parts (settings, model, variation, executor).

`evolve`, `mutate`, `eval` and `final` build what they need here, so the CLI keeps only flags and display,
and no rule (which executor, which backend, how a new run's settings are layered) is written twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from astevo.data.prepared import choose_dataset
from astevo.data.sources import FOLDER, explicit_data_dir
from astevo.errors import AstevoError
from astevo.evaluation.cache import EvaluationCache
from astevo.llm.factory import ModelChoice
from astevo.llm.gguf import Announce
from astevo.settings import RANDOM, SERVER, EvolveConfig, MutationSettings, apply, read_config

if TYPE_CHECKING:
    from astevo.evaluation.base import Executor
    from astevo.variation.base import Variation
    from astevo.variation.llm_mutation import LLMVariation

EXECUTORS = ("local", "ray")


@dataclass(frozen=True)
class ExecutorChoice:
    """Where evaluations run: checked when a command starts, so a bad flag costs no model load, and made once the
    run knows its slots."""

    name: str = "local"
    slots: int | None = None  # local slots the flags ask for; None: the run's own choice
    ray_address: str | None = None
    cache: EvaluationCache | None = None

    def __post_init__(self) -> None:
        if self.name not in EXECUTORS:
            raise AstevoError(f"--executor must be local or ray, got {self.name!r}")
        if self.local and self.ray_address is not None:
            raise AstevoError("--ray-address needs --executor ray")
        if not self.local and self.slots is not None:
            raise AstevoError("--workers sets the local executor's slots; a Ray cluster schedules by its own resources")
        if not self.local:
            from astevo.evaluation.executors.ray_cluster import require_ray

            require_ray()

    @property
    def local(self) -> bool:
        return self.name == "local"

    def make(self, slots: int) -> Executor:
        """The executor; `slots` applies to the local one only."""
        if self.local:
            from astevo.evaluation.executors.local import LocalEvaluator

            return LocalEvaluator(self.cache, slots)
        from astevo.evaluation.executors.ray_cluster import RayEvaluator

        return RayEvaluator(self.cache, self.ray_address)


def new_run_settings(config_file: Path | None, overrides: dict[str, Any]) -> EvolveConfig:
    """The defaults, then the config file, then the flags. The data set is chosen from the data folder when neither
    names one, and a given folder is stored resolved: the run may be resumed from elsewhere, and the sandbox runs in
    a temporary folder."""
    from_file = read_config(config_file) if config_file is not None else {}
    settings = apply(apply(EvolveConfig(), from_file, str(config_file)), overrides, "flags")
    if not {"dataset"} & (from_file.get("fitness", {}).keys() | overrides.get("fitness", {}).keys()):
        settings = apply(settings, {"fitness": {"dataset": choose_dataset(settings.fitness.data_dir)}})
    given = explicit_data_dir(settings.fitness.data_dir)  # $ASTEVO_DATA too: a resume may not have it set
    if given is not None and (settings.fitness.data_dir or settings.fitness.dataset == FOLDER):
        settings = apply(settings, {"fitness": {"data_dir": str(given.resolve())}})
    return settings


def budget_overrides(evaluations: int) -> dict[str, Any]:
    """`--evaluations N` sizes the run by trainings; generations are then capped at N unless set lower."""
    return {"evaluations": evaluations, "generations": max(evaluations, 1)}


def served_at(config: EvolveConfig, url: str | None) -> EvolveConfig:
    """A stored run's settings, with its model server's new address when a resume gives one (the model must not
    change; the resume checks its fingerprint)."""
    if url is None:
        return config
    if config.mutation.backend != SERVER:
        raise AstevoError("this run's model is not served: resume it without --model-server")
    return apply(config, {"mutation": {"server": {"url": url}}}, "--model-server")


def language_model(config: EvolveConfig, announce: Announce) -> ModelChoice | None:
    """The run's model, not loaded yet; none for the random baseline, which loads no model."""
    return None if config.variation == RANDOM else ModelChoice(config.mutation, announce)


def make_variation(config: EvolveConfig, model: ModelChoice | None) -> Variation:
    """The run's variation: the model's, told what a version is judged by, or uniformly drawn edits when there is
    no model (the random baseline)."""
    if model is None:
        from astevo.variation.random_mutation import RandomVariation

        return RandomVariation(config.mutation)
    from astevo.variation.prompts import training_objective

    return llm_variation(config.mutation, model, training_objective(config.fitness))


def llm_variation(mutation: MutationSettings, model: ModelChoice, objective: str | None = None) -> LLMVariation:
    """GE's mutation by the model, which is loaded now (a file) or reached (a server); `objective` is what a
    version is judged by, when it is trained."""
    from astevo.variation.llm_mutation import LLMVariation

    return LLMVariation(model.generator(), mutation, objective)
