"""Prompt rendering, answer handling and the edit-spot operator, with a scripted model and the real one."""

from __future__ import annotations

import dataclasses
import difflib
import json
import random
from collections import Counter
from dataclasses import dataclass

import pytest

from astevo.code.blocks import ModelFile, parse_definition, split_header
from astevo.code.canonical import canonical_hash
from astevo.evaluation.base import Size
from astevo.paths import default_seed_path
from astevo.store.records import Training
from astevo.variation import prompts
from astevo.variation.answerers import DrawnAnswers, ModelAnswers
from astevo.variation.answers import RejectedAnswer, block_from_answer
from astevo.variation.base import Proposal
from astevo.variation.edit_outcomes import edit_label, edit_outcomes
from astevo.variation.edit_sites import argument_splits, sites
from astevo.variation.intents import INTENTS
from astevo.variation.rewriter import BlockRewriter
from astevo.variation.structural import SizeOption, SizeOptions
from tests import run_builder
from tests.conftest import TINY_MODEL
from tests.scripted_check import ScriptedCheck

SEED = ModelFile.read(default_seed_path())


@dataclass
class Scripted:
    text: str
    prompt: str
    n_tokens: int = 3
    seconds: float = 0.01
    finish: str = "complete"


class ScriptedModel:
    """Answers from a list and records what it was asked."""

    def __init__(self, answers: list[str]) -> None:
        self.answers = list(answers)
        self.calls: list[dict] = []

    def complete(self, messages, *, prefix="", grammar, temperature, max_tokens, seed, avoid=""):
        self.calls.append(
            {
                "messages": messages,
                "prefix": prefix,
                "grammar": grammar,
                "avoid": avoid,
                "temperature": temperature,
                "seed": seed,
            }
        )
        return Scripted(self.answers.pop(0), prefix)


def test_prompts_keep_code_braces_and_dollars_verbatim() -> None:
    code = 'class SE(nn.Module):\n    table = {"a": 1}\n    cost = "$5 {x}"\n'
    text = prompts.mutation_prompt("SE", code, "hyperparameters", "innovator", None)
    assert code.rstrip("\n") in text
    assert text.startswith("You are a serendipitous innovator")
    assert "Change the values of the existing hyper-parameters" in text


def test_the_model_is_told_what_a_version_is_judged_by() -> None:
    from astevo.settings import default_fitness

    objective = prompts.training_objective(default_fitness())
    assert objective == (
        "Every version is trained from scratch for only 3 epochs on 6,000 images of fashion-mnist, "
        "then judged by its accuracy on held-out validation images."
    )
    model = ScriptedModel(["nn.GELU()\n"])
    BlockRewriter(ModelAnswers(model), random.Random(0), max_repairs=0, objective=objective).mutate(
        SEED.blocks["DW"], SEED.source, "complexity"
    )
    assert all(objective in call["messages"][-1]["content"] for call in model.calls) and model.calls
    folder = dataclasses.replace(default_fitness(), dataset="folder", data_dir="/data/mine", limit_train=None)
    assert "for only 3 epochs on the training images of the user's own data set," in prompts.training_objective(folder)


def test_evolution_of_thought_shows_the_measured_change_as_the_lines_it_changed() -> None:
    before = SEED.blocks["DW"].source
    after = before.replace(
        "        return self.act(self.dw(x))\n",
        "        x = self.act(self.dw(x))\n        x = x * 2\n        return x\n",
    )
    exemplar = prompts.Exemplar("DW", before, after, 0.0123, 0, "computations")
    text = prompts.mutation_prompt("SE", "class SE:\n    pass\n", "complexity", None, exemplar)
    assert "validation accuracy +1.23 points, parameters +0" in text
    assert "apply the same principle to `SE`" in text
    changed = [line for line in text.splitlines() if line.startswith(("-", "+"))]
    assert changed == [
        "-        return self.act(self.dw(x))",
        "+        x = self.act(self.dw(x))",
        "+        x = x * 2",
        "+        return x",
    ]
    assert "    def forward(self, x):" in text and "class DW(nn.Module):" not in text  # neighbours, not the block
    assert "Another block, `DW`, was changed like this" in text
    again = prompts.mutation_prompt("DW", before, "complexity", None, exemplar)
    assert "In another version of the model, `DW` was changed like this" in again and "Another block" not in again


