"""What the bundled models' proposals do, per model, drawn as a default run draws them.

Each proposal mutates the seed: its intent is drawn uniformly (or fixed to "fewer_parameters"), then
its block among those a default run evolves (the top-level class included) exactly as evolution draws
it for that intent. A proposal is useful when its block differs from the original by canonical hash
and the child passes parse, gate, build and the shape probe. A size change counts only when the
parameter count moves by at least 5% (a bias toggle moves it by a few hundred).

Prints, per model:
- with drawn intents: useful share, model calls per proposal, seconds per proposal, distinct useful
  proposals per 10, the share of useful proposals that change size and which kinds of edit did;
- with "fewer parameters": the share of proposals that reduce the parameter count by 5% or more,
  and the same share for first answers alone (before any retry).

    python tools/bench_mutate.py --proposals 16
    python tools/bench_mutate.py --model qwen2.5-coder-1.5b --scope block --every-block --proposals 18

`--every-block` takes the evolvable blocks in turn instead of drawing them, and adds a line per block.
"""

from __future__ import annotations

import argparse
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from astevo.code.blocks import ModelFile
from astevo.code.canonical import canonical_hash
from astevo.evaluation.anatomy import Anatomy, inspect_model
from astevo.evaluation.base import Size
from astevo.evaluation.checks import BlockCheck
from astevo.evaluation.executors.local import LocalEvaluator
from astevo.evolution.block_choice import choose_block
from astevo.evolution.evolvable import evolvable_blocks
from astevo.llm.gguf import bundled_models
from astevo.llm.llama_cpp_backend import LlamaCppGenerator
from astevo.paths import default_seed_path
from astevo.settings import FitnessSettings, MutationSettings
from astevo.variation.base import Exchange, Proposal, Variation
from astevo.variation.edit_outcomes import EditOutcome
from astevo.variation.intents import INTENTS
from astevo.variation.llm_mutation import LLMVariation
from astevo.variation.prompts import Exemplar
from astevo.views.size_changes import direction

FAST = FitnessSettings(train=False)


@dataclass
class Tally:
    proposals: int = 0
    useful: int = 0
    calls: int = 0
    resized: int = 0
    shrunk: int = 0
    first_shrunk: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    distinct: set[tuple[str, str]] = field(default_factory=set)
    seconds: float = 0.0
    rejected_at: Counter[str] = field(default_factory=Counter)  # why the final answer failed: its stage or kind

    def add(self, proposal: Proposal, before: int) -> None:
        self.proposals += 1
        self.calls += len(proposal.exchanges)
        self.seconds += proposal.seconds
        self.first_shrunk += bool(proposal.exchanges) and _shrinks(proposal.exchanges[0], before)
        if proposal.source is None:
            self.rejected_at[(proposal.error or "no answer").split(":", 1)[0]] += 1
            return
        self.useful += 1
        self.distinct.add((proposal.block, canonical_hash(proposal.source)))
        final = proposal.exchanges[-1]
        self.shrunk += _shrinks(final, before)
        if final.parameters is not None and direction(final.parameters, before) != "same":
            self.resized += 1
            self.kinds[final.edit or "?"] += 1


def _shrinks(exchange: Exchange, before: int) -> bool:
    return exchange.parameters is not None and direction(exchange.parameters, before) == "smaller"


def share(part: int, whole: int) -> str:
    return f"{part}/{whole} ({part / whole:.0%})" if whole else "-"


def drawn_proposals(
    variation: Variation,
    seed: ModelFile,
    anatomy: Anatomy,
    count: int,
    intent: str | None,
    size: Size,
    every_block: bool = False,
    memory_for: Callable[[int], tuple[Exemplar | None, tuple[EditOutcome, ...]]] | None = None,
) -> Iterator[Proposal]:
    """`count` proposals drawn as a run draws them (or with the blocks taken in turn); random draws seeded by
    index, so every model gets the same intents and blocks (and a run's "known versions": a repeat of an earlier
    proposal is rejected). `memory_for(index)`, asked as each proposal is made, is what the run shows it: Evolution
    of Thought's exemplar and the measured outcomes of each kind of edit."""
    blocks = evolvable_blocks(seed, anatomy, ())
    parameters = {name: sum(use.parameters) for name, use in anatomy.uses.items()}
    seen: dict[str, set[str]] = {}  # versions proposed so far, per block: a run holds them, and they are copies
    for index in range(count):
        rng = random.Random(f"bench:{intent}:{index}")
        drawn = intent or rng.choice(INTENTS)
        block = choose_block(seed, blocks, drawn, rng, parameters, anatomy.parameters)
        if every_block:
            block = blocks[index % len(blocks)]
        known = seen.setdefault(block, {canonical_hash(seed.block(block).source)})
        check = BlockCheck(LocalEvaluator(), FAST, seed, block, parent_size=size, known=frozenset(known))
        exemplar, outcomes = memory_for(index) if memory_for else (None, ())
        proposal = variation.mutate(seed, block, drawn, rng, exemplar, check, outcomes)
        if proposal.source is not None:
            known.add(canonical_hash(proposal.source))
        yield proposal


