"""GE's LLM mutation of one block (with Evolution of Thought): ask, judge the answer, retry with the reason."""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Callable, Sequence
from collections.abc import Set as AbstractSet

from astevo.code.blocks import Block, split_header
from astevo.code.canonical import canonical_hash
from astevo.evaluation.base import Size
from astevo.llm.backend import Completion
from astevo.variation import prompts
from astevo.variation.answerers import Answerer
from astevo.variation.answers import RejectedAnswer, block_from_answer
from astevo.variation.base import Check, Exchange, Proposal
from astevo.variation.edit_outcomes import EditOutcome
from astevo.variation.edit_sites import EditSite, sites
from astevo.variation.intents import INTENT_SPOTS, SIZE_STEP, SIZES, SMALLER
from astevo.variation.spot_options import keyword_texts
from astevo.variation.structural import SizeOption, SizeOptions, SizeOptionsSource, is_size_kind

TEMPERATURES = {"mutate": (0.05, 0.4), "eot": (0.05, 0.4)}
MAX_NEW_TOKENS = (600, 1400)
MAX_SIZE_OPTIONS = 12  # size edits listed in one prompt
Scope = str  # "line": continue from one spot of the block; "block": write the whole body


class BlockRewriter:
    """Asks for a new version of a block until one is accepted or the retries run out.

    With `DrawnAnswers` it is the random baseline: every spot and size edit is chosen as the model's would be,
    and what is written there is drawn uniformly from the spot's options.
    """

    def __init__(
        self,
        answerer: Answerer,
        rng: random.Random,
        *,
        grammar: Callable[[Block], str | None] | None = None,
        check: Check | None = None,
        max_repairs: int = 3,
        scope: Scope = "line",
        objective: str | None = None,
    ) -> None:
        self.answerer, self.rng, self.grammar, self.check = answerer, rng, grammar, check
        self.max_repairs = max_repairs
        self.scope = scope
        self.objective = objective  # what a version is judged by, told to the model (prompts.training_objective)
        self.proposed: set[str] = set()  # canonical hashes of accepted answers: a rewriter never repeats one

    def mutate(
        self,
        block: Block,
        file_source: str,
        intent: str,
        persona: str | None = None,
        exemplar: prompts.Exemplar | None = None,
        sizes: SizeOptionsSource | None = None,
        outcomes: Sequence[EditOutcome] = (),
    ) -> Proposal:
        operator = "eot" if exemplar else "mutate"
        request = prompts.mutation_prompt(block.name, block.source, intent, persona, exemplar, self.objective, outcomes)
        spots = _usable_sites(file_source, sites(block.source), self.answerer)
        if self.scope == "line" and (any(spots.values()) or (sizes is not None and sizes().options)):
            first = _exemplar_group(exemplar, spots)
            return self._propose_edits(block, file_source, operator, intent, persona, request, spots, sizes, first)
        if not self.answerer.writes_bodies:
            return Proposal(block.name, operator, intent, persona, None)
        return self._propose(block, operator, intent, persona, request, avoid=(block.source,))

    def _propose_edits(
        self,
        block: Block,
        file_source: str,
        operator: str,
        intent: str,
        persona: str | None,
        request: str,
        spots: dict[str, list[EditSite]],
        sizes: SizeOptionsSource | None,
        first: str | None,
    ) -> Proposal:
        """Continue the block from one spot at a time, or pick a size edit; a rejected change moves on. The
        intent orders the kinds of spot, except that an exemplar's kind of edit goes first when the intent edits
        that kind: Evolution of Thought asks for the same principle, and an elite's computation is copied at a
        computation's spot (a "hyperparameters" intent still changes values only)."""
        offered = _SizeMenu(sizes, intent, self.proposed | (self.check.known if self.check is not None else set()))
        ordered = sorted(INTENT_SPOTS[intent], key=lambda g: g != first)
        usable = [g for g in ordered if spots.get(g) or (g == SIZES and offered.available)]
        order = usable or [g for g in spots if spots[g]] or ([SIZES] if offered.available else [])
        exchanges: list[Exchange] = []
        note = ""
        tried: set[EditSite] = set()
        for attempt in range(1 + self.max_repairs if order else 0):
            group = order[0] if attempt == 0 or len(order) == 1 else self.rng.choice(order)
            if group == SIZES and not offered.options:  # none fits the intent, or every one was tried
                order = [g for g in order if g != SIZES] or [g for g in spots if spots[g]]
                if not order:
                    break
                group = order[0]
            purpose = "propose" if attempt == 0 else "repair"
            if group == SIZES:
                source, exchange = self._ask_size(block, request + note, offered, operator, intent, purpose)
            else:
                fresh = [spot for spot in spots[group] if spot not in tried] or spots[group]
                site, choosing = self._choose_site(block, group, fresh, request + note, operator)
                tried.add(site)
                source, exchange = self._ask_spot(block, file_source, site, request + note, operator, intent, purpose)
                exchange = dataclasses.replace(exchange, seconds=exchange.seconds + choosing)
            measuring = offered.take_seconds()  # the size edits' measurement is part of proposing
            exchanges.append(
                dataclasses.replace(exchange, edit=exchange.edit or group, seconds=exchange.seconds + measuring)
            )
            if source is not None:
                return Proposal(block.name, operator, intent, persona, source, tuple(exchanges))
            note = "\n" + prompts.retry_prompt(exchange.verdict or "")
        if not exchanges and self.answerer.writes_bodies:  # no spot and no size edit after all: the whole body
            return self._propose(block, operator, intent, persona, request, avoid=(block.source,))
        return Proposal(block.name, operator, intent, persona, None, tuple(exchanges))

    def _choose_site(
        self, block: Block, group: str, candidates: list[EditSite], request: str, operator: str
    ) -> tuple[EditSite, float]:
        """Where the edit goes, with the seconds it took to choose. The answerer picks the line among those where
        the group's edits fit, so the model's knowledge of the block decides where as well as what; astevo then
        draws one of that line's spots. An answer that is not a listed line leaves the choice to the draw."""
        lines: dict[str, list[EditSite]] = {}
        for site in candidates:
            lines.setdefault(_line(block, site).strip(), []).append(site)
        if len(lines) < 2:
            return self.rng.choice(candidates), 0.0
        listed = list(lines)
        self.rng.shuffle(listed)  # a small model favours the first lines of a list, as with the size edits
        messages = [
            {"role": "system", "content": prompts.system_prompt()},
            {"role": "user", "content": request + prompts.line_choice_prompt(group, listed)},
        ]
        low, high = TEMPERATURES[operator]
        temperature, seed = self.rng.uniform(low, high), self.rng.randrange(2**31)
        completion = self.answerer.pick(messages, listed, temperature, seed)
        chosen = lines.get(completion.text.strip()) if completion.finish == "complete" else None
        return self.rng.choice(chosen or candidates), completion.seconds

    def _ask_spot(
        self, block: Block, file_source: str, site: EditSite, request: str, operator: str, intent: str, purpose: str
    ) -> tuple[str | None, Exchange]:
        messages = [
            {"role": "system", "content": prompts.system_prompt()},
            {"role": "user", "content": request + prompts.spot_prompt(site.kind, _line(block, site))},
        ]
        low, high = TEMPERATURES[operator]
        temperature, seed = self.rng.uniform(low, high), self.rng.randrange(2**31)
        completion = self.answerer.at_spot(messages, file_source, site, _prefix(block, site), temperature, seed)
        started = time.perf_counter()
        source, verdict, size = self._judge_edit(block, site, completion, intent)
        return source, _exchange(purpose, completion, temperature, seed, started, verdict, size=size)

    def _ask_size(
        self, block: Block, request: str, offered: _SizeMenu, operator: str, intent: str, purpose: str
    ) -> tuple[str | None, Exchange]:
        """The model picks one of the measured size edits; astevo applies it as planned. A small model favours
        some words and the first lines of a list, so it is shown one kind of edit (width, depth, one size),
        drawn at random, as a random sample in random order."""
        kind = self.rng.choice(sorted({option.kind for option in offered.options}))
        listed = [option for option in offered.options if option.kind == kind]
        options = {option.label: option for option in self.rng.sample(listed, min(MAX_SIZE_OPTIONS, len(listed)))}
        messages = [
            {"role": "system", "content": prompts.system_prompt()},
            {
                "role": "user",
                "content": request
                + prompts.size_prompt(offered.parent_parameters, [(o.label, o.parameters) for o in options.values()]),
            },
        ]
        low, high = TEMPERATURES[operator]
        temperature, seed = self.rng.uniform(low, high), self.rng.randrange(2**31)
        completion = self.answerer.pick(messages, list(options), temperature, seed)
        started = time.perf_counter()
        chosen = options.get(completion.text.strip())
        if completion.finish != "complete" or chosen is None:
            unlisted = "the answer was not one of the listed changes"
            return None, _exchange(purpose, completion, temperature, seed, started, unlisted, size=None)
        offered.tried(chosen)
        source, verdict, size = self._accept(block, chosen.source, {canonical_hash(block.source)}, intent)
        return source, _exchange(purpose, completion, temperature, seed, started, verdict, size=size, edit=chosen.kind)

    def _judge_edit(self, block: Block, site: EditSite, completion: Completion, intent: str) -> Judged:
        if completion.finish != "complete":
            return None, "the new line was not finished", None
        lines = block.source.splitlines(keepends=True)
        index = site.statement.line - 1
        written = (
            site.statement.indent
            + ("" if site.kind == "insert" else site.statement.lead + site.kept_value)
            + completion.text
        )
        kept = lines[index : index + 1] if site.kind == "insert" else []
        try:
            source = block_from_answer(block, "", "".join(lines[:index] + [written] + kept + lines[index + 1 :]))
        except RejectedAnswer as error:
            return None, str(error), None
        return self._accept(block, source, {canonical_hash(block.source)}, intent)

    def _propose(
        self,
        block: Block,
        operator: str,
        intent: str,
        persona: str | None,
        request: str,
        avoid: tuple[str, ...],
    ) -> Proposal:
        header, _ = split_header(block.source)
        grammar = self.grammar(block) if self.grammar else None
        messages = [{"role": "system", "content": prompts.system_prompt()}, {"role": "user", "content": request}]
        low, high = TEMPERATURES[operator]
        exchanges: list[Exchange] = []
        forbidden = {canonical_hash(source) for source in avoid}
        purpose = "propose"
        for _ in range(1 + self.max_repairs):
            temperature = self.rng.uniform(low, high)
            seed = self.rng.randrange(2**31)
            completion = self.answerer.body(
                messages, header, grammar, temperature, self.rng.randint(*MAX_NEW_TOKENS), seed
            )
            started = time.perf_counter()
            source, verdict, size = self._judge(block, header, completion.text, forbidden, intent)
            exchanges.append(
                _exchange(purpose, completion, temperature, seed, started, verdict, size=size, edit="block")
            )
            if verdict is None:
                return Proposal(block.name, operator, intent, persona, source, tuple(exchanges))
            messages = [
                *messages,
                {"role": "assistant", "content": header + completion.text},
                {"role": "user", "content": prompts.repair_prompt(block.name, verdict)},
            ]
            purpose = "repair"
        return Proposal(block.name, operator, intent, persona, None, tuple(exchanges))

    def _judge(self, block: Block, header: str, answer: str, forbidden: set[str], intent: str) -> Judged:
        try:
            source = block_from_answer(block, header, answer)
        except RejectedAnswer as error:
            return None, str(error), None
        return self._accept(block, source, forbidden, intent)

    def _accept(self, block: Block, source: str, forbidden: set[str], intent: str) -> Judged:
        """The fast checks, then the intent's own demand: a "fewer parameters" answer must shrink the model."""
        code_hash = canonical_hash(source)
        if code_hash in forbidden:
            return None, f"it is a copy of the version you were shown; change {block.name} as asked", None
        if code_hash in self.proposed or (self.check is not None and code_hash in self.check.known):
            return None, "it repeats an earlier proposal; make a different change", None
        size = None
        if self.check is not None:
            reason = self.check(source)
            if reason:
                return None, reason, None
            size = self.check.size(source)
            parent = self.check.parent_size() if intent == SMALLER and size is not None else None
            if size is not None and parent is not None:
                if size.parameters >= parent.parameters and size.macs >= parent.macs:
                    return None, prompts.not_smaller(size.parameters, size.macs, parent.parameters, parent.macs), size
        self.proposed.add(code_hash)
        return source, None, size