@pytest.mark.parametrize("answers", ["model", "drawn"])
def test_an_exemplar_s_kind_of_edit_is_tried_first_by_the_model_and_by_the_random_baseline(answers: str) -> None:
    """Evolution of Thought asks for the same principle: a shown computation is answered at a computation's
    spot, though the intent alone would change a layer first."""
    block = SEED.blocks["DW"]
    exemplar = prompts.Exemplar("ME", "x = 1\n", "x = 1\nx = x * 2\n", 0.02, 0, "computations")
    for shown, first in ((None, "layers"), (exemplar, "computations")):
        answerer = ModelAnswers(SpotAwareModel([])) if answers == "model" else DrawnAnswers()
        proposal = BlockRewriter(answerer, random.Random(0), max_repairs=0).mutate(
            block, SEED.source, "complexity", exemplar=shown
        )
        assert [exchange.edit for exchange in proposal.exchanges] == [first]
        assert proposal.operator == ("eot" if shown else "mutate")


def test_a_run_s_exemplar_is_its_best_elite_change_with_the_kind_of_edit_it_was(tmp_path) -> None:
    from astevo.evolution.breeder import _exemplar

    store = run_builder.new_run(tmp_path / "run")
    seed = run_builder.add(store, 0, 0, run_builder.SEED, operator="seed", accuracy=0.80)
    for slot, (accuracy, edit) in enumerate(((0.81, "layers"), (0.825, "arguments"), (0.79, "computations"))):
        run_builder.add(
            store,
            1,
            slot,
            run_builder.SOURCES["dropout"].replace("0.3", f"0.{slot + 1}"),
            parents=(seed,),
            blocks=("ExquisiteNetV2",),
            accuracy=accuracy,
            edit=edit,
        )
    elites = [store.individual(i) for i in (2, 3, 4)]
    exemplar = _exemplar(store, elites)  # the noise is not measured yet: any gain counts
    assert exemplar is not None and exemplar.edit == "arguments"
    assert exemplar.accuracy_change == pytest.approx(0.025) and exemplar.block == "ExquisiteNetV2"
    assert [line for line in exemplar.change.splitlines() if line[:1] in "+-"] == [
        "-        self.drop = nn.Dropout(0.5)",
        "+        self.drop = nn.Dropout(0.2)",
    ]
    for training_seed, accuracy in ((1, 0.79), (2, 0.81)):  # one training's std: 1 point
        store.record_training(Training(seed, training_seed, {"val_accuracy": accuracy}, 3.0))
    # 2 standard errors of one training against the seed's mean of 3: 2.31 points (of two single ones: 2.83)
    assert _exemplar(store, elites) is not None  # +2.5 points: beyond them
    assert _exemplar(store, elites[:1] + elites[2:]) is None  # +1 point is inside the noise: it did not "help"


def test_a_run_shows_what_each_kind_of_edit_did_in_the_generations_before(tmp_path) -> None:
    from astevo.evaluation.executors.local import LocalEvaluator
    from astevo.evolution.breeder import Breeder
    from tests.scripted_variation import ScriptedVariation

    store = run_builder.new_run(tmp_path / "run")
    seed = run_builder.add(store, 0, 0, run_builder.SEED, operator="seed", accuracy=0.80)
    children = (
        ("width", 1_000_000, 0.82, None),  # wider: +2 points
        ("width", 300_000, 0.78, None),  # narrower: -2 points
        ("computations", 518_230, 0.81, None),
        ("computations", 518_231, 0.79, None),  # the same size: the two average to 0
        ("layers", 518_230, None, "build: raised"),  # failed: nothing measured
    )
    ids = [
        run_builder.add(
            store, 1, slot, run_builder.SEED, parents=(seed,), blocks=("DW",), accuracy=accuracy,
            parameters=parameters, edit=edit, failed=failed,
        )
        for slot, (edit, parameters, accuracy, failed) in enumerate(children, start=1)
    ]  # fmt: skip
    run_builder.add(store, 1, 6, run_builder.SEED, parents=(seed, ids[0]), operator="crossover", accuracy=0.9)
    run_builder.add(
        store, 2, 1, run_builder.SEED, parents=(ids[0],), accuracy=0.85, parameters=1_000_000, edit="arguments"
    )
    breeder = Breeder(store, ScriptedVariation(), LocalEvaluator())
    shown = [(o.edit, round(o.accuracy_change, 6), o.children) for o in breeder._outcomes(2)]
    assert shown == [
        ("width, more parameters", 0.02, 1),
        ("computations", 0.0, 2),
        ("width, fewer parameters", -0.02, 1),
    ]
    assert ("arguments", 0.03, 1) in [(o.edit, round(o.accuracy_change, 6), o.children) for o in breeder._outcomes(3)]


