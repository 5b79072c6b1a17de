"""The static safety gate: each rejected construct with its message, and what must pass."""

from __future__ import annotations

import builtins
import importlib
import json
import subprocess
import sys
import textwrap
import types
import warnings
from pathlib import Path

import pytest
import torch

from astevo.code.imports import ALLOWED_IMPORTS
from astevo.evaluation.gate.safety import Violation, check_source

REPO = Path(__file__).resolve().parents[1]
SEED = REPO / "seeds" / "exquisitenetv2.py"


def messages(source: str) -> list[str]:
    return [violation.message for violation in check_source(textwrap.dedent(source))]


def in_function(body: str) -> str:
    """`body` as line 5 of a function in a file that imports the usual modules."""
    return (
        "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n"
        f"def probe(x, self, name, model):\n    {body}\n"
    )


@pytest.mark.parametrize(
    "module",
    [
        "os",
        "sys",
        "subprocess",
        "socket",
        "ctypes",
        "pickle",
        "importlib",
        "signal",
        "threading",
        "multiprocessing",
        "shutil",
        "pathlib",
        "builtins",
        "io",
        "os.path",
        "numpy",
        "torchvision",
        "torch.utils.cpp_extension",
        "torch.hub",
    ],
)
def test_imports_outside_the_allow_list_are_rejected(module: str) -> None:
    assert messages(f"import {module}\n") == [f"line 1: import of '{module}' is not allowed"]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("from os import path\n", "line 1: import of 'os' is not allowed"),
        ("from torch.nn import *\n", "line 1: star import from 'torch.nn' is not allowed"),
        ("from . import sibling\n", "line 1: relative imports are not allowed"),
        ("from torch import load\n", "line 1: import of 'torch.load' is not allowed"),
        ("from torch import hub\n", "line 1: import of 'torch.hub' is not allowed"),
        ("from torch import _C\n", "line 1: import of 'torch._C' is not allowed (private attribute of 'torch')"),
        ("from torch.serialization import os\n", "line 1: import of 'torch.serialization' is not allowed"),
        ("def f():\n    import os\n", "line 2: import of 'os' is not allowed"),
    ],
)
def test_from_imports_and_nested_imports(source: str, message: str) -> None:
    found = messages(source)
    assert len(found) == 1 and found[0].startswith(message)


@pytest.mark.parametrize(
    "name",
    [
        "eval",
        "exec",
        "compile",
        "open",
        "__import__",
        "globals",
        "locals",
        "vars",
        "input",
        "breakpoint",
        "exit",
        "quit",
        "memoryview",
        "help",
        "__builtins__",
    ],
)
def test_dangerous_builtins_are_rejected(name: str) -> None:
    assert messages(in_function(f"return {name}(x)")) == [f"line 5: name '{name}' is not allowed"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("return getattr(x, name)", "getattr with a non-constant attribute name is not allowed"),
        ("setattr(self, name, x)", "setattr with a non-constant attribute name is not allowed"),
        ("delattr(self, name)", "delattr with a non-constant attribute name is not allowed"),
        ("f = getattr", "'getattr' is allowed only as a call with a constant attribute name"),
        ("return getattr(x, '__class__')", "getattr of '__class__' is not allowed"),
        ("return getattr(torch, 'load')", "getattr of 'load' is not allowed"),
        ("setattr(torch, 'relu', x)", "setattr on 'torch' is not allowed (it would change a shared module)"),
    ],
)
def test_attribute_builtins_need_constant_safe_names(body: str, message: str) -> None:
    found = messages(in_function(body))
    assert len(found) == 1 and found[0].startswith(f"line 5: {message}")