Judged = tuple["str | None", "str | None", "Size | None"]  # the accepted block, why not, the size it measured


class _SizeMenu:
    """The size edits one proposal may offer: measured when first needed, narrowed to the intent's direction,
    never offered twice, and never one that gives a version the run already holds."""

    def __init__(self, source: SizeOptionsSource | None, intent: str, known: AbstractSet[str]) -> None:
        self.source, self.intent, self.known = source, intent, known
        self._measured: SizeOptions | None = None
        self._tried: set[str] = set()
        self._seconds = 0.0

    @property
    def available(self) -> bool:
        return self.source is not None

    def _sizes(self) -> SizeOptions:
        if self._measured is None:
            started = time.perf_counter()
            self._measured = self.source() if self.source is not None else SizeOptions(0, ())
            self._seconds += time.perf_counter() - started
        return self._measured

    def take_seconds(self) -> float:
        """Seconds spent measuring since last asked."""
        seconds, self._seconds = self._seconds, 0.0
        return seconds

    @property
    def parent_parameters(self) -> int:
        return self._sizes().parent_parameters

    @property
    def options(self) -> list[SizeOption]:
        """Untried options in the intent's direction; those that move the size by a real step, when any do."""
        sizes = self._sizes()
        parent = sizes.parent_parameters
        fitting = [
            option
            for option in sizes.options
            if option.label not in self._tried
            and (self.intent != SMALLER or option.parameters < parent)
            and canonical_hash(option.source) not in self.known
        ]
        real = [option for option in fitting if abs(option.parameters - parent) >= SIZE_STEP * parent]
        return real or fitting

    def tried(self, option: SizeOption) -> None:
        self._tried.add(option.label)


