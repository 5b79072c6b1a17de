"""The baselines evolution is measured against, and the evaluation budget they share.

`random` draws what the model would write from the spot's own options (checked here against the
model's grammar on the real tokenizer); `best-of-n` spends every training on mutations of the seed;
a budgeted run stops after exactly its trainings, racing's included, and resumes to the same end.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from astevo.code.blocks import ModelFile
from astevo.evaluation.base import EvaluationRequest, EvaluationResult
from astevo.evaluation.executors.local import LocalEvaluator
from astevo.evolution.budget import trainings_spent
from astevo.evolution.loop import Evolution
from astevo.evolution.run_setup import create_run, plan_run
from astevo.paths import default_seed_path
from astevo.settings import EvolveConfig, apply
from astevo.store.run_store import RunStore
from astevo.typed_records import SettingsError
from astevo.variation.answerers import DrawnAnswers, edit_grammar
from astevo.variation.edit_sites import sites
from astevo.variation.keyword_values import RANGES
from astevo.variation.rewriter import BlockRewriter
from astevo.variation.spot_options import spot_options
from tests.scripted_check import ScriptedCheck
from tests.scripted_evolution import SEED, SETTINGS
from tests.scripted_variation import ScriptedVariation
from tests.test_grammar import feed
from tests.test_racing import SpreadEvaluator

SEED_FILE = ModelFile.read(default_seed_path())


def site_at(block: str, lead: str, kind: str, after: str = ""):
    """The spot of `kind` on the line that starts with `lead`, right after the text `after`."""
    return next(
        s
        for group in sites(SEED_FILE.blocks[block].source).values()
        for s in group
        if s.statement.lead == lead and s.kind == kind and s.kept_value.endswith(after)
    )


def test_a_rewritten_argument_takes_values_in_its_parameters_range_and_keeps_the_rest_of_the_line() -> None:
    kernel = spot_options(SEED_FILE.source, site_at("FCT", "self.dw = ", "replace", "nn.Conv2d(cin, cin,"))
    assert kernel == [
        f" {k}, stride=2, padding=1, groups=cin, bias=False)\n" for k in (3, 5, 8)
    ]  # the positional 4 is kernel_size
    dropout = spot_options(SEED_FILE.source, site_at("ExquisiteNetV2", "self.drop = ", "replace", "nn.Dropout("))
    probabilities = [float(text.rstrip(")\n")) for text in dropout]
    assert probabilities and all(0.0 < p < 0.9 and p != 0.5 for p in probabilities)


def test_an_appended_argument_is_a_keyword_with_a_sane_value() -> None:
    options = [text.strip() for text in spot_options(SEED_FILE.source, site_at("ME", "self.bn = ", "append"))]
    assert options and all(text.endswith(")") and "=" in text for text in options)  # after `cout,` and a space
    eps = [float(text.split("=")[1].rstrip(")")) for text in options if text.startswith("eps=")]
    low, high = RANGES["eps"]
    assert eps and all(low < value < high for value in eps)
    assert "affine=False)" in options


def test_a_layer_is_replaced_by_another_and_a_new_line_keeps_the_tensor() -> None:
    layers = spot_options(SEED_FILE.source, site_at("DW", "self.act = ", "replace"))
    assert "nn.GELU()\n" in layers and "nn.Hardswish()\n" not in layers  # never the layer already there
    lines = spot_options(SEED_FILE.source, next(s for s in sites(SEED_FILE.blocks["DW"].source)["computations"]))
    assert "x = F.silu(x)\n" in lines and "x = x * 0.5\n" in lines and all(t.startswith("x = ") for t in lines)


@pytest.mark.needs_model
def test_every_option_the_baseline_draws_is_a_line_the_models_grammar_accepts(llm) -> None:
    draw = random.Random(0)
    checked = 0
    for block in SEED_FILE.blocks.values():
        for found in sites(block.source).values():
            for site in found:
                options = spot_options(SEED_FILE.source, site)
                if not options:  # a spot neither the model nor the baseline is offered
                    continue
                grammar = edit_grammar(SEED_FILE.source, site)
                for text in draw.sample(options, min(4, len(options))):
                    matcher, ok = feed(llm, grammar, text)
                    assert ok and matcher.is_accepting(), (block.name, site, text)
                    checked += 1
    assert checked > 50


def test_the_random_rewriter_draws_at_spots_and_never_asks_for_a_whole_body() -> None:
    check = ScriptedCheck()
    block = SEED_FILE.block("DW")
    proposal = BlockRewriter(DrawnAnswers(), random.Random(1), check=check, max_repairs=0).mutate(
        block, SEED_FILE.source, "hyperparameters"
    )
    assert proposal.accepted and proposal.source != block.source
    (exchange,) = proposal.exchanges
    assert exchange.prompt.startswith("a uniform draw from") and exchange.tokens == 0
    assert exchange.answer.rstrip("\n") in proposal.source
    no_spots = ModelFile("import torch.nn as nn\n\n\nclass Empty(nn.Module):\n    pass\n")
    empty = BlockRewriter(DrawnAnswers(), random.Random(1), check=check).mutate(
        no_spots.block("Empty"), no_spots.source, "hyperparameters"
    )
    assert not empty.accepted and not empty.exchanges


class CrashingEvaluator(SpreadEvaluator):
    """Dies (as a kill would stop the run) when asked for training number `limit` + 1."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def evaluate(self, requests: Sequence[EvaluationRequest]) -> Iterator[EvaluationResult]:
        for request in requests:
            if request.settings.train and len(self.trainings) >= self.limit:
                raise KeyboardInterrupt
            yield from super().evaluate([request])