@pytest.mark.parametrize(
    ("expression", "shown"),
    [
        ("torch.load('w.pt')", "torch.load"),
        ("torch.save(model, 'w.pt')", "torch.save"),
        ("torch.hub.load('a', 'b')", "torch.hub"),
        ("torch.jit.load('m.pt')", "torch.jit.load"),
        ("torch.utils.cpp_extension.load_inline('m', '')", "torch.utils.cpp_extension"),
        ("torch.classes.load_library('x.so')", "torch.classes"),
        ("torch.ops.load_library('x.so')", "torch.ops"),
        ("torch.ops.aten.relu(x)", "torch.ops"),
        ("torch.set_num_threads(8)", "torch.set_num_threads"),
        ("torch.distributed.init_process_group('gloo')", "torch.distributed"),
        ("torch._C._get_tracing_state()", "torch._C"),
        ("torch.serialization.os.system('id')", "torch.serialization.os"),
        ("torch.multiprocessing.Pool(2)", "torch.multiprocessing"),
        ("torch.UntypedStorage.from_file('f', True, 8)", "torch.UntypedStorage.from_file"),
        ("model.compile()", "model.compile"),
        ("x.numpy().tofile('f')", "x.numpy().tofile"),
        ("torch.functional.np.load('f')", "torch.functional.np"),
        ("torch.onnx.export(model, x, 'm.onnx')", "torch.onnx"),
        ("torch.fx.experimental.symbolic_shapes.S('1')", "torch.fx.experimental"),
    ],
)
def test_dangerous_torch_and_module_attributes_are_rejected(expression: str, shown: str) -> None:
    found = messages(in_function(f"return {expression}"))
    assert len(found) == 1 and found[0].startswith(f"line 5: '{shown}' is not allowed (")


@pytest.mark.parametrize(
    "attribute",
    [
        "__class__",
        "__subclasses__",
        "__globals__",
        "__builtins__",
        "__code__",
        "__closure__",
        "__dict__",
        "__mro__",
        "__bases__",
        "__base__",
        "__getattribute__",
        "__reduce__",
        "__reduce_ex__",
        "__loader__",
        "__spec__",
        "__self__",
        "__func__",
        "__defaults__",
    ],
)
def test_dunder_escapes_are_rejected(attribute: str) -> None:
    assert messages(in_function(f"return x.{attribute}")) == [
        f"line 5: 'x.{attribute}' is not allowed (dunder attribute escapes the object model)"
    ]


@pytest.mark.parametrize("attribute", ["f_globals", "f_locals", "f_back", "gi_frame", "tb_frame", "cr_frame"])
def test_frame_introspection_is_rejected(attribute: str) -> None:
    assert messages(in_function(f"return x.{attribute}")) == [
        f"line 5: 'x.{attribute}' is not allowed (introspection attribute)"
    ]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            "import operator\ndef f(x):\n    return operator.attrgetter('__class__')(x)\n",
            "line 3: 'operator.attrgetter' is not allowed",
        ),
        (
            "import typing\ndef f(g):\n    return typing.get_type_hints(g)\n",
            "line 3: 'typing.get_type_hints' is not allowed",
        ),
        ("import dataclasses\ndef f():\n    return dataclasses.sys\n", "line 3: 'dataclasses.sys' is not allowed"),
        (
            "def f(x):\n    return '{0.__class__.__mro__}'.format(x)\n",
            "line 2: format strings that look up dunder attributes are not allowed",
        ),
    ],
)
def test_string_and_stdlib_tricks_are_rejected(source: str, message: str) -> None:
    found = messages(source)
    assert len(found) == 1 and found[0].startswith(message)


@pytest.mark.parametrize(
    ("body", "owner"),
    [
        ("F.relu = x", "F"),
        ("torch.Tensor.eq = x", "torch.Tensor"),
        ("nn.Module.forward += x", "nn.Module"),
        ("del nn.Module.forward", "nn.Module"),
    ],
)
def test_patching_shared_modules_is_rejected(body: str, owner: str) -> None:
    assert messages(in_function(body)) == [
        f"line 5: assignment into '{owner}' is not allowed (it would change a shared module)"
    ]


def test_global_is_rejected_and_nonlocal_allowed() -> None:
    source = """\
    def outer():
        count = 0
        def inner():
            nonlocal count
            global total
            count += 1
        return inner
    """
    assert messages(source) == ["line 5: 'global' statements are not allowed"]


TOP_LEVEL_TAIL = "is not allowed at {level} level; only definitions, imports, docstrings and constant assignments are"


