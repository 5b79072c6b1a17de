"""Benchmark the local LLM: free against grammar-constrained decoding, and KV-cache reuse.

For each bundled model (or --model), on the same "rewrite the SE block" prompt and seeds:
decode tokens/s without a grammar and under the class-body grammar, side by side, and
their ratio (the grammar's cost: target free/constrained <= 1.15). Then the prompt-eval
time of a first call against a second call that shares its long system prompt.

    python3 tools/bench_llm.py [--model PATH.gguf] [--seeds 3] [--max-tokens 160]
"""

from __future__ import annotations

import argparse
import ast
import time
from pathlib import Path

import numpy as np

from astevo.llm.backend import Completion
from astevo.llm.gguf import ModelInfo, bundled_models, resolve_model
from astevo.llm.grammar import body_grammar
from astevo.llm.llama_cpp_backend import LlamaCppGenerator, TokenMask

SEED_FILE = Path(__file__).resolve().parents[1] / "seeds" / "exquisitenetv2.py"
HEADER = "class SE(nn.Module):\n"


def block_source(name: str) -> str:
    source = SEED_FILE.read_text()
    lines = source.splitlines(keepends=True)
    node = next(n for n in ast.parse(source).body if getattr(n, "name", None) == name)
    return "".join(lines[node.lineno - 1 : node.end_lineno])


def rewrite_chat(system: str, task: str) -> list[dict[str, str]]:
    block = block_source("SE")
    return [
        {"role": "system", "content": system},
        {"role": "user", "content": f"{task}\n\n```python\n{block}```"},
    ]


def decode_seconds(result: Completion) -> float:
    """Time spent sampling after the first token (which is charged to prompt evaluation)."""
    return result.seconds - result.prompt_seconds


def speed(llm: LlamaCppGenerator, seeds: int, max_tokens: int) -> None:
    chat = rewrite_chat(
        "You are an expert PyTorch engineer. Reply with Python code only.",
        "Rewrite this block to make the network more accurate. Keep the class name.",
    )
    grammar = body_grammar("class")
    started = time.perf_counter()
    llm.matcher(grammar)
    print(f"  grammar compile: {1000 * (time.perf_counter() - started):.1f} ms")
    llm.complete(chat, prefix=HEADER, max_tokens=4)  # warm-up: caches the shared prompt
    totals = {"free": [0, 0.0], "constrained": [0, 0.0]}
    print("  seed  mode         tokens  tok/s   finish")
    for seed in range(seeds):
        for mode, constraint in (("free", None), ("constrained", grammar)):
            result = llm.complete(
                chat,
                prefix=HEADER,
                grammar=constraint,
                temperature=0.3,
                max_tokens=max_tokens,
                seed=seed,
            )
            sampled = result.n_tokens - 1
            totals[mode][0] += sampled
            totals[mode][1] += decode_seconds(result)
            rate = sampled / decode_seconds(result)
            print(f"  {seed:4d}  {mode:11s}  {result.n_tokens:6d}  {rate:6.1f}  {result.finish}")
            if constraint is not None:
                constrained_text = result.text
    free_tps = totals["free"][0] / totals["free"][1]
    constrained_tps = totals["constrained"][0] / totals["constrained"][1]
    print(
        f"  free {free_tps:.1f} tok/s | constrained {constrained_tps:.1f} tok/s | "
        f"free/constrained = {free_tps / constrained_tps:.3f}"
    )
    per_token = grammar_seconds_per_token(llm, grammar, constrained_text)
    print(
        f"  grammar work alone (mask + apply + consume): {1000 * per_token:.2f} ms/token "
        f"= {100 * per_token * free_tps:.1f}% of a free decode step"
    )


def grammar_seconds_per_token(llm: LlamaCppGenerator, grammar: str, text: str) -> float:
    """Replays `text` through the constraint without the model: its cost, free of noise."""
    matcher = llm.matcher(grammar)
    mask = TokenMask(matcher, llm.tokenizer.vocab_size)
    logits = np.zeros(llm.tokenizer.vocab_size, dtype=np.float32)
    tokens = llm.tokenizer.tokenize_str(text)
    started = time.perf_counter()
    for token in tokens:
        mask(np.empty(0), logits)
        matcher.consume_token(token)
    return (time.perf_counter() - started) / len(tokens)


def kv_cache_reuse(llm: LlamaCppGenerator) -> None:
    long_system = (
        "You are an expert PyTorch engineer. This is the whole model file you work on:\n\n" + SEED_FILE.read_text()
    )
    first = llm.complete(rewrite_chat(long_system, "Make this block smaller."), max_tokens=1)
    second = llm.complete(rewrite_chat(long_system, "Make this block more accurate."), max_tokens=1)
    print(
        f"  prompt eval, {first.n_prompt_tokens} tokens: first call {first.prompt_seconds:.3f} s, "
        f"second call sharing the system prompt {second.prompt_seconds:.3f} s "
        f"(first/second = {first.prompt_seconds / second.prompt_seconds:.1f}x)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a GGUF file; default: every bundled model")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=160)
    args = parser.parse_args()
    models: list[ModelInfo] = [resolve_model(args.model)] if args.model else bundled_models()
    for info in models:
        print(f"{info.name} ({info.size_mb:.0f} MB, {info.source})")
        started = time.perf_counter()
        llm = LlamaCppGenerator(info)
        _ = llm.tokenizer  # built here, outside the timings below
        print(f"  load + llguidance tokenizer: {time.perf_counter() - started:.2f} s")
        kv_cache_reuse(llm)
        speed(llm, args.seeds, args.max_tokens)


if __name__ == "__main__":
    main()
