"""What an argument added to a call may say: a keyword the callee takes and has not been given, with a value
that suits it.

A small model that adds a positional argument changes the meaning of the next parameter
(`nn.BatchNorm2d(cout, stride)` sets eps to the stride). Added arguments are therefore
always passed by keyword, and their values are drawn from the parameter's own default:
the other truth value for a flag, nearby multiples for a number, kept in a sane range for
parameters whose range is known.
"""

from __future__ import annotations

import ast
import inspect
import math
from collections.abc import Iterable

from astevo.code.syntax import parse_expression, signature
from astevo.variation.vocabulary import callee_object, callee_parameters, constructor_of

# Open ranges of parameters whose meaning is fixed across torch: values outside them are nonsense.
RANGES = {
    "eps": (1e-9, 1e-2),
    "momentum": (0.0, 1.0),
    "p": (0.0, 0.9),
    "negative_slope": (0.0, 0.5),
    "alpha": (0.0, 10.0),
    "beta": (0.0, 100.0),
    "threshold": (0.0, 100.0),
    "lambd": (0.0, 10.0),
}
FACTORS = (0.1, 0.3, 0.5, 2.0, 3.0, 10.0)
# Keywords that never make a model better: placement, or outputs the caller does not expect.
EXCLUDED = frozenset({"inplace", "return_indices", "device", "dtype"})


def keyword_choices(callee: str, file_source: str, call_text: str) -> list[str]:
    """`name=value` texts that may be appended to the call `call_text` (its source, closed)."""
    defaults = _defaults(callee, file_source)
    if not defaults:
        return []
    try:
        call = parse_expression(call_text)
    except SyntaxError:
        return []
    if not isinstance(call, ast.Call):
        return []
    names = list(defaults)
    given = {keyword.arg for keyword in call.keywords} | set(_positional_names(callee, file_source)[: len(call.args)])
    return [
        f"{name}={value}"
        for name in names
        if name not in given and name not in EXCLUDED
        for value in values_near(name, defaults[name])
    ]


def _defaults(callee: str, file_source: str) -> dict[str, object]:
    """Keyword parameters with a literal default, for a torch callable or a class or function of the file."""
    target = callee_object(callee)
    if target is not None:
        try:
            parameters = signature(target).parameters.values()
        except (TypeError, ValueError):
            return {}
        kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        return {
            p.name: p.default
            for p in parameters
            if p.kind in kinds and p.default is not inspect.Parameter.empty and not p.name.startswith("_")
        }
    function = constructor_of(callee, file_source)
    if function is None:
        return {}
    arguments = function.args
    ordered = [*arguments.posonlyargs, *arguments.args]
    positional = ordered[len(ordered) - len(arguments.defaults) :]
    pairs = list(zip(positional, arguments.defaults, strict=True)) + [
        (a, d) for a, d in zip(arguments.kwonlyargs, arguments.kw_defaults, strict=True) if d is not None
    ]
    found: dict[str, object] = {}
    for argument, default in pairs:
        try:
            found[argument.arg] = ast.literal_eval(default)
        except ValueError:
            continue
    return found


def _positional_names(callee: str, file_source: str) -> list[str]:
    return list(callee_parameters(callee, file_source) or ())


def values_near(name: str, default: object) -> Iterable[str]:
    """Texts of other values for parameter `name` whose value (or default) is `default`: a numeric range per
    parameter, as added keywords and the random baseline's rewritten arguments draw them."""
    if isinstance(default, bool):
        return [str(not default)]
    if isinstance(default, int) and name not in RANGES:
        return [str(v) for v in sorted({default - 1, default + 1, default * 2}) if v >= 1 and v != default]
    if isinstance(default, (int, float)) and not isinstance(default, bool):
        low, high = RANGES.get(name, (0.0, 1.0 if 0 < default <= 1 else math.inf))
        base = float(default) if default else (high if math.isfinite(high) else 1.0) / 10
        values = {base * factor for factor in FACTORS} | ({base} if not default else set())
        return [f"{v:g}" for v in sorted(values) if low < v < high and v != default]
    return []