def test_measured_outcomes_are_shown_best_first_and_only_the_best_and_worst_when_many() -> None:
    assert edit_label("width", 100_000, 104_000) == "width" and edit_label("depth", 100_000, 50_000) == (
        "depth, fewer parameters"
    )
    outcomes = edit_outcomes((f"kind {number}", number / 100) for number in (*range(12), 3))
    assert [o.edit for o in outcomes] == [
        "kind 11",
        "kind 10",
        "kind 9",
        "kind 8",
        "kind 3",
        "kind 2",
        "kind 1",
        "kind 0",
    ]
    assert [o.children for o in outcomes if o.edit == "kind 3"] == [2]
    text = prompts.mutation_prompt("SE", "class SE:\n    pass\n", "complexity", None, None, None, outcomes[:2])
    assert "- kind 11: +11.00 points (1)\n- kind 10: +10.00 points (1)" in text
    assert "Measured so far" not in prompts.mutation_prompt("SE", "class SE:\n    pass\n", "complexity", None, None)


def test_an_exemplar_of_two_places_is_shown_as_two_parted_hunks_and_a_whole_body_orders_nothing() -> None:
    before = SEED.blocks["ExquisiteNetV2"].source
    after = before.replace("FCT(img_channels, 12)", "FCT(img_channels, 16)").replace("Dropout(0.5)", "Dropout(0.2)")
    exemplar = prompts.Exemplar("ExquisiteNetV2", before, after, 0.02, 300, "block")
    lines = exemplar.change.splitlines()
    assert "..." in lines and not any(line.startswith(("@@", "---", "+++")) for line in lines)
    assert [line for line in lines if line[:1] in "+-"] == [
        "-        self.FCT = FCT(img_channels, 12)",
        "+        self.FCT = FCT(img_channels, 16)",
        "-        self.drop = nn.Dropout(0.5)",
        "+        self.drop = nn.Dropout(0.2)",
    ]
    block = SEED.blocks["ExquisiteNetV2"]
    plain, shown = (
        BlockRewriter(DrawnAnswers(), random.Random(0), max_repairs=0).mutate(
            block, SEED.source, "complexity", exemplar=given, sizes=_size_menu
        )
        for given in (None, exemplar)
    )
    assert [e.edit for e in shown.exchanges] == [e.edit for e in plain.exchanges] == ["computations"]


def test_an_exemplar_of_a_size_edit_puts_the_size_menu_first() -> None:
    block = SEED.blocks["ExquisiteNetV2"]
    exemplar = prompts.Exemplar("ME", "a\n", "b\n", 0.02, -900, "width")
    for shown, first in ((None, {"arguments"}), (exemplar, {"width", "depth"})):
        proposal = BlockRewriter(DrawnAnswers(), random.Random(0), max_repairs=0).mutate(
            block, SEED.source, "hyperparameters", exemplar=shown, sizes=_size_menu
        )
        assert {exchange.edit for exchange in proposal.exchanges} <= first and proposal.exchanges


def test_header_split_and_salvage_of_a_cut_off_answer() -> None:
    block = SEED.blocks["SE_LN"]
    header, body = split_header(block.source)
    assert header == "class SE_LN(nn.Module):\n" and header + body == block.source
    cut = body + "    def extra(self, x):\n        return (x +"
    assert block_from_answer(block, header, cut) == block.source
    with pytest.raises(RejectedAnswer, match="arguments of SE_LN.__init__ changed"):
        block_from_answer(block, header, body.replace("def __init__(self, cin)", "def __init__(self, cin, k)"))
    with pytest.raises(RejectedAnswer):
        block_from_answer(block, header, "    x = (\n")


