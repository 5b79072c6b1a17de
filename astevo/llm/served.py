"""A model served over an OpenAI-compatible API (llama.cpp's llama-server, llama-cpp-python's server, vLLM, Ollama).

astevo renders the chat itself and asks for a raw completion, since its prompts end inside the assistant's turn.
Each kind of server takes a grammar its own way, or not at all, and says so in its capabilities:
- llama-server and llama-cpp-python take a GBNF `grammar`; vLLM takes one under `structured_outputs`;
- Ollama takes none (its grammar-like option is a JSON schema), so it runs block scope only.
No server can forbid only the first token: OpenAI's `logit_bias` weighs every position of the answer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from astevo.errors import AstevoError
from astevo.llm.backend import Capabilities, Completion, Finish
from astevo.llm.chat_templates import TEMPLATE_BY_TURN_TOKEN, ChatRenderer
from astevo.llm.gbnf import lark_to_gbnf
from astevo.llm.identity import ModelIdentity, served_identity
from astevo.llm.server_client import ServerAnswerError, ServerClient
from astevo.settings import ServerSettings

CHATML = TEMPLATE_BY_TURN_TOKEN["<|im_start|>"]
# What /v1/models says of a model that stays the same across restarts of the server (not `created`).
STABLE_REPORT_KEYS = ("id", "owned_by", "root", "meta")


@dataclass(frozen=True)
class ServerKind:
    """One family of servers: how it is recognised, where a grammar goes, and what it can do."""

    name: str
    grammar_field: str | None  # None: the server cannot constrain output
    prefix_cache: bool
    raw_route: str = "/completions"


LLAMA_SERVER = ServerKind("llama.cpp llama-server", "grammar", prefix_cache=True)
LLAMA_CPP_PYTHON = ServerKind("llama-cpp-python", "grammar", prefix_cache=True)
VLLM = ServerKind("vLLM", "structured_outputs", prefix_cache=True)
OLLAMA = ServerKind("Ollama", None, prefix_cache=True, raw_route="/api/generate")
OTHER = ServerKind("an OpenAI-compatible server", None, prefix_cache=False)
KIND_BY_OWNER = {"llamacpp": LLAMA_SERVER, "me": LLAMA_CPP_PYTHON, "vllm": VLLM}


class ServedGenerator:
    """A Generator whose model runs in a server; every request carries the whole prompt, so proposals stay
    independent of each other however many evaluation slots or Ray workers share the server."""

    def __init__(self, settings: ServerSettings, model: str | None, client: ServerClient | None = None) -> None:
        if settings.url is None:
            raise ValueError("a served model needs server.url")
        self.client = client or ServerClient(
            settings.url, timeout=settings.timeout, retries=settings.retries, api_key=settings.api_key
        )
        listed = self._listed_models()
        entry = _chosen_entry(listed, model, self.client.url)
        self.model = str(entry["id"])
        self.kind = self._kind(entry)
        self._props = self.client.get("/props", under_root=True) if self.kind is LLAMA_SERVER else {}
        self._chat = ChatRenderer(
            self._props.get("chat_template") or CHATML,
            str(self._props.get("bos_token", "")),
            str(self._props.get("eos_token", "")),
        )
        report = {key: entry[key] for key in STABLE_REPORT_KEYS if key in entry}
        self.identity: ModelIdentity = served_identity(self.client.url, model or self.model, report)
        self.capabilities = Capabilities(
            grammar=self.kind.grammar_field is not None,
            forbid_first_token=False,
            prefix_cache=self.kind.prefix_cache,
            body_grammar=False,
        )

    @property
    def name(self) -> str:
        return self.model

    def _listed_models(self) -> list[dict[str, Any]]:
        listed = self.client.get("/models")
        data = listed.get("data") if isinstance(listed, dict) else None
        if not isinstance(data, list) or not all(isinstance(item, dict) and "id" in item for item in data):
            raise ServerAnswerError(f"{self.client.url}/models did not list models as the OpenAI API does")
        return data

    def _kind(self, entry: dict[str, Any]) -> ServerKind:
        known = KIND_BY_OWNER.get(str(entry.get("owned_by")))
        if known is not None:
            return known
        try:
            ollama = self.client.get("/api/version", under_root=True, retry=False)
        except AstevoError:  # no such route: not Ollama
            return OTHER
        return OLLAMA if isinstance(ollama, dict) and "version" in ollama else OTHER

    def restart(self, system: str) -> None:
        """Nothing to do: each request is independent, and the server keeps its own prompt cache."""

    def render(self, messages: list[dict[str, str]]) -> str:
        return self._chat.render(messages)

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
        """One raw completion of the rendered chat plus `prefix`; `avoid` cannot be sent (see the module)."""
        started = time.perf_counter()
        prompt = self.render(messages) + prefix
        body = self._request(prompt, grammar, temperature, max_tokens, seed)
        answer = self.client.post(self.kind.raw_route, body, under_root=self.kind is OLLAMA)
        text, finish, prompt_tokens, tokens = _read(answer, constrained=grammar is not None, where=self.client.url)
        finished = time.perf_counter()
        timings = answer.get("timings")
        prompt_seconds = timings["prompt_ms"] / 1000 if isinstance(timings, dict) and "prompt_ms" in timings else 0.0
        return Completion(text, prompt, prompt_tokens, tokens, finished - started, prompt_seconds, finish)

    def _request(
        self, prompt: str, grammar: str | None, temperature: float, max_tokens: int, seed: int | None
    ) -> dict[str, Any]:
        if grammar is not None and self.kind.grammar_field is None:
            raise ServerAnswerError(f"{self.kind.name} at {self.client.url} cannot constrain output by a grammar")
        if self.kind is OLLAMA:
            options: dict[str, Any] = {
                "temperature": temperature,
                "num_predict": max_tokens,
                "top_k": 40,
                "top_p": 0.95,
            }
            if seed is not None:
                options["seed"] = seed
            return {"model": self.model, "prompt": prompt, "raw": True, "stream": False, "options": options}
        body: dict[str, Any] = {
            "model": self.model,
            "prompt": prompt,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "top_p": 0.95,
            "top_k": 40,
            "min_p": 0.05,
            "repeat_penalty": 1.0,
            "stream": False,
        }
        if seed is not None:
            body["seed"] = seed
        if self.kind is LLAMA_SERVER:
            body["cache_prompt"] = True
        if grammar is not None:
            gbnf = lark_to_gbnf(grammar)
            field = self.kind.grammar_field or "grammar"
            body[field] = gbnf if field == "grammar" else {"grammar": gbnf}
        return body


def _chosen_entry(listed: list[dict[str, Any]], model: str | None, url: str) -> dict[str, Any]:
    """The listed model asked for by name (a server may serve several), else the only one it serves."""
    if model is not None:
        for entry in listed:
            if entry["id"] == model:
                return entry
    elif len(listed) == 1:
        return listed[0]
    names = ", ".join(str(entry["id"]) for entry in listed) or "none"
    wanted = f"does not serve {model!r}" if model is not None else "serves several models"
    raise ServerAnswerError(f"the server at {url} {wanted}; pass --model with one of: {names}")


def _read(answer: Any, *, constrained: bool, where: str) -> tuple[str, Finish, int, int]:
    """Text, finish reason and token counts from an OpenAI completion or an Ollama generation."""
    try:
        if "choices" in answer:
            choice = answer["choices"][0]
            text, reason = choice["text"], choice.get("finish_reason")
            usage = answer.get("usage") or {}
            prompt_tokens, tokens = usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)
        else:
            text, reason = answer["response"], answer.get("done_reason")
            prompt_tokens, tokens = answer.get("prompt_eval_count", 0), answer.get("eval_count", 0)
    except (KeyError, IndexError, TypeError):
        shown = " ".join(str(answer).split())[:120]
        raise ServerAnswerError(f"the model server at {where} answered without a completion: {shown}") from None
    if not isinstance(text, str):
        raise ServerAnswerError(f"the model server at {where} answered a completion that is not text")
    # Under a grammar a server ends generation only once the grammar is complete (an end token is allowed then).
    finish: Finish = "length" if reason == "length" else "complete" if constrained else "eos"
    return text, finish, int(prompt_tokens), int(tokens)