@pytest.mark.parametrize(
    ("statement", "kind"),
    [
        ("print('hello')", "a call"),
        ("x = torch.zeros(3)", "an assignment of a non-constant value"),
        ("act = nn.ReLU", "an assignment of a non-constant value"),
        ("size: int = len('abc')", "an assignment of a non-constant value"),
        ("for i in range(3):\n    pass", "a for loop"),
        ("while True:\n    pass", "a while loop"),
        ("if True:\n    pass", "an if statement"),
        ("with torch.no_grad():\n    pass", "a with statement"),
        ("try:\n    pass\nexcept Exception:\n    pass", "a try statement"),
        ("x + 1", "an expression"),
        ("assert True", "an assert"),
    ],
)
def test_module_level_work_is_rejected(statement: str, kind: str) -> None:
    source = f"import torch\nimport torch.nn as nn\n{statement}\n"
    assert messages(source) == [f"line 3: {kind} {TOP_LEVEL_TAIL.format(level='module')}"]


def test_class_level_work_is_rejected_with_its_line() -> None:
    source = """\
    import torch.nn as nn
    class Block(nn.Module):
        expansion = 4
        act = nn.ReLU()
        for i in range(2):
            pass
    """
    assert messages(source) == [
        f"line 4: an assignment of a non-constant value {TOP_LEVEL_TAIL.format(level='class')}",
        f"line 5: a for loop {TOP_LEVEL_TAIL.format(level='class')}",
    ]


def test_main_guard_is_rejected() -> None:
    found = messages("if __name__ == '__main__':\n    pass\n")
    assert found[0] == f"line 1: an if statement {TOP_LEVEL_TAIL.format(level='module')}"
    assert found[1] == "line 1: name '__name__' is not allowed"


def test_syntax_error_is_one_violation() -> None:
    violations = check_source("def broken(:\n    pass\n")
    assert len(violations) == 1
    assert violations[0].line == 1 and violations[0].message.startswith("line 1: syntax error: ")


def test_violation_carries_position_and_prints_its_message() -> None:
    (violation,) = check_source("import math\n\ndef f():\n    return  eval('1')\n")
    assert violation == Violation(4, 12, "line 4: name 'eval' is not allowed")
    assert str(violation) == violation.message


def test_seed_passes() -> None:
    assert check_source(SEED.read_text()) == []


def test_ordinary_model_code_passes() -> None:
    source = '''\
    """A module docstring."""
    from __future__ import annotations

    import math
    import functools
    import collections
    import itertools
    from dataclasses import dataclass
    from typing import Optional

    import torch
    import torch.optim as optim
    from torch import nn
    from torch.nn import functional as F
    import torch.nn.init as init

    __all__ = ["Net"]
    WIDTHS = (16, 32, 64)
    CONFIG = {"drop": 0.1, "sizes": [3, 5]}
    SCALE = 2 ** 0.5 * 3
    NEGATIVE = -1


    @dataclass(frozen=True)
    class Settings:
        width: int = 16
        note: Optional[str] = None


    class Net(nn.Module):
        """A docstring."""

        expansion = 4
        __constants__ = ["expansion"]

        def __init__(self, width: int = WIDTHS[0], act=nn.ReLU) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, width, 3, padding=1)
            self._cache: dict = {}
            init.kaiming_normal_(self.conv.weight, mode="fan_out")
            nn.init.zeros_(self.conv.bias)
            self.act = act()
            self.heads = nn.ModuleList(nn.Linear(width, 10) for _ in range(2))
            self.add_module("extra", nn.Identity())
            if hasattr(self, "extra"):
                self.scale = math.sqrt(width) / math.pi

        @torch.no_grad()
        def stats(self, x):
            return getattr(self.conv, "weight").mean(), torch.trace(x[0, 0]), x.select(1, 0)

        def forward(self, x):
            total = 0
            def add(v):
                nonlocal total
                total += v
            y = F.relu(self.conv(x))
            y = torch.cat([y, F.max_pool2d(y, 1)], dim=1)
            parts = [p * self.scale for p in itertools.chain(y.split(1, dim=1))]
            counts = collections.Counter(range(3))
            best = functools.reduce(max, counts.values())
            add(best)
            return sum(parts) + total, f"{type(self).__name__}: {y.shape}"

    def get_optimizer(model, lr):
        return optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True)
    '''
    assert messages(source) == []