def test_argument_spots_are_the_hyper_parameters_of_a_call() -> None:
    value = "nn.Conv2d(cin, cin, 3, padding=pad_num(dw_s), stride=2, eps=-1e-3, groups=cin, bias=False)"
    assert [value[:i] for i in argument_splits(value)] == [
        "nn.Conv2d(cin, cin,",
        "nn.Conv2d(cin, cin, 3, padding=pad_num(dw_s),",
        "nn.Conv2d(cin, cin, 3, padding=pad_num(dw_s), stride=2,",
        "nn.Conv2d(cin, cin, 3, padding=pad_num(dw_s), stride=2, eps=-1e-3, groups=cin,",
    ]
    groups = sites(SEED.blocks["DW"].source)
    assert [(s.kind, s.statement.lead) for s in groups["arguments"]] == [
        ("append", "self.dw = "),
        ("append", "self.act = "),
    ]
    assert [s.statement.lead for s in groups["layers"]] == ["self.act = "]
    assert [(s.kind, s.statement.function) for s in groups["computations"]] == [("insert", "forward")]


class SpotAwareModel(ScriptedModel):
    """Chooses the last line it is offered; writes what fits the spot it is handed: a layer, a new line or an
    extra argument."""

    def complete(self, messages, *, prefix="", grammar, temperature, max_tokens, seed, avoid=""):
        offered = [line[2:] for line in messages[-1]["content"].splitlines() if line.startswith("- ")]
        self.answers = [
            f"{offered[-1]}\n"
            if not prefix and offered
            else "nn.GELU()\n"
            if prefix.endswith("self.act = ")
            else "x = F.silu(x)\n"
            if prefix.endswith("\n        ")
            else " stride=1)\n"
        ]
        return super().complete(
            messages,
            prefix=prefix,
            grammar=grammar,
            temperature=temperature,
            max_tokens=max_tokens,
            seed=seed,
            avoid=avoid,
        )


def test_edit_spot_operator_splices_one_line_and_moves_on_after_a_rejection() -> None:
    block = SEED.blocks["DW"]
    model = SpotAwareModel([])
    answers = iter(["probe: pretend failure", None])
    check = ScriptedCheck(lambda source: next(answers))
    proposal = BlockRewriter(ModelAnswers(model), random.Random(3), check=check, max_repairs=2).mutate(
        block, SEED.source, intent="complexity"
    )
    assert proposal.accepted and len(proposal.exchanges) == 2
    assert proposal.exchanges[0].verdict == "probe: pretend failure"
    assert model.calls[0]["prefix"].endswith("self.act = ")  # complexity tries a layer first
    assert "That change was rejected: probe: pretend failure" in model.calls[1]["messages"][-1]["content"]
    parse_definition(proposal.source, "DW", "class")
    diff = [line for line in difflib.ndiff(block.source.splitlines(), proposal.source.splitlines()) if line[:1] in "+-"]
    assert len([line for line in diff if line.startswith("+")]) == 1, diff
    assert len([line for line in diff if line.startswith("-")]) <= 1, diff


def test_a_copy_is_never_accepted_even_when_reformatted() -> None:
    block = SEED.blocks["DW"]
    act_line = "        self.act = nn.Hardswish()\n"
    model = ScriptedModel(["nn.Hardswish()\n"])
    rewriter = BlockRewriter(ModelAnswers(model), random.Random(0), max_repairs=0)
    spot = next(s for s in sites(block.source)["layers"] if s.statement.lead == "self.act = ")
    source, verdict, _ = rewriter._judge_edit(block, spot, Scripted("nn.Hardswish( )\n", ""), "hyperparameters")
    assert source is None and "copy of the version you were shown" in verdict
    assert act_line in block.source


@pytest.fixture(scope="module")
def smollm():
    from astevo.llm.gguf import resolve_model
    from astevo.llm.llama_cpp_backend import LlamaCppGenerator

    return LlamaCppGenerator(resolve_model(TINY_MODEL), seed=0)


@pytest.mark.slow
@pytest.mark.needs_model
@pytest.mark.parametrize(
    ("name", "intent", "seed"), [("SE_LN", "complexity", 1), ("DW", "hyperparameters", 2), ("ME", "bold_change", 3)]
)
def test_real_model_proposals_parse_as_the_right_block(smollm, name: str, intent: str, seed: int) -> None:
    block = SEED.blocks[name]
    rewriter = BlockRewriter(ModelAnswers(smollm), random.Random(seed), max_repairs=1)
    for _ in range(2):
        proposal = rewriter.mutate(block, SEED.source, intent=intent)
        assert proposal.exchanges
        for exchange in proposal.exchanges:
            if exchange.finish == "complete":  # the grammar makes every finished line parse in place
                assert exchange.answer.endswith("\n")
                assert not (exchange.verdict or "").startswith("line "), exchange.verdict
        if proposal.accepted:
            parse_definition(proposal.source, name, block.kind)
            assert proposal.source != block.source


