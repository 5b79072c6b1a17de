"""A served model against the same model in-process: proposals and the grammar's cost, side by side in one run.

Starts llama-cpp-python's OpenAI-compatible server (`python -m llama_cpp.server`) with the model on 127.0.0.1,
with the threads astevo gives llama.cpp in-process, and loads the model in this process too. Then:
- proposals: N line-scope proposals of one block through each backend, alternating, with the same seeds,
  intents and personas; seconds per proposal and the useful share (passed the fast checks);
- the grammar's cost: the same prompt answered free and under a line grammar (GBNF through the server,
  llguidance masks in-process), tokens per second each and free/constrained.

    python tools/bench_served.py [--model qwen2.5-coder-0.5b] [--proposals 8] [--block SE_LN]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import urllib.request
from itertools import zip_longest
from pathlib import Path

from astevo.code.blocks import ModelFile
from astevo.evaluation.executors.local import LocalEvaluator
from astevo.evolution.proposals import BlockProposals
from astevo.llm.backend import Generator
from astevo.llm.factory import ModelChoice
from astevo.llm.gguf import resolve_model
from astevo.llm.grammar import Vocabulary, continuation_grammar
from astevo.llm.threads import model_threads
from astevo.paths import default_seed_path
from astevo.runs import llm_variation
from astevo.settings import FitnessSettings, MutationSettings, ServerSettings
from astevo.variation.base import Proposal

PREFIX = "class Stem(nn.Module):\n    def __init__(self, cin, cout):\n        super().__init__()\n"
PREFIX += "        self.conv = nn.Conv2d(cin, "
VOCABULARY = Vocabulary(
    names=frozenset({"cin", "cout", "nn", "torch", "F"}),
    attributes=frozenset({"Conv2d", "BatchNorm2d", "ReLU"}),
    keywords=frozenset({"kernel_size", "stride", "padding", "groups", "bias", "dilation"}),
    layers=frozenset({"ReLU", "Hardswish"}),
)
CHAT = [
    {"role": "system", "content": "You are an expert PyTorch engineer. Reply with Python code only."},
    {"role": "user", "content": "Write a stem block for a small image classifier."},
]


def start_server(path: Path, port: int, threads: int, log: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(path), "--model_alias", "bench"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096"]
    command += ["--n_threads", str(threads), "--n_threads_batch", str(threads)]
    with log.open("w") as output:
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=output)
    deadline = time.monotonic() + 300
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2).close()
            return server
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the server did not start: {log.read_text()[-2000:]}") from None
            time.sleep(0.5)


def grammar_cost(generator: Generator, answers: int, max_tokens: int) -> tuple[float, float]:
    """Tokens per second of whole answers, free and constrained, on the same prompt and seeds."""
    grammar = continuation_grammar(1, True, VOCABULARY)
    totals = {"free": [0, 0.0], "constrained": [0, 0.0]}
    generator.complete(CHAT, prefix=PREFIX, max_tokens=2)  # the prompt cached for both modes
    for seed in range(answers):
        for mode, constraint in (("free", None), ("constrained", grammar)):
            answer = generator.complete(
                CHAT, prefix=PREFIX, grammar=constraint, temperature=0.8, max_tokens=max_tokens, seed=seed
            )
            totals[mode][0] += answer.n_tokens
            totals[mode][1] += answer.seconds
    return totals["free"][0] / totals["free"][1], totals["constrained"][0] / totals["constrained"][1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="a model name or GGUF file (default: astevo's default)")
    parser.add_argument("--proposals", type=int, default=8)
    parser.add_argument("--block", default="SE_LN")
    parser.add_argument("--answers", type=int, default=4, help="answers per mode for the grammar's cost")
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--port", type=int, default=18931)
    args = parser.parse_args()

    local = MutationSettings(model=args.model)
    info = resolve_model(args.model)
    threads = model_threads(local)
    served = MutationSettings(
        model="bench", backend="server", server=ServerSettings(url=f"http://127.0.0.1:{args.port}/v1")
    )
    print(f"model {info.name} ({info.size_mb:.0f} MB), {threads} llama.cpp thread(s) in both backends")
    with tempfile.TemporaryDirectory() as folder:
        server = start_server(info.path, args.port, threads, Path(folder) / "server.log")
        try:
            backends = {"in-process": ModelChoice(local), "served": ModelChoice(served)}
            seed_file = ModelFile.read(default_seed_path())
            fast = FitnessSettings(train=False)
            checks = LocalEvaluator()
            streams = [
                BlockProposals(seed_file, args.block, args.proposals, llm_variation(settings, choice), fast, checks)
                for settings, choice in ((local, backends["in-process"]), (served, backends["served"]))
            ]
            results: dict[str, list[Proposal]] = {"in-process": [], "served": []}
            for pair in zip_longest(*streams):  # alternating, so both share the machine's moments
                for name, proposal in zip(results, pair, strict=True):
                    results[name].append(proposal)
            print(f"\n{args.proposals} line-scope proposals of {args.block} each, alternating:")
            per_proposal = {}
            for name, proposals in results.items():
                useful = sum(proposal.accepted for proposal in proposals)
                calls = sum(len(proposal.exchanges) for proposal in proposals)
                per_proposal[name] = sum(proposal.seconds for proposal in proposals) / len(proposals)
                print(
                    f"  {name:10s}  {per_proposal[name]:6.1f} s per proposal  useful {useful}/{len(proposals)}  "
                    f"{calls / len(proposals):.1f} model calls per proposal"
                )
            ratio = per_proposal["served"] / per_proposal["in-process"]
            print(f"  served / in-process seconds per proposal = {ratio:.2f}")
            print(f"\ngrammar's cost, {args.answers} answers per mode of at most {args.max_tokens} tokens:")
            for name, choice in backends.items():
                free, constrained = grammar_cost(choice.generator(), args.answers, args.max_tokens)
                print(
                    f"  {name:10s}  free {free:6.1f} tok/s  constrained {constrained:6.1f} tok/s  "
                    f"free/constrained = {free / constrained:.3f}"
                )
        finally:
            server.kill()
            server.wait()


if __name__ == "__main__":
    main()
