"""A local GGUF model behind llama.cpp, with grammar-constrained generation by llguidance.

Constraints are applied as llguidance token masks in a logits processor rather than with
llama.cpp's own GBNF sampler, which is several times slower on large vocabularies.
"""

from __future__ import annotations

import ctypes
import math
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TypedDict

import llama_cpp
import llguidance
import llguidance.llamacpp
import numpy as np
from llguidance.numpy import allocate_token_bitmask, fill_next_token_bitmask

from astevo.errors import AstevoError
from astevo.llm.backend import KEEP_CAPTURE, Capabilities, Completion, Finish, GrammarError
from astevo.llm.chat_templates import PLAIN_TEMPLATE, TEMPLATE_BY_TURN_TOKEN, ChatRenderer
from astevo.llm.gguf import ModelInfo, checked_model, resolve_model
from astevo.llm.identity import ModelIdentity, file_identity
from astevo.llm.threads import model_threads
from astevo.settings import MutationSettings


class Sampling(TypedDict):
    top_k: int
    top_p: float
    min_p: float
    repeat_penalty: float


SAMPLING: Sampling = {"top_k": 40, "top_p": 0.95, "min_p": 0.05, "repeat_penalty": 1.0}


class TokenMask:
    """Logits processor that leaves only the tokens the matcher allows.

    Unpacking the bitmask with numpy is 8x faster than llguidance's
    `apply_token_bitmask_inplace` (0.7 ms against 5 ms per token on a 262k vocabulary).
    """

    def __init__(self, matcher: llguidance.LLMatcher, n_vocab: int) -> None:
        self._matcher = matcher
        self._n_vocab = n_vocab
        self._bitmask = allocate_token_bitmask(1, n_vocab)

    def __call__(self, input_ids: np.ndarray, logits: np.ndarray) -> np.ndarray:
        fill_next_token_bitmask(self._matcher, self._bitmask)
        allowed = np.unpackbits(self._bitmask.view(np.uint8), count=self._n_vocab, bitorder="little").view(bool)
        logits[~allowed] = -np.inf
        return logits


class FirstTokenDiverges:
    """Logits processor that forbids, at the first sampled step only, the tokens that would
    repeat the original text: the model must write something of its own from that spot."""

    def __init__(self, banned: np.ndarray) -> None:
        self._banned = banned
        self._used = False

    def __call__(self, input_ids: np.ndarray, logits: np.ndarray) -> np.ndarray:
        if not self._used:
            self._used = True
            kept = logits.copy()
            kept[self._banned] = -np.inf
            if np.isfinite(kept).any():  # never leave nothing to sample
                logits[:] = kept
        return logits


def _one_line(message: str) -> str:
    return " ".join(message.split())


