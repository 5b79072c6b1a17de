#!/usr/bin/env python3
"""Does a model's guidance beat chance? One step from the seed, per method, on your own seed and data.

Each method makes `--proposals` proposals from the seed, drawn as a run draws them (intent, then block;
the same draws for every method): `llm:NAME` is the LLM mutation by the named model (or a .gguf path),
`llm:NAME:block` the same in block scope (the model writes the whole body), `llm:NAME:ranked` the model
choosing among the options `random` draws from, by their log-probabilities (`[mutation] answers = "ranked"`),
and `random` the uniformly drawn edits of `--variation random`. Every distinct valid child is trained with
`--seeds` training seeds on the run's budget (validation split only), the seed model with `--seed-trainings`.
Per method:

- improved: children whose mean beats the seed's by more than 2 standard errors, of all proposals
  (one training's noise is the pooled within-model std of every model trained here);
- the mean change in validation accuracy of valid children, +- its standard error;
- smaller and as good: at least 5% fewer parameters and at most 1 point lost, of all proposals;
- distinct valid children per 10 proposals, and seconds per proposal;
- by intent and by edit kind: improved / valid and the mean change.

Then each llm method against random: the difference of improved shares and its standard error.

Evolution of Thought, as a run uses it: the proposals are made in `--rounds` rounds, and from the second on, a
proposal is shown (at the run's `eot_rate`) the method's own earlier child that gained most over the seed, as
measured once that child's round was trained; a run shows an elite's measured change in the same way. Every
proposal of those rounds is also shown what each kind of edit did on average in the earlier rounds, as a run
shows what its earlier generations measured. Random uses only the shown change's kind of edit, as in a run, so
the comparison shows what the model makes of what it is shown.
`--rounds 1` is one step from the seed with no memory. Proposals and trainings are kept in --out (JSON), so an
interrupted bench goes on where it stopped. Usage:

    python tools/bench_guidance.py [--methods llm:qwen2.5-coder-1.5b,llm:qwen2.5-coder-0.5b,llm:smollm2-135m,random]
        [--proposals 24] [--rounds 3] [--seeds 3] [--seed-trainings 6] [--workers 2] [--seed-file FILE] [--dataset D]
        [--data DIR] [--limit-train 6000] [--epochs 3] [--out /tmp/astevo-bench-guidance]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import random
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench_mutate import drawn_proposals  # noqa: E402

from astevo.code.blocks import ModelFile  # noqa: E402
from astevo.code.canonical import canonical_hash  # noqa: E402
from astevo.code.imports import with_block  # noqa: E402
from astevo.evaluation.anatomy import inspect_model  # noqa: E402
from astevo.evaluation.base import EvaluationRequest, Size  # noqa: E402
from astevo.evaluation.checks import BlockCheck  # noqa: E402
from astevo.evaluation.executors.local import LocalEvaluator  # noqa: E402
from astevo.evolution.evolvable import evolvable_blocks  # noqa: E402
from astevo.evolution.noise import Noise  # noqa: E402
from astevo.paths import default_seed_path  # noqa: E402
from astevo.settings import EvolveConfig, FitnessSettings, MutationSettings, default_fitness  # noqa: E402
from astevo.variation.base import Proposal, Variation  # noqa: E402
from astevo.variation.edit_outcomes import EditOutcome, edit_label, edit_outcomes  # noqa: E402
from astevo.variation.intents import SIZE_STEP  # noqa: E402
from astevo.variation.prompts import Exemplar  # noqa: E402

IMPROVED_SE = 2.0  # a child improves when its mean beats the seed's by more than this many standard errors
LOSS_ALLOWED = 0.01  # "as good": at most one point of accuracy lost


def variation_for(method: str, settings: MutationSettings, fitness: FitnessSettings) -> Variation:
    """The method's variation, as a run makes it: the model is told what a version is judged by."""
    if method == "random":
        from astevo.variation.random_mutation import RandomVariation

        return RandomVariation(settings)
    kind, _, rest = method.partition(":")
    name, _, way = rest.partition(":")
    if kind != "llm" or not name or way not in ("", "block", "ranked"):
        raise SystemExit(f"error: a method is llm:NAME, llm:NAME:block, llm:NAME:ranked or random, got {method!r}")
    from astevo.llm.gguf import resolve_model
    from astevo.llm.llama_cpp_backend import LlamaCppGenerator
    from astevo.variation.llm_mutation import LLMVariation
    from astevo.variation.prompts import training_objective

    model = resolve_model(name, lambda line: print(line, flush=True))
    scope, answers = ("block", "written") if way == "block" else ("line", way or "written")
    settings = dataclasses.replace(settings, model=model.name, scope=scope, answers=answers)
    return LLMVariation(LlamaCppGenerator.from_settings(settings, model), settings, training_objective(fitness))