@pytest.mark.parametrize("intent", INTENTS)
@pytest.mark.parametrize("name", ["MinPool2d", "SE_LN", "ExquisiteNetV2"])
def test_every_intent_finds_a_spot_in_every_kind_of_class_block(intent: str, name: str) -> None:
    block = SEED.blocks[name]
    model = SpotAwareModel([])
    proposal = BlockRewriter(ModelAnswers(model), random.Random(0), max_repairs=0).mutate(
        block, SEED.source, intent=intent
    )
    spot_calls = [call for call in model.calls if call["prefix"]]
    assert len(spot_calls) == 1 and spot_calls[0]["prefix"].startswith(split_header(block.source)[0])
    assert proposal.intent == intent


def test_the_model_chooses_the_line_it_changes_among_those_where_the_edit_fits() -> None:
    block = SEED.blocks["SE_LN"]
    model = ScriptedModel(["self.ln = nn.LayerNorm(cin)\n", " eps=0.001)\n"])
    proposal = BlockRewriter(ModelAnswers(model), random.Random(0), max_repairs=0).mutate(
        block, SEED.source, intent="hyperparameters"
    )
    choice, spot = model.calls
    offered = [line[2:] for line in choice["messages"][-1]["content"].splitlines() if line.startswith("- ")]
    assert sorted(offered) == ["self.gavg = nn.AdaptiveAvgPool2d(1)", "self.ln = nn.LayerNorm(cin)"]
    assert all(json.dumps(line) in choice["grammar"] for line in offered)  # the answer can only be one of them
    assert spot["messages"][-1]["content"].endswith("this line:\nself.ln = nn.LayerNorm(cin)\n")
    assert spot["prefix"].endswith("self.ln = nn.LayerNorm(cin,")
    assert proposal.accepted and "nn.LayerNorm(cin, eps=0.001)" in (proposal.source or "")


def test_an_answer_that_names_no_listed_line_leaves_the_line_to_a_draw() -> None:
    block = SEED.blocks["SE_LN"]
    model = ScriptedModel(["self.fc = nn.Linear(3, 4)\n", "2)\n"])
    proposal = BlockRewriter(ModelAnswers(model), random.Random(0), max_repairs=0).mutate(
        block, SEED.source, intent="hyperparameters"
    )
    assert len(model.calls) == 2 and model.calls[1]["prefix"].endswith(("nn.AdaptiveAvgPool2d(", "LayerNorm(cin,"))
    assert [exchange.answer for exchange in proposal.exchanges] == ["2)\n"]


def test_the_random_baseline_draws_the_line_uniformly() -> None:
    block = SEED.blocks["SE_LN"]
    chosen = Counter(
        _line_of(
            BlockRewriter(DrawnAnswers(), random.Random(seed), max_repairs=0).mutate(
                block, SEED.source, "hyperparameters"
            )
        )
        for seed in range(200)
    )
    assert set(chosen) == {"gavg", "ln"} and min(chosen.values()) > 70, chosen


def _line_of(proposal: Proposal) -> str:
    """Which of SE_LN's constructor lines the proposal changed."""
    assert proposal.source is not None
    return "gavg" if "self.ln = nn.LayerNorm(cin)\n" in proposal.source else "ln"


def _size_menu() -> SizeOptions:
    block = SEED.blocks["ExquisiteNetV2"].source
    return SizeOptions(
        518_126,
        (
            SizeOption("width 384 -> 96", "width", block.replace("384", "96"), 172_526),
            SizeOption(
                "repeat DFSEB3",
                "depth",
                block.replace("        x = self.DFSEB3(x)\n", "        x = self.DFSEB3(x)\n" * 2),
                560_000,  # +8%: a real step up
            ),
            SizeOption("remove DFSEB5", "depth", block.replace("        x = self.DFSEB5(x)\n", ""), 213_230),
        ),
    )


