"""Useful proposals per bundled model: a proposal is useful when its block differs from the
original by canonical hash and the child passes parse, gate, build and the shape probe.

Prints, per model: useful share, model calls per proposal, and seconds per useful proposal
(all calls, repairs and fast checks included).

    python tools/bench_mutate.py --per-block 3 --blocks SE_LN DW ME DFSEBV2
"""

from __future__ import annotations

import argparse
import time

from astevo.code.blocks import ModelFile
from astevo.evolution.proposals import block_proposals
from astevo.llm.gguf import bundled_models
from astevo.paths import default_seed_path
from astevo.settings import FitnessSettings, MutationSettings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--blocks", nargs="+", default=["SE_LN", "DW", "ME", "DFSEBV2"])
    parser.add_argument("--per-block", type=int, default=3)
    parser.add_argument("--scope", default="line", choices=["line", "block"])
    parser.add_argument("--repairs", type=int, default=3)
    args = parser.parse_args()
    seed = ModelFile.read(default_seed_path())
    print(f"{'model':<28} {'useful':>9} {'share':>6} {'calls/proposal':>15} {'s/useful':>9}")
    for info in bundled_models():
        useful = calls = total = 0
        started = time.perf_counter()
        for index, name in enumerate(args.blocks):
            settings = MutationSettings(model=str(info.path), scope=args.scope, repairs=args.repairs, random_seed=index)
            for proposal in block_proposals(seed, name, args.per_block, settings, FitnessSettings(train=False)):
                useful += proposal.accepted
                calls += len(proposal.exchanges)
                total += 1
        seconds = time.perf_counter() - started
        per_useful = f"{seconds / useful:.1f}" if useful else "-"
        print(
            f"{info.name:<28} {useful:>4} of {total:<3} {useful / total:>6.0%} {calls / total:>15.2f} {per_useful:>9}",
            flush=True,
        )


if __name__ == "__main__":
    main()