def proposal_record(
    proposal: Proposal, seed: ModelFile, exemplar: Exemplar | None, outcomes: tuple[EditOutcome, ...]
) -> dict[str, Any]:
    final = proposal.exchanges[-1] if proposal.exchanges else None
    return {
        "block": proposal.block,
        "exemplar": None
        if exemplar is None
        else {"block": exemplar.block, "edit": exemplar.edit, "gain": exemplar.accuracy_change},
        "outcomes": [dataclasses.asdict(outcome) for outcome in outcomes],
        "intent": proposal.intent,
        "persona": proposal.persona,
        "file": with_block(seed, proposal.block, proposal.source) if proposal.source is not None else None,
        "edit": final.edit if final is not None and proposal.source is not None else None,
        "parameters": final.parameters if final is not None and proposal.source is not None else None,
        "seconds": proposal.seconds,
        "exchanges": [
            {"edit": e.edit, "answer": e.answer, "verdict": e.verdict, "prompt_tail": e.prompt[-400:]}
            for e in proposal.exchanges
        ],
    }


def proposals_of(
    method: str, arguments: argparse.Namespace, seed: ModelFile, size: Size, memory: Memory
) -> list[dict[str, Any]]:
    """The method's proposals, made now or read back from an earlier bench."""
    path = arguments.out / f"proposals-{method.replace(':', '_').replace('/', '_')}.json"
    if path.exists():
        return list(json.loads(path.read_text()))
    anatomy = inspect_model(seed, LocalEvaluator(), fitness_of(arguments))
    variation = variation_for(method, MutationSettings(repairs=arguments.repairs), fitness_of(arguments))
    records: list[dict[str, Any]] = []
    shown: list[tuple[Exemplar | None, tuple[EditOutcome, ...]]] = []

    def memory_for(index: int) -> tuple[Exemplar | None, tuple[EditOutcome, ...]]:
        shown.append((memory.exemplar(index, records), memory.outcomes(index, records)))
        return shown[-1]

    for proposal in drawn_proposals(variation, seed, anatomy, arguments.proposals, None, size, False, memory_for):
        given, outcomes = shown[-1]
        records.append(proposal_record(proposal, seed, given, outcomes))
        print(
            f"  {method} {len(records)}/{arguments.proposals}: {proposal.intent} {proposal.block}"
            f"{f' (shown {given.block} {given.edit} {given.accuracy_change:+.4f})' if given else ''}"
            f"{f' ({len(outcomes)} outcomes shown)' if outcomes else ''} -> "
            f"{records[-1]['edit'] or proposal.error}, {proposal.seconds:.1f} s",
            flush=True,
        )
    path.write_text(json.dumps(records))
    return records


