"""`answers = "ranked"`: the model chooses among a spot's listed options by their log-probabilities, scored by the
real llama.cpp against a reference that reads every token's logits, and ranked through a scripted scorer."""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Sequence

import llama_cpp
import numpy as np
import pytest

from astevo.code.blocks import ModelFile
from astevo.errors import AstevoError
from astevo.llm.gguf import resolve_model
from astevo.llm.llama_cpp_backend import LlamaCppGenerator
from astevo.paths import default_seed_path
from astevo.settings import MutationSettings
from astevo.typed_records import SettingsError
from astevo.variation.answerers import RankedAnswers
from astevo.variation.edit_sites import sites
from astevo.variation.llm_mutation import LLMVariation
from astevo.variation.spot_options import spot_options
from tests.conftest import TINY_MODEL
from tests.scripted_check import ScriptedCheck
from tests.test_checks import WritesBodies

SEED = ModelFile.read(default_seed_path())
MESSAGES = [{"role": "system", "content": "You write PyTorch."}, {"role": "user", "content": "Continue the line."}]
PREFIX = "        self.conv = nn."
OPTIONS = ["Conv2d(3, 16, 3)", "ReLU()", "BatchNorm2d(16)", "Linear(10, 10)\n"]


@pytest.fixture(scope="module")
def model() -> LlamaCppGenerator:
    return LlamaCppGenerator(resolve_model(TINY_MODEL), n_ctx=2048)


def reference_scores(generator: LlamaCppGenerator, prompt: str, options: Sequence[str]) -> list[float]:
    """Each option's log-probability from a second llama.cpp that keeps every token's logits, each option's whole
    text evaluated in one go, summed from the first token where it parts from the prompt alone."""
    reference = llama_cpp.Llama(
        model_path=str(generator.info.path), n_ctx=512, logits_all=True, n_threads=1, verbose=False
    )
    alone = generator._tokenize(prompt)
    scores = []
    for option in options:
        tokens = generator._tokenize(prompt + option)
        start = next(i for i, (x, y) in enumerate(zip(tokens, [*alone, -1], strict=False)) if x != y)
        reference.reset()
        reference.eval(tokens)
        total = 0.0
        for position in range(start, len(tokens)):
            row = np.asarray(reference.scores[position - 1], dtype=np.float64)
            total += float(row[tokens[position]] - row.max() - math.log(np.exp(row - row.max()).sum()))
        scores.append(total)
    return scores


@pytest.mark.needs_model
def test_each_option_is_scored_as_the_model_reads_it_after_the_prompt(model: LlamaCppGenerator) -> None:
    model.restart(MESSAGES[0]["content"])
    scores = model.score(MESSAGES, OPTIONS, prefix=PREFIX)
    expected = reference_scores(model, model.render(MESSAGES) + PREFIX, OPTIONS)
    assert all(score < 0 for score in scores)
    assert scores == pytest.approx(expected, abs=0.1)  # other batch sizes round the quantized sums differently
    assert sorted(OPTIONS, key=lambda o: scores[OPTIONS.index(o)]) == sorted(
        OPTIONS, key=lambda o: expected[OPTIONS.index(o)]
    )


@pytest.mark.needs_model
def test_scoring_leaves_the_next_completion_as_it_would_have_been(model: LlamaCppGenerator) -> None:
    """A rewriter may score one spot and then have the model write at another: the cache must not remember it."""
    completions = []
    for scored in (False, True):
        model.restart(MESSAGES[0]["content"])
        if scored:
            model.score(MESSAGES, OPTIONS, prefix=PREFIX)
            prompt = model._tokenize(model.render(MESSAGES) + PREFIX)
            llama = model._llama
            assert llama._requires_eval and llama.input_ids[: llama.n_tokens].tolist() == prompt[: llama.n_tokens]
        completions.append(model.complete(MESSAGES, prefix=PREFIX, max_tokens=12, temperature=0.3, seed=5).text)
    assert completions[0] == completions[1] and completions[0]


class ScriptedScores:
    def __init__(self, scores: dict[str, float]) -> None:
        self.scores = scores
        self.asked: list[tuple[Sequence[str], str]] = []

    def score(self, messages: list[dict[str, str]], options: Sequence[str], *, prefix: str = "") -> list[float]:
        self.asked.append((options, prefix))
        return [self.scores.get(option, -20.0) for option in options]


def test_the_likeliest_option_wins_when_cold_and_each_is_drawn_by_its_likelihood_when_warm() -> None:
    block = SEED.block("SE_LN")
    site = sites(block.source)["layers"][0]
    options = spot_options(SEED.source, site)
    likeliest, second = options[0], options[1]
    scorer = ScriptedScores({likeliest: -1.0, second: -1.0 - math.log(3)})  # three times less likely
    answers = RankedAnswers(WritesBodies([]), scorer)
    cold = {answers.at_spot(MESSAGES, SEED.source, site, "prefix", 0.05, seed).text for seed in range(50)}
    assert cold == {likeliest} and scorer.asked[0] == (options, "prefix")
    warm = Counter(answers.at_spot(MESSAGES, SEED.source, site, "prefix", 1.0, seed).text for seed in range(400))
    assert 2.0 < warm[likeliest] / warm[second] < 4.5  # 3 expected; the rest, e^-19 times less likely, never
    assert warm[likeliest] + warm[second] == 400
    picked = answers.pick(MESSAGES, ["first", "second"], 0.05, 0)  # labels are scored as the lines they are
    assert picked.text in ("first\n", "second\n") and scorer.asked[-1] == (["first\n", "second\n"], "")


@pytest.mark.needs_model
def test_a_ranked_proposal_is_one_of_the_options_random_draws_from(model: LlamaCppGenerator) -> None:
    variation = LLMVariation(model, MutationSettings(answers="ranked", repairs=0))
    proposal = variation.mutate(SEED, "SE_LN", "complexity", random.Random(3), None, ScriptedCheck())
    assert proposal.source is not None and proposal.source != SEED.block("SE_LN").source
    assert len(proposal.exchanges) == 1
    assert "options ranked by the model's log-probability" in proposal.exchanges[0].prompt
    changed = [line for line in proposal.source.splitlines() if line not in SEED.block("SE_LN").source.splitlines()]
    written = [
        option.strip()
        for spots in sites(SEED.block("SE_LN").source).values()
        for site in spots
        for option in spot_options(SEED.source, site)
    ]
    assert len(changed) == 1 and any(option in changed[0] for option in written)


def test_ranked_answers_need_a_backend_that_scores_and_line_scope() -> None:
    with pytest.raises(AstevoError, match="cannot score options"):
        LLMVariation(WritesBodies([]), MutationSettings(answers="ranked"))
    with pytest.raises(SettingsError, match='must be "written" with scope "block"'):
        MutationSettings(answers="ranked", scope="block")


def test_options_the_model_rules_out_entirely_are_drawn_uniformly() -> None:
    block = SEED.block("SE_LN")
    site = sites(block.source)["layers"][0]
    options = spot_options(SEED.source, site)
    answers = RankedAnswers(WritesBodies([]), ScriptedScores({option: -math.inf for option in options}))
    drawn = {answers.at_spot(MESSAGES, SEED.source, site, "", 0.2, seed).text for seed in range(60)}
    assert not answers.writes_bodies and len(drawn) > 1 and drawn <= set(options)