@llama_cpp.llama_log_callback
def _drop_llama_log(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
    """llama.cpp logs to stderr even when verbose=False; astevo reports its own errors."""


def _load(path: Path, n_ctx: int, n_threads: int, seed: int, n_gpu_layers: int) -> llama_cpp.Llama:
    llama_cpp.llama_log_set(_drop_llama_log, ctypes.c_void_p(0))
    try:
        llama = llama_cpp.Llama(
            model_path=str(path),
            n_ctx=n_ctx,
            n_threads=n_threads,
            n_threads_batch=n_threads,
            n_gpu_layers=n_gpu_layers,
            seed=seed,
            # read into memory, not mapped: a model file overwritten while a run holds it would otherwise kill
            # astevo with SIGBUS at the next page it reads; read, the run keeps the model it checked
            use_mmap=False,
            verbose=False,
        )
    except (ValueError, RuntimeError, OSError) as error:
        raise AstevoError(
            f"llama.cpp cannot load model {path}: the file is corrupt or not a model "
            "llama.cpp supports; pass another --model PATH.gguf"
        ) from error
    return llama


class LlamaCppGenerator:
    """A loaded GGUF model that completes chats in-process, optionally under an llguidance grammar."""

    capabilities = Capabilities(grammar=True, forbid_first_token=True, prefix_cache=True)

    def __init__(
        self,
        model: ModelInfo | Path | str,
        *,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        seed: int = 0,
        n_gpu_layers: int | None = None,
    ) -> None:
        self.info = model if isinstance(model, ModelInfo) else checked_model(Path(model), "--model")
        if n_gpu_layers is None:
            n_gpu_layers = -1 if llama_cpp.llama_supports_gpu_offload() else 0
        threads = n_threads or model_threads(MutationSettings())
        self._llama = _load(self.info.path, n_ctx, threads, seed, n_gpu_layers)
        self._seed = seed
        self._chat = self._chat_formatter()
        self._tokenizer: llguidance.LLTokenizer | None = None
        self._pieces: np.ndarray | None = None  # each token's text, built on first use of `avoid`
        self._primed: list[int] | None = None  # the prefix `restart` evaluated on its own

    @classmethod
    def from_settings(cls, settings: MutationSettings, model: ModelInfo | None = None) -> LlamaCppGenerator:
        """`model`, else the one the settings name (else $ASTEVO_MODEL, else the default), loaded as they say."""
        return cls(
            model or resolve_model(settings.model),
            n_ctx=settings.llama_cpp.context,
            n_threads=settings.llama_cpp.threads or None,
            seed=settings.random_seed,
            n_gpu_layers=settings.llama_cpp.gpu_layers,
        )

    @property
    def name(self) -> str:
        return self.info.path.name

    @property
    def identity(self) -> ModelIdentity:
        return file_identity(self.info)

    def _chat_formatter(self) -> ChatRenderer:
        llama = self._llama

        def special_text(token: int) -> str:
            return llama.detokenize([token], special=True).decode("utf-8", errors="replace")

        return ChatRenderer(self._chat_template(), special_text(llama.token_bos()), special_text(llama.token_eos()))

    def _chat_template(self) -> str:
        template = self._llama.metadata.get("tokenizer.chat_template")
        if template:
            return template
        for turn_token, fallback in TEMPLATE_BY_TURN_TOKEN.items():
            if len(self._llama.tokenize(turn_token.encode(), add_bos=False, special=True)) == 1:
                return fallback
        return PLAIN_TEMPLATE

    @property
    def tokenizer(self) -> llguidance.LLTokenizer:
        """The model's vocabulary as llguidance sees it; built once (about 1 s)."""
        if self._tokenizer is None:
            vocab = self._llama._model.vocab
            n_vocab = self._llama.n_vocab()
            # Every end-of-generation token (e.g. Gemma's <end_of_turn>) may end a grammar.
            eog = [t for t in range(n_vocab) if llama_cpp.llama_vocab_is_eog(vocab, t)]
            with warnings.catch_warnings():  # llguidance calls a deprecated llama.cpp alias
                warnings.simplefilter("ignore", DeprecationWarning)
                self._tokenizer = llguidance.llamacpp.lltokenizer_from_vocab(
                    vocab, n_vocab=n_vocab, eos_token=eog or None
                )
        return self._tokenizer

    def matcher(self, grammar: str) -> llguidance.LLMatcher:
        """A fresh matcher for a Lark grammar; GrammarError if llguidance rejects it."""
        matcher = llguidance.LLMatcher(self.tokenizer, llguidance.LLMatcher.grammar_from_lark(grammar), log_level=0)
        if matcher.is_error():
            raise GrammarError(f"invalid grammar: {_one_line(matcher.get_error())}")
        return matcher

    def restart(self, system: str) -> None:
        """Make the next completions independent of every earlier call, as in a fresh process.

        The KV cache keeps only the tokens that every chat with this system message starts with,
        evaluated once in a batch of their own, so a resumed run samples the same text as the
        run it continues (a cache evaluated in other batches gives logits that differ in their
        last bits) without evaluating the system prompt again.
        """
        shared = self._shared_prefix(system)
        cached = self._llama.input_ids[: self._llama.n_tokens].tolist()
        if self._primed != shared or cached[: len(shared)] != shared:
            self._llama.reset()
            self._llama.eval(shared)
            self._primed = shared
        self._llama.n_tokens = len(shared)
        self._llama._requires_eval = True  # the logits on hand belong to a later token

    def _shared_prefix(self, system: str) -> list[int]:
        """The tokens every prompt with this system message begins with, short of the last (it may merge)."""
        one, other = (
            self._tokenize(self.render([{"role": "system", "content": system}, {"role": "user", "content": text}]))
            for text in ("a", "b")
        )
        return one[: max(_common_length(one, other) - 1, 0)]

    def render(self, messages: list[dict[str, str]]) -> str:
        """The chat as the model was trained to read it, ending where the assistant speaks."""
        return self._chat.render(messages)

    def _tokenize(self, text: str) -> list[int]:
        # Templates that write the BOS text themselves must not get a second BOS token.
        bos_text = self._chat.bos
        add_bos = not (bos_text and text.startswith(bos_text))
        return self._llama.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True)

    def complete(
        self,
        messages: list[dict[str, str]],
        *,
        prefix: str = "",
        grammar: str | None = None,
        temperature: float = 0.2,
        max_tokens: int = 1024,
        seed: int | None = None,
        avoid: str = "",
    ) -> Completion:
        """Continue the assistant's turn after `prefix` (given text, never generated).

        `grammar` constrains only the continuation. Generation stops when the grammar is
        complete, at an end-of-generation token, or after `max_tokens`. The longest token
        prefix shared with the previous call is reused from llama.cpp's KV cache, so
        prompts that start with the same fixed text are evaluated only from where they differ.
        The same `seed` repeats a sampled text only from the same cache state: a prompt
        evaluated in other batches gets logits that differ in their last bits.
        """
        started = time.perf_counter()
        prompt = self.render(messages) + prefix
        prompt_ids = self._tokenize(prompt)
        room = self._llama.n_ctx() - len(prompt_ids)
        if room <= 0:
            raise AstevoError(
                f"the prompt has {len(prompt_ids)} tokens, more than the model's context of "
                f"{self._llama.n_ctx()}: shorten the prompt or raise n_ctx"
            )
        matcher = self.matcher(grammar) if grammar is not None else None
        # Text the grammar forces at the start is evaluated with the prompt, in one batch.
        tokens = matcher.compute_ff_tokens() if matcher is not None else []
        if matcher is not None and not matcher.consume_tokens(tokens):
            raise GrammarError(f"grammar rejected its own forced text: {matcher.get_error()}")
        forced = self._llama.detokenize(tokens).decode("utf-8", errors="replace")
        avoid = avoid[len(forced) :] if avoid.startswith(forced) else ""  # forced text may already diverge
        self._llama.set_seed(self._seed if seed is None else seed)
        finish, first_token_at = self._extend(prompt_ids, tokens, matcher, temperature, min(max_tokens, room), avoid)
        finished = time.perf_counter()
        return Completion(
            text=self._continuation_text(tokens, matcher),
            prompt=prompt,
            n_prompt_tokens=len(prompt_ids),
            n_tokens=len(tokens),
            seconds=finished - started,
            prompt_seconds=(first_token_at or finished) - started,
            finish=finish,
        )

    def score(self, messages: list[dict[str, str]], options: Sequence[str], *, prefix: str = "") -> list[float]:
        """Each option's log-probability as the text after `prefix` (astevo.llm.scoring).

        The tokens every option's text shares with the prompt are evaluated once, reusing the KV cache as
        `complete` does; each option then costs one batch of its own tokens. Tokens may merge across the
        prompt's end, so each option is tokenized together with the prompt and scored from where they part.
        """
        if not options or not all(options):
            raise ValueError("scoring needs one or more options, none of them empty")
        prompt = self.render(messages) + prefix
        sequences = [self._tokenize(prompt + option) for option in options]
        longest = max(len(tokens) for tokens in sequences)
        if longest > self._llama.n_ctx():
            raise AstevoError(
                f"the prompt and an option take {longest} tokens, more than the model's context of "
                f"{self._llama.n_ctx()}: shorten the prompt or raise n_ctx"
            )
        shared = min(_common_length(sequences[0], tokens) for tokens in sequences)
        shared = min(shared, *(len(tokens) - 1 for tokens in sequences))  # every option keeps a token to score
        if shared < 1:
            raise ValueError("scoring needs a prompt")
        if longest - shared - 1 > self._llama.n_batch:  # each option but its last token is decoded in one batch
            raise ValueError(f"an option takes more than {self._llama.n_batch} tokens; scoring is for short options")
        llama = self._llama
        cached = llama.input_ids[: llama.n_tokens].tolist()
        llama.n_tokens = min(_common_length(cached, sequences[0][:shared]), shared - 1)  # the last one gives logits
        llama.eval(sequences[0][llama.n_tokens : shared])
        count = llama.n_vocab()
        first = _log_softmax(np.ctypeslib.as_array(llama._ctx.get_logits_ith(-1), shape=(count,)))
        scores = []
        try:
            for tokens in sequences:
                tail = tokens[shared:]
                total = float(first[tail[0]])
                if len(tail) > 1:  # the logits after each of its tokens but the last, in one batch
                    if not llama._ctx.kv_cache_seq_rm(-1, shared, -1):
                        raise AstevoError(f"{self.name} cannot drop part of its cache, which scoring needs; use "
                                          'answers = "written"')  # fmt: skip
                    llama._batch.set_batch(tail[:-1], n_past=shared, logits_all=True)
                    llama._ctx.decode(llama._batch)
                    rows = np.ctypeslib.as_array(llama._ctx.get_logits(), shape=(len(tail) - 1, count))
                    total += sum(float(_log_softmax(row)[token]) for row, token in zip(rows, tail[1:], strict=True))
                scores.append(total)
        finally:  # also after an error: the next completion must not read an option's logits or cache
            llama._ctx.kv_cache_seq_rm(-1, shared, -1)
            llama.n_tokens = shared
            llama._requires_eval = True
        return scores

    def _extend(
        self,
        prompt_ids: list[int],
        tokens: list[int],
        matcher: llguidance.LLMatcher | None,
        temperature: float,
        budget: int,
        avoid: str,
    ) -> tuple[Finish, float | None]:
        """Sample onto `tokens` until done; the reason, and when the first token came."""
        if matcher is not None and matcher.is_stopped():
            return "complete", None
        if len(tokens) >= budget:
            return "length", None
        processors = llama_cpp.LogitsProcessorList()
        if matcher is not None:
            processors.append(TokenMask(matcher, self._llama.n_vocab()))
        if avoid:
            processors.append(FirstTokenDiverges(self._banned_first(avoid)))
        vocab = self._llama._model.vocab
        first_token_at = None
        stream = self._llama.generate(
            prompt_ids + tokens, temp=temperature, logits_processor=processors or None, **SAMPLING
        )
        for token in stream:
            first_token_at = first_token_at or time.perf_counter()
            if llama_cpp.llama_vocab_is_eog(vocab, token):
                return "eos", first_token_at
            tokens.append(token)
            if matcher is not None:
                if not matcher.consume_token(token):
                    error = matcher.get_error()
                    raise GrammarError(f"sampled token {token} broke the grammar: {error}")
                if matcher.is_stopped():
                    return "complete", first_token_at
            if len(tokens) >= budget:
                break
        return "length", first_token_at

    def _banned_first(self, avoid: str) -> np.ndarray:
        """Token ids whose text would start repeating `avoid` (or is `avoid` followed by more)."""
        if self._pieces is None:
            count = self._llama.n_vocab()
            self._pieces = np.array(
                [self._llama.detokenize([t]).decode("utf-8", errors="replace") for t in range(count)], dtype=object
            )
        repeats = np.frompyfunc(
            lambda piece: bool(piece) and (avoid.startswith(piece) or piece.startswith(avoid)), 1, 1
        )
        return np.flatnonzero(repeats(self._pieces).astype(bool))

    def _continuation_text(self, tokens: list[int], matcher: llguidance.LLMatcher | None) -> str:
        if matcher is not None and matcher.is_accepting():
            kept = matcher.get_capture(KEEP_CAPTURE)
            if kept is not None:
                return kept.decode("utf-8", errors="replace")
        return self._llama.detokenize(tokens).decode("utf-8", errors="replace")


def _common_length(one: Sequence[int], other: Sequence[int]) -> int:
    return next((i for i, (x, y) in enumerate(zip(one, other, strict=False)) if x != y), min(len(one), len(other)))


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits.astype(np.float64) - float(np.max(logits))
    return shifted - math.log(float(np.exp(shifted).sum()))