def evolve(folder: Path, overrides: dict, evaluator: SpreadEvaluator | None = None) -> SpreadEvaluator:
    evaluator = evaluator or SpreadEvaluator()
    store = RunStore.open(folder) if folder.exists() else None
    if store is None:
        settings = apply(apply(EvolveConfig(), SETTINGS), overrides)
        store = create_run(folder, plan_run(settings, ModelFile.read(SEED), None, LocalEvaluator()))
    with store:
        Evolution(store, ScriptedVariation(), evaluator, force=True).run()
    return evaluator


def decisions(folder: Path) -> list:
    with RunStore.open(folder) as store:
        rows = [(i.id, i.generation, i.slot, i.parents, i.operator, i.code_hash, i.metrics.get("val_accuracy"))
                for i in store.individuals()]  # fmt: skip
        trainings = [(t.individual, t.training_seed) for t in store.trainings()]
        return [rows, trainings, [store.population(g) for g in store.finished_generations()], store.meta()]


BUDGET = {"evaluations": 20, "generations": 20}


@pytest.fixture(scope="module")
def budgeted(tmp_path_factory) -> tuple[Path, SpreadEvaluator]:
    folder = tmp_path_factory.mktemp("budgeted") / "run"
    return folder, evolve(folder, BUDGET)


@pytest.mark.slow
def test_a_budgeted_run_spends_exactly_its_trainings_racing_and_the_seeds_included(budgeted) -> None:
    folder, evaluator = budgeted
    rows, trainings, populations, meta = decisions(folder)
    assert "finished" in meta
    assert len(evaluator.trainings) == 20 == len(set(evaluator.trainings))  # the budget, and nothing twice
    with RunStore.open(folder) as store:
        assert trainings_spent(store, store.config()) == 20
    seed_id = rows[0][0]
    assert [t for t in trainings if t[0] != seed_id], "no child was raced: the budget paid only for first trainings"
    assert len(populations) > 3  # the budget, not the 3 generations of the settings, sized the run


@pytest.mark.slow
def test_a_budgeted_run_stopped_while_racing_resumes_to_the_same_end(budgeted, tmp_path: Path) -> None:
    """Stopped at its 18th training, a racing training, two trainings before the budget ends (the kill -9 tests of
    tests/test_evolve_resume.py stop runs at random moments), then resumed with its own settings."""
    folder = tmp_path / "stopped"
    with pytest.raises(KeyboardInterrupt):
        evolve(folder, BUDGET, CrashingEvaluator(17))
    evolve(folder, {})
    assert decisions(folder)[:3] == decisions(budgeted[0])[:3]


@pytest.mark.slow
def test_best_of_n_spends_every_training_on_mutations_of_the_seed_and_never_races(tmp_path: Path) -> None:
    evaluator = evolve(tmp_path / "run", {**BUDGET, "variation": "best-of-n"})
    rows, trainings, populations, _ = decisions(tmp_path / "run")
    seed, offspring = rows[0], rows[1:]
    assert len(populations) > 1 and max(row[1] for row in offspring) > 0
    assert all(row[3] == (seed[0],) and row[4] == "mutate" for row in offspring)  # no crossover, no EoT
    assert [t for t in trainings if t[0] != seed[0]] == []  # only the seed's noise trainings: no racing
    assert len(evaluator.trainings) == 20


def test_budget_and_variation_settings_are_checked() -> None:
    with pytest.raises(SettingsError, match="variation"):
        EvolveConfig(variation="genetic")
    with pytest.raises(SettingsError, match="must exceed noise_seeds"):
        EvolveConfig(evaluations=3)
