"""What the bundled models' proposals do, per model, over the blocks a default run evolves.

A proposal is useful when its block differs from the original by canonical hash and the
child passes parse, gate, build and the shape probe. A size change counts only when the
parameter count moves by at least 5% (a bias toggle moves it by a few hundred).

Prints, per model:
- useful share, model calls per proposal, seconds per useful proposal (all calls, repairs
  and fast checks included), distinct useful proposals per 10;
- the share of useful proposals that change size, and which kinds of edit changed it;
- for "fewer parameters" proposals (blocks that intent may be drawn for): the share that
  reduce the parameter count by 5% or more, and the same share for first answers alone.

    python tools/bench_mutate.py --per-block 5
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from dataclasses import dataclass, field

from astevo.code.blocks import ModelFile
from astevo.code.canonical import canonical_hash
from astevo.data.sources import dataset_geometry
from astevo.evaluation.anatomy import inspect_model
from astevo.evolution.block_choice import SIZE_STEP, size_weights
from astevo.evolution.evolvable import evolvable_blocks
from astevo.evolution.proposals import BlockProposals
from astevo.llm.gguf import bundled_models
from astevo.paths import default_seed_path
from astevo.settings import FitnessSettings, MutationSettings
from astevo.variation.base import Exchange, Proposal


@dataclass
class Tally:
    proposals: int = 0
    useful: int = 0
    calls: int = 0
    resized: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    distinct_per_10: list[float] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, proposal: Proposal, before: int) -> None:
        self.proposals += 1
        self.calls += len(proposal.exchanges)
        if not proposal.accepted:
            return
        self.useful += 1
        final = proposal.exchanges[-1]
        if final.parameters is not None and abs(final.parameters / before - 1) >= SIZE_STEP:
            self.resized += 1
            self.kinds[final.edit or "?"] += 1


def shrinks(exchange: Exchange, before: int) -> bool:
    return exchange.parameters is not None and exchange.parameters <= before * (1 - SIZE_STEP)


def share(part: int, whole: int) -> str:
    return f"{part}/{whole} ({part / whole:.0%})" if whole else "-"


def run_block(seed: ModelFile, name: str, count: int, settings: MutationSettings) -> tuple[list[Proposal], int]:
    proposals = BlockProposals(seed, name, count, settings, FitnessSettings(train=False))
    found = list(proposals)
    return found, proposals.parent_size.parameters


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--blocks", nargs="*", default=[], help="default: the blocks a default run evolves")
    parser.add_argument("--per-block", type=int, default=5, help="proposals per block, for each of the two runs")
    parser.add_argument("--scope", default="line", choices=["line", "block"])
    parser.add_argument("--repairs", type=int, default=3)
    args = parser.parse_args()
    seed = ModelFile.read(default_seed_path())
    num_classes, channels, _ = dataset_geometry(FitnessSettings().dataset)
    anatomy = inspect_model(seed, num_classes, channels)
    blocks = evolvable_blocks(seed, anatomy, args.blocks)
    parameters = {name: sum(use.parameters) for name, use in anatomy.uses.items()}
    # The blocks "fewer parameters" may be drawn for: those choose_block gives a chance.
    sized = [
        b for b, weight in zip(blocks, size_weights(seed, blocks, parameters, must_shrink=True), strict=True) if weight
    ]
    print(f"blocks: {', '.join(blocks)}; fewer_parameters drawn for: {', '.join(sized)}")
    for info in bundled_models():
        tally, smaller, first_smaller, asked = Tally(), 0, 0, 0
        started = time.perf_counter()
        for index, name in enumerate(blocks):
            settings = MutationSettings(model=str(info.path), scope=args.scope, repairs=args.repairs, random_seed=index)
            found, before = run_block(seed, name, args.per_block, settings)
            for proposal in found:
                tally.add(proposal, before)
            hashes = {canonical_hash(p.source) for p in found if p.source is not None}
            tally.distinct_per_10.append(10 * len(hashes) / len(found))
            if name not in sized:
                continue
            intent = MutationSettings(
                model=str(info.path),
                scope=args.scope,
                repairs=args.repairs,
                random_seed=100 + index,
                intent="fewer_parameters",
            )
            for proposal in run_block(seed, name, args.per_block, intent)[0]:
                asked += 1
                smaller += proposal.accepted and shrinks(proposal.exchanges[-1], before)
                first_smaller += bool(proposal.exchanges) and shrinks(proposal.exchanges[0], before)
        seconds = time.perf_counter() - started
        kinds = ", ".join(f"{kind} {n}" for kind, n in tally.kinds.most_common()) or "-"
        print(
            f"{info.name}: useful {share(tally.useful, tally.proposals)}, "
            f"{tally.calls / tally.proposals:.2f} calls/proposal, "
            f"distinct per 10: {sum(tally.distinct_per_10) / len(tally.distinct_per_10):.1f}, "
            f"size-changing (>= 5%) of useful: {share(tally.resized, tally.useful)} by [{kinds}]; "
            f"fewer_parameters reducing >= 5%: {share(smaller, asked)}, first answers: {share(first_smaller, asked)}; "
            f"{seconds:.0f} s",
            flush=True,
        )


if __name__ == "__main__":
    main()