# Modules that give files, processes, native code, the interpreter's internals or the network.
# None of them, and no function or class defined in them, may be reachable by a path the gate
# accepts. (Harmless classes such as io.IOBase or inspect.signature are not counted.)
DANGEROUS_MODULES = frozenset(
    {
        "os",
        "posix",
        "sys",
        "subprocess",
        "_posixsubprocess",
        "socket",
        "_socket",
        "ctypes",
        "_ctypes",
        "pickle",
        "_pickle",
        "marshal",
        "importlib",
        "shutil",
        "pathlib",
        "tempfile",
        "multiprocessing",
        "signal",
        "_signal",
        "gc",
        "glob",
        "platform",
        "linecache",
        "tarfile",
        "zipfile",
        "gzip",
        "bz2",
        "lzma",
        "logging",
        "codecs",
        "uuid",
        "copyreg",
        "runpy",
        "pty",
        "mmap",
        "resource",
        "fcntl",
        "code",
        "pdb",
        "pydoc",
        "site",
        "sysconfig",
        "atexit",
        "faulthandler",
        "numpy",
        "sympy",
    }
)
# Reachable as modules, they lead to the dangerous ones.
GATEWAY_MODULES = frozenset({"builtins", "io", "_io", "inspect", "types", "threading", "_thread", "traceback"})
DANGEROUS_BUILTINS = frozenset(
    {
        id(getattr(builtins, name))
        for name in (
            "open",
            "eval",
            "exec",
            "compile",
            "__import__",
            "getattr",
            "setattr",
            "delattr",
            "globals",
            "locals",
            "vars",
            "input",
            "breakpoint",
        )
    }
)


def _danger(value: object) -> str | None:
    """Why `value`, found at an accepted path, is dangerous there; None when it is not."""
    if isinstance(value, types.ModuleType):
        top = value.__name__.split(".")[0]
        return value.__name__ if top in DANGEROUS_MODULES | GATEWAY_MODULES else None
    if id(value) in DANGEROUS_BUILTINS:
        return f"builtins.{value.__name__}"
    module = getattr(value, "__module__", None)
    if callable(value) and isinstance(module, str) and module.split(".")[0] in DANGEROUS_MODULES:
        return f"{module}.{getattr(value, '__name__', '?')}"
    return None


def test_nothing_dangerous_is_reachable_through_accepted_attribute_paths() -> None:
    """Walk, for real, every module attribute the gate accepts, from every allowed import.

    The walk runs in a fresh process that first does what a training child does before a
    candidate's forward runs (astevo.evaluation.sandboxed.entry_points loaded, the seed's optimizer built, a
    training step taken), so it walks the modules loaded there, such as torch._dynamo and the sympy it brings.
    """
    probe = "import json, tests.test_safety as t; print(json.dumps(t.walk_after_a_training_step()))"
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    visited, reachable = json.loads(result.stdout.splitlines()[-1])
    assert visited > 50, "the walk must reach torch's submodules"
    assert reachable == [], "\n".join(reachable)


def walk_after_a_training_step() -> tuple[int, list[str]]:
    """(modules visited, dangerous values reached) by attribute paths the gate accepts."""
    import astevo.evaluation.sandboxed.entry_points  # noqa: F401 - loads what the training child loads
    from astevo.evaluation.sandboxed.cpu_shortcuts import cpu_shortcuts
    from tests.seed_module import load_seed

    seed = load_seed()
    model = seed.ExquisiteNetV2(10, 1).to(memory_format=torch.channels_last)
    optimizer = seed.get_optimizer(model, 0.05, 5e-4)
    with cpu_shortcuts(model, torch.device("cpu")):
        torch.nn.functional.cross_entropy(model(torch.randn(4, 1, 28, 28)), torch.arange(4)).backward()
    optimizer.step()
    roots = sorted(m for m in ALLOWED_IMPORTS if m != "__future__")
    header = "".join(f"import {m}\n" for m in roots)
    pending = [(m, importlib.import_module(m)) for m in roots]
    visited: set[int] = set()
    reachable = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        while pending:
            path, module = pending.pop()
            if id(module) in visited:
                continue
            visited.add(id(module))
            for name in dir(module):
                value = getattr(module, name, None)
                danger = _danger(value)
                if not (danger or isinstance(value, types.ModuleType)):
                    continue
                child = f"{path}.{name}"
                if check_source(f"{header}def probe():\n    return {child}\n"):
                    continue
                if danger:
                    reachable.append(f"{child} -> {danger}")
                else:
                    pending.append((child, value))
    return len(visited), reachable