def tallied(proposals: Iterable[Proposal], before: int) -> tuple[Tally, dict[str, Tally]]:
    """The tally of all proposals, and one per block."""
    tally, per_block = Tally(), dict[str, Tally]()
    for proposal in proposals:
        tally.add(proposal, before)
        per_block.setdefault(proposal.block, Tally()).add(proposal, before)
    return tally, per_block


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--proposals", type=int, default=16, help="proposals per model for each of the two draws")
    parser.add_argument("--scope", default="line", choices=["line", "block"])
    parser.add_argument("--repairs", type=int, default=3)
    parser.add_argument("--model", action="append", help="a named model (repeatable); default: every one installed")
    parser.add_argument("--every-block", action="store_true", help="the evolvable blocks in turn, not drawn")
    args = parser.parse_args()
    seed = ModelFile.read(default_seed_path())
    anatomy = inspect_model(seed, LocalEvaluator(), FAST)
    blocks = evolvable_blocks(seed, anatomy, ())
    size = BlockCheck(LocalEvaluator(), FAST, seed, blocks[-1]).parent_size()
    assert size is not None, "the seed fails its fast checks"
    print(f"blocks: {', '.join(blocks)}; seed: {size.parameters:,} parameters", flush=True)
    for info in bundled_models():
        if args.model and info.name not in args.model:
            continue
        settings = MutationSettings(model=info.name, scope=args.scope, repairs=args.repairs)
        variation = LLMVariation(LlamaCppGenerator.from_settings(settings, info), settings)
        started = time.perf_counter()
        drawn, per_block = tallied(
            drawn_proposals(variation, seed, anatomy, args.proposals, None, size, args.every_block), size.parameters
        )
        smaller, smaller_per_block = tallied(
            drawn_proposals(variation, seed, anatomy, args.proposals, "fewer_parameters", size, args.every_block),
            size.parameters,
        )
        kinds = ", ".join(f"{kind} {n}" for kind, n in drawn.kinds.most_common()) or "-"
        print(
            f"{info.name}: drawn intents: useful {share(drawn.useful, drawn.proposals)}, "
            f"{drawn.calls / drawn.proposals:.2f} calls/proposal, {drawn.seconds / drawn.proposals:.1f} s/proposal, "
            f"distinct useful per 10: {10 * len(drawn.distinct) / drawn.proposals:.1f}, "
            f"size-changing (>= 5%) of useful: {share(drawn.resized, drawn.useful)} by [{kinds}]; "
            f"fewer_parameters: useful {share(smaller.useful, smaller.proposals)}, reducing >= 5%: "
            f"{share(smaller.shrunk, smaller.proposals)}, "
            f"first answers: {share(smaller.first_shrunk, smaller.proposals)}; {time.perf_counter() - started:.0f} s",
            flush=True,
        )
        if not args.every_block:
            continue
        for draw, tallies in (("drawn intents", per_block), ("fewer_parameters", smaller_per_block)):
            print(f"  {draw}, per block:", flush=True)
            for block, tally in tallies.items():
                print(f"    {block}: {per_block_line(tally)}", flush=True)


def per_block_line(tally: Tally) -> str:
    rejected = ", ".join(f"{why} {n}" for why, n in tally.rejected_at.most_common()) or "-"
    return (
        f"useful {share(tally.useful, tally.proposals)}, {tally.seconds / tally.proposals:.1f} s/proposal, "
        f"size-changing (>= 5%) of useful: {share(tally.resized, tally.useful)}; rejected at: {rejected}"
    )


if __name__ == "__main__":
    main()