class PicksSizes(ScriptedModel):
    """Answers a size menu with the first of its answers the menu lists; any other spot with an unfinished line."""

    def complete(self, messages, *, prefix="", grammar, temperature, max_tokens, seed, avoid=""):
        self.calls.append({"messages": messages, "prefix": prefix, "grammar": grammar})
        listed = [answer for answer in self.answers if json.dumps(answer.strip()) in grammar]
        if not listed:
            return Scripted("", prefix, finish="length")
        self.answers.remove(listed[0])
        return Scripted(listed[0], prefix)


def test_a_size_intent_offers_only_smaller_edits_and_retries_an_answer_that_did_not_shrink() -> None:
    block = SEED.blocks["ExquisiteNetV2"]
    model = PicksSizes(["width 384 -> 96\n", "remove DFSEB5\n"])
    sizes = iter([Size(518_126, 9_000_000), Size(213_230, 8_000_000)])  # the first measures as no smaller
    check = ScriptedCheck(size=lambda source: next(sizes), parent_size=Size(518_126, 9_000_000))
    proposal = BlockRewriter(ModelAnswers(model), random.Random(0), check=check, max_repairs=12).mutate(
        block, SEED.source, intent="fewer_parameters", sizes=_size_menu
    )
    menus = [call for call in model.calls if "-> 96" in call["grammar"] or "DFSEB" in call["grammar"]]
    assert all("repeat DFSEB3" not in menu["grammar"] for menu in menus)  # it would grow the model
    assert all(("width" in menu["grammar"]) != ("DFSEB" in menu["grammar"]) for menu in menus)  # one kind each
    assert "518,126 parameters" in menus[0]["messages"][-1]["content"]
    verdicts = [exchange.verdict or "" for exchange in proposal.exchanges]
    assert any("make the model smaller" in verdict for verdict in verdicts)
    assert not any(
        '"width 384 -> 96"' in menu["grammar"]
        for menu in menus[menus.index(next(m for m in menus if "width" in m["grammar"])) + 1 :]
    )  # a tried edit is not offered again
    assert proposal.accepted and "self.DFSEB5(x)" not in (proposal.source or "")
    assert proposal.exchanges[-1].edit == "depth" and proposal.exchanges[-1].parameters == 213_230


def test_other_intents_may_grow_the_model_and_never_repeat_an_accepted_answer() -> None:
    block = SEED.blocks["ExquisiteNetV2"]
    model = PicksSizes(["repeat DFSEB3\n", "repeat DFSEB3\n"])
    rewriter = BlockRewriter(ModelAnswers(model), random.Random(0), check=ScriptedCheck(), max_repairs=0)
    menu = _size_menu()
    depth = SizeOptions(menu.parent_parameters, tuple(o for o in menu.options if o.kind == "depth"))
    first = rewriter.mutate(block, SEED.source, intent="bold_change", sizes=lambda: depth)
    assert first.accepted and first.exchanges[-1].edit == "depth"
    second = rewriter.mutate(block, SEED.source, intent="bold_change", sizes=lambda: depth)
    assert not second.accepted  # the repeat is no longer offered, and the model wrote nothing else
    assert '"repeat DFSEB3"' in model.calls[0]["grammar"] and '"repeat DFSEB3"' not in model.calls[-1]["grammar"]


def test_a_version_the_run_already_holds_is_a_copy_and_never_offered() -> None:
    block = SEED.blocks["ExquisiteNetV2"]
    menu = _size_menu()
    depth = SizeOptions(menu.parent_parameters, tuple(o for o in menu.options if o.kind == "depth"))
    removed = next(o for o in depth.options if o.label == "remove DFSEB5")
    check = ScriptedCheck()
    check.known = frozenset({canonical_hash(removed.source)})
    model = PicksSizes(["remove DFSEB5\n", "repeat DFSEB3\n"])
    proposal = BlockRewriter(ModelAnswers(model), random.Random(0), check=check, max_repairs=0).mutate(
        block, SEED.source, intent="bold_change", sizes=lambda: depth
    )
    assert "remove DFSEB5" not in model.calls[0]["grammar"] and '"repeat DFSEB3"' in model.calls[0]["grammar"]
    assert proposal.accepted and proposal.source != removed.source
    rewriter = BlockRewriter(ModelAnswers(ScriptedModel([])), random.Random(0), check=check, max_repairs=0)
    assert "repeats an earlier proposal" in (rewriter._accept(block, removed.source, set(), "bold_change")[1] or "")
