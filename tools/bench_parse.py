"""What reading a candidate costs the astevo process: each child's fast check, run as the loop runs it, and the
breeder's read of the child, with a source's blocks indexed once per process (as astevo does) and indexed anew
at every read (as astevo did before), side by side. Only this process's CPU is counted: the sandboxed
children's is not.

    python tools/bench_parse.py [--children 6]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from astevo.code import blocks  # noqa: E402
from astevo.code.blocks import ModelFile  # noqa: E402
from astevo.code.imports import with_block  # noqa: E402
from astevo.evaluation.checks import BlockCheck  # noqa: E402
from astevo.evaluation.executors.local import LocalEvaluator  # noqa: E402
from astevo.paths import default_seed_path  # noqa: E402
from astevo.settings import FitnessSettings  # noqa: E402

CHECKS = FitnessSettings(train=False, check_seconds=60.0)


@contextmanager
def indexed_at_every_read() -> Iterator[None]:
    with mock.patch.object(blocks, "_index", blocks._index.__wrapped__):
        yield


def cpu_per_child(seed: ModelFile, evaluator: LocalEvaluator, children: int, first: int) -> float:
    cpu = time.process_time()
    for k in range(first, first + children):
        block = seed.blocks["DW"].source.replace("self.act(self.dw(x))", f"self.act(self.dw(x)) * {k}")
        check = BlockCheck(evaluator, CHECKS, seed, "DW")
        problem = check(block)
        assert problem is None, problem
        ModelFile(with_block(seed, "DW", block), f"#{k}")  # the breeder reads the evaluated child
    return (time.process_time() - cpu) / children


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--children", type=int, default=6)
    arguments = parser.parse_args()
    seed = ModelFile.read(default_seed_path())
    evaluator = LocalEvaluator()
    cpu_per_child(seed, evaluator, 1, 1)  # imports and the sandbox's first start, out of both figures
    with indexed_at_every_read():
        every_read = cpu_per_child(seed, evaluator, arguments.children, 100)
    once = cpu_per_child(seed, evaluator, arguments.children, 200)
    print(f"astevo process CPU per checked child ({arguments.children} children each):")
    print(f"  blocks indexed at every read: {every_read:.3f} s")
    print(f"  indexed once per source:      {once:.3f} s  ({every_read / once:.1f}x less)")


if __name__ == "__main__":
    main()