def _exchange(
    purpose: str,
    completion: Completion,
    temperature: float,
    seed: int,
    judged_from: float,
    verdict: str | None,
    *,
    size: Size | None,
    edit: str | None = None,
) -> Exchange:
    """The record of one call; its time includes judging the answer, which started at `judged_from`."""
    seconds = completion.seconds + time.perf_counter() - judged_from
    return Exchange(
        purpose,
        completion.prompt,
        completion.text,
        temperature,
        seed,
        completion.n_tokens,
        seconds,
        completion.finish,
        verdict,
        edit=edit,
        parameters=size.parameters if size else None,
        macs=size.macs if size else None,
    )


def _line(block: Block, site: EditSite) -> str:
    return block.source.splitlines()[site.statement.line - 1]


def _prefix(block: Block, site: EditSite) -> str:
    """The block's text up to the spot, given to the model as already written."""
    before = "".join(block.source.splitlines(keepends=True)[: site.statement.line - 1])
    statement = site.statement
    if site.kind == "insert":
        return before + statement.indent
    return before + statement.indent + statement.lead + site.kept_value


def _exemplar_group(exemplar: prompts.Exemplar | None, spots: dict[str, list[EditSite]]) -> str | None:
    """The kind of spot an exemplar's change was made at: its spot group, or the size edits for a size kind; none
    for a whole new body or an unrecorded kind."""
    if exemplar is None or exemplar.edit is None:
        return None
    if exemplar.edit in spots:
        return exemplar.edit
    return SIZES if is_size_kind(exemplar.edit) else None


def _usable_sites(file_source: str, spots: dict[str, list[EditSite]], answerer: Answerer) -> dict[str, list[EditSite]]:
    """The spots without calls that take no further keyword, and that the answerer can answer."""
    return {
        group: [
            site
            for site in found
            if (site.kind != "append" or keyword_texts(file_source, site)) and answerer.can_answer(file_source, site)
        ]
        for group, found in spots.items()
    }