class Memory:
    """What a run shows a proposal, from the second round on, of the method's own children of earlier rounds once
    they are trained: Evolution of Thought's exemplar (the child that gained most over the seed, by the mean of its
    trainings and beyond the noise of the seed's; at the run's rate) and the outcomes of each kind of edit."""

    def __init__(self, seed: ModelFile, trainings: Trainings, arguments: argparse.Namespace) -> None:
        self.seed, self.trainings, self.arguments = seed, trainings, arguments
        self.round_size = math.ceil(arguments.proposals / arguments.rounds)
        self.seed_code = canonical_hash(seed.source)

    def exemplar(self, index: int, records: list[dict[str, Any]]) -> Exemplar | None:
        if random.Random(f"bench-eot:{index}").random() >= self.arguments.eot_rate:
            return None
        measured = self._measured(index, records)
        if measured is None:
            return None
        noise, gains = measured
        gained = [(gain, record) for record, gain, counts in gains if noise.gained(gain, counts)]  # as a run picks
        if not gained:
            return None
        gain, record = max(gained, key=lambda pair: pair[0])
        return Exemplar(
            block=record["block"],
            before=self.seed.block(record["block"]).source,
            after=ModelFile(record["file"]).block(record["block"]).source,
            accuracy_change=gain,
            parameter_change=record["parameters"] - self.arguments.seed_parameters,
            edit=record["edit"],
        )

    def outcomes(self, index: int, records: list[dict[str, Any]]) -> tuple[EditOutcome, ...]:
        measured = self._measured(index, records)
        if measured is None:
            return ()
        seed_parameters = self.arguments.seed_parameters
        return edit_outcomes(
            (edit_label(record["edit"], seed_parameters, record["parameters"]), gain)
            for record, gain, _ in measured[1]
            if record["edit"] is not None
        )

    def _measured(
        self, index: int, records: list[dict[str, Any]]
    ) -> tuple[Noise, list[tuple[dict[str, Any], float, tuple[int, int]]]] | None:
        """The seed's noise, and each earlier round's trained child with its gain over the seed and the counts
        of trainings behind it; None in the first round, or when the seed trained nowhere."""
        if index < self.round_size:
            return None
        earlier = [r for r in records[: index // self.round_size * self.round_size] if r["file"]]
        files = {canonical_hash(r["file"]): r["file"] for r in earlier}
        seeds = {code: range(self.arguments.seeds) for code in files}
        files[self.seed_code], seeds[self.seed_code] = self.seed.source, range(self.arguments.seed_trainings)
        self.trainings.run(files, seeds)
        noise = Noise(tuple(self.trainings.of(self.seed_code, seeds[self.seed_code])))
        if not noise.accuracies:
            return None
        gains = []
        for record in earlier:
            accuracies = self.trainings.of(canonical_hash(record["file"]), range(self.arguments.seeds))
            if accuracies:
                gain = statistics.fmean(accuracies) - statistics.fmean(noise.accuracies)
                gains.append((record, gain, (len(accuracies), len(noise.accuracies))))
        return noise, gains


class Trainings:
    """Validation accuracy per (code hash, training seed), kept in a JSON file as each training ends."""

    def __init__(self, path: Path, fitness: FitnessSettings, workers: int) -> None:
        self.path, self.fitness, self.workers = path, fitness, workers
        self.accuracies: dict[str, float] = json.loads(path.read_text()) if path.exists() else {}

    def run(self, files: dict[str, str], seeds: dict[str, range]) -> None:
        todo = [(code, s) for code in files for s in seeds[code] if f"{code}:{s}" not in self.accuracies]
        if not todo:
            return
        print(f"training: {len(todo)} trainings in {self.workers} slot(s)", flush=True)
        evaluator = LocalEvaluator(workers=self.workers)
        started = time.perf_counter()
        try:
            futures = {}
            for code, training_seed in todo:
                budget = dataclasses.replace(self.fitness.budget, training_seed=training_seed)
                settings = dataclasses.replace(self.fitness, budget=budget)
                request = EvaluationRequest(f"{code}:{training_seed}", files[code], settings)
                futures[request.request_id] = evaluator.submit(request)
            for done, (key, future) in enumerate(futures.items(), start=1):
                evaluation = future.result().evaluation
                self.accuracies[key] = evaluation.metrics["val_accuracy"] if evaluation.valid else math.nan
                self.path.write_text(json.dumps(self.accuracies))
                if done % 10 == 0 or done == len(futures):
                    print(f"  {done}/{len(futures)} trainings, {time.perf_counter() - started:.0f} s", flush=True)
        finally:
            evaluator.close()

    def of(self, code: str, seeds: range) -> list[float]:
        return [value for s in seeds if not math.isnan(value := self.accuracies[f"{code}:{s}"])]


def pooled_std(groups: list[list[float]]) -> float:
    """One training's std, pooled over models: the within-model spread, each model around its own mean."""
    squares = sum(sum((x - statistics.fmean(g)) ** 2 for x in g) for g in groups if len(g) > 1)
    freedom = sum(len(g) - 1 for g in groups if len(g) > 1)
    return math.sqrt(squares / freedom) if freedom else math.nan


@dataclasses.dataclass
class Child:
    intent: str
    edit: str
    shown: str  # the kind of the earlier change Evolution of Thought showed, or "nothing"
    change: float  # mean validation accuracy minus the seed's
    standard_error: float
    smaller: bool  # at least 5% fewer parameters

    @property
    def improved(self) -> bool:
        return self.change > IMPROVED_SE * self.standard_error


def _shown_kind(exemplar: dict[str, Any] | None) -> str:
    return "nothing" if exemplar is None else f"a {exemplar['edit']} change"


def share(part: int, whole: int) -> str:
    return f"{part}/{whole} ({part / whole:.0%})" if whole else "-"


def mean_and_error(values: list[float]) -> str:
    if not values:
        return "-"
    error = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else math.nan
    return f"{statistics.fmean(values) * 100:+.2f} +- {error * 100:.2f}"


def report(
    methods: dict[str, list[dict[str, Any]]], trainings: Trainings, seed_code: str, arguments: argparse.Namespace
) -> None:
    seeds = range(arguments.seeds)
    seed_accuracies = trainings.of(seed_code, range(arguments.seed_trainings))
    seed_mean = statistics.fmean(seed_accuracies)
    codes = {canonical_hash(r["file"]) for records in methods.values() for r in records if r["file"]}
    sigma = pooled_std([seed_accuracies, *(trainings.of(code, seeds) for code in codes)])
    seed_parameters = arguments.seed_parameters
    print(
        f"\nseed: {seed_mean * 100:.2f}% validation accuracy over {len(seed_accuracies)} trainings; one training's "
        f"std (pooled over {len(codes) + 1} models): {sigma * 100:.2f} points; children trained with {len(seeds)} "
        f"seeds, so one child's change has a standard error of "
        f"{sigma * math.sqrt(1 / len(seeds) + 1 / len(seed_accuracies)) * 100:.2f} points"
    )
    header = (
        f"{'method':<28} {'valid':>12} {'improved (>2 se)':>17} {'mean change (pts)':>18} "
        f"{'smaller, as good':>17} {'distinct/10':>11} {'s/proposal':>10}"
    )
    print(header)
    improved_share: dict[str, tuple[int, int]] = {}
    children_of: dict[str, list[Child]] = {}
    for method, records in methods.items():
        children = []
        distinct = set()
        for record in records:
            if record["file"] is None:
                continue
            code = canonical_hash(record["file"])
            distinct.add(code)
            accuracies = trainings.of(code, seeds)
            if not accuracies:
                continue
            error = sigma * math.sqrt(1 / len(accuracies) + 1 / len(seed_accuracies))
            parameters = record["parameters"]
            smaller = parameters is not None and parameters <= (1 - SIZE_STEP) * seed_parameters
            children.append(
                Child(
                    record["intent"],
                    record["edit"] or "?",
                    _shown_kind(record.get("exemplar")),
                    statistics.fmean(accuracies) - seed_mean,
                    error,
                    smaller,
                )
            )
        children_of[method] = children
        total = len(records)
        improved = sum(child.improved for child in children)
        improved_share[method] = (improved, total)
        as_good = sum(child.smaller and child.change >= -LOSS_ALLOWED for child in children)
        print(
            f"{method:<28} {share(len(children), total):>12} {share(improved, total):>17} "
            f"{mean_and_error([c.change for c in children]):>18} {share(as_good, total):>17} "
            f"{10 * len(distinct) / total:>11.1f} {statistics.fmean(r['seconds'] for r in records):>10.1f}"
        )
    if "random" in improved_share:
        base, base_total = improved_share["random"]
        p_random = base / base_total
        for method, (count, total) in improved_share.items():
            if method == "random":
                continue
            p = count / total
            error = math.sqrt(p * (1 - p) / total + p_random * (1 - p_random) / base_total)
            verdict = (
                "beats random by more than 2 standard errors"
                if error > 0 and p - p_random > 2 * error
                else "not shown to differ from random (within 2 standard errors)"
            )
            print(
                f"{method} - random, improved share: {(p - p_random) * 100:+.1f} points +- {error * 100:.1f}: {verdict}"
            )
    for label, key in (("intent", "intent"), ("edit kind", "edit"), ("what Evolution of Thought showed", "shown")):
        print(f"\nby {label}: improved / valid children, mean change in points")
        for method, children in children_of.items():
            groups: dict[str, list[Child]] = {}
            for child in children:
                groups.setdefault(getattr(child, key), []).append(child)
            shown = ", ".join(
                f"{name} {sum(c.improved for c in group)}/{len(group)} "
                f"({statistics.fmean(c.change for c in group) * 100:+.2f})"
                for name, group in sorted(groups.items())
            )
            print(f"  {method}: {shown or '-'}")
    print("\nrepeats: how often a method's answers repeat (the same text at the same kind of spot)")
    for method, records in methods.items():
        answers = Counter((e["edit"], e["answer"].strip()) for r in records for e in r["exchanges"])
        total = sum(answers.values())
        repeated = sum(n - 1 for n in answers.values() if n > 1)
        common = "; ".join(f"{edit}: {text[:40]!r} x{n}" for (edit, text), n in answers.most_common(3) if n > 1)
        print(
            f"  {method}: {total} answers, {repeated} repeats of an earlier one{'; most: ' + common if common else ''}"
        )


def fitness_of(arguments: argparse.Namespace) -> FitnessSettings:
    """The bench's training settings: the default budget with the flags' data, size and epochs, one thread."""
    return dataclasses.replace(
        default_fitness(),
        dataset=arguments.dataset,
        data_dir=str(arguments.data.resolve()) if arguments.data else None,
        limit_train=arguments.limit_train,
        budget=dataclasses.replace(default_fitness().budget, epochs=arguments.epochs),
        threads=1,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--methods", default="llm:qwen2.5-coder-1.5b,llm:qwen2.5-coder-0.5b,llm:smollm2-135m,random")
    parser.add_argument("--proposals", type=int, default=24)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of proposals; 1: no Evolution of Thought")
    parser.add_argument("--eot-rate", type=float, default=EvolveConfig().eot_rate)
    parser.add_argument("--seeds", type=int, default=3, help="training seeds per child")
    parser.add_argument("--seed-trainings", type=int, default=6, help="training seeds of the seed model")
    parser.add_argument("--repairs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="trainings side by side, one thread each")
    parser.add_argument("--seed-file", type=Path, default=None)
    parser.add_argument("--dataset", default=default_fitness().dataset)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--limit-train", type=int, default=default_fitness().limit_train)
    parser.add_argument("--epochs", type=float, default=default_fitness().budget.epochs)
    parser.add_argument("--out", type=Path, default=Path("/tmp/astevo-bench-guidance"))
    arguments = parser.parse_args()
    if arguments.rounds < 1 or not 0 <= arguments.eot_rate <= 1:
        parser.error("--rounds must be at least 1 and --eot-rate between 0 and 1")
    arguments.out.mkdir(parents=True, exist_ok=True)
    fitness = fitness_of(arguments)
    seed = ModelFile.read(arguments.seed_file or default_seed_path())
    anatomy = inspect_model(seed, LocalEvaluator(), fitness)
    blocks = evolvable_blocks(seed, anatomy, ())
    size = BlockCheck(LocalEvaluator(), dataclasses.replace(fitness, train=False), seed, blocks[-1]).parent_size()
    if size is None:
        raise SystemExit("error: the seed fails its fast checks; run astevo eval on it")
    arguments.seed_parameters = size.parameters
    print(
        f"seed {seed.origin}: {size.parameters:,} parameters; blocks {', '.join(blocks)}; {fitness.dataset}, "
        f"{fitness.limit_train} images x {fitness.budget.epochs:g} epochs, 1 thread per training",
        flush=True,
    )
    trainings = Trainings(arguments.out / f"trainings-{arguments.limit_train}x{arguments.epochs:g}.json", fitness,
                          arguments.workers)  # fmt: skip
    memory = Memory(seed, trainings, arguments)
    methods = {}
    for method in arguments.methods.split(","):
        print(f"proposing: {method}", flush=True)
        methods[method] = proposals_of(method, arguments, seed, size, memory)
    files = {canonical_hash(r["file"]): r["file"] for records in methods.values() for r in records if r["file"]}
    seed_code = canonical_hash(seed.source)
    seeds = {code: range(arguments.seeds) for code in files}
    files[seed_code], seeds[seed_code] = seed.source, range(arguments.seed_trainings)
    trainings.run(files, seeds)
    report(methods, trainings, seed_code, arguments)


if __name__ == "__main__":
    main()
