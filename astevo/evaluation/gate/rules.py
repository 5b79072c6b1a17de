"""What the static safety gate allows and forbids: the lists behind astevo.evaluation.gate.safety's rules."""

from __future__ import annotations

import ast
import sys

# Builtins that evaluate code, touch files or the interpreter, or read the console.
FORBIDDEN_NAMES = frozenset(
    {
        "eval",
        "exec",
        "compile",
        "open",
        "globals",
        "locals",
        "vars",
        "input",
        "breakpoint",
        "exit",
        "quit",
        "memoryview",
        "help",
    }
)
ATTRIBUTE_BUILTINS = frozenset({"getattr", "setattr", "delattr"})

# Dunder attributes that model code uses and that give no way out of the object model.
ALLOWED_DUNDERS = frozenset(
    {
        "__init__",
        "__call__",
        "__name__",
        "__len__",
        "__getitem__",
        "__iter__",
        "__next__",
        "__contains__",
        "__repr__",
        "__str__",
    }
)
ALLOWED_DUNDER_TARGETS = frozenset({"__all__", "__constants__", "__slots__"})
INTROSPECTION_ATTRIBUTES = frozenset(
    {
        "f_globals",
        "f_locals",
        "f_builtins",
        "f_back",
        "f_code",
        "gi_frame",
        "gi_code",
        "cr_frame",
        "cr_code",
        "ag_frame",
        "ag_code",
        "tb_frame",
        "tb_next",
        "co_code",
        "mro",
    }
)

# Standard-library modules a model may reach as an attribute (pure computation), plus
# names torch uses for its own functions (torch.select, Tensor.trace).
HARMLESS_MODULE_NAMES = frozenset(
    {
        "abc",
        "array",
        "bisect",
        "cmath",
        "collections",
        "colorsys",
        "contextlib",
        "contextvars",
        "copy",
        "dataclasses",
        "datetime",
        "decimal",
        "difflib",
        "enum",
        "errno",
        "fnmatch",
        "fractions",
        "functools",
        "graphlib",
        "hashlib",
        "heapq",
        "itertools",
        "json",
        "keyword",
        "math",
        "numbers",
        "operator",
        "pprint",
        "queue",
        "random",
        "re",
        "select",
        "statistics",
        "string",
        "struct",
        "textwrap",
        "time",
        "token",
        "trace",
        "typing",
        "warnings",
        "weakref",
    }
)
# Any other module reachable as `torch.<...>.name` (torch re-exports os, sys, subprocess,
# ctypes, numpy ... through its submodules) is forbidden by name, wherever it appears.
MODULE_ALIASES = frozenset({"np", "sympy", "bltns", "mp", "python_multiprocessing"})
FORBIDDEN_ATTRIBUTES = (
    (frozenset(sys.stdlib_module_names) - HARMLESS_MODULE_NAMES)
    | MODULE_ALIASES
    | frozenset(
        {
            "load",
            "save",
            "hub",
            "cpp_extension",
            "load_library",
            "load_url",
            "model_zoo",
            "download_url_to_file",
            "from_file",
            "tofile",
            "fromfile",
            "dump",
            "compile",
            "set_num_threads",
            "set_num_interop_threads",
            "attrgetter",
            "methodcaller",
            "get_type_hints",
            "ForwardRef",
            "Path",
            "find_spec",
            # ctypes re-exported by torch submodules (torch.xpu): raw memory and native calls
            "byref",
            "pointer",
            "POINTER",
            "cast",
            "addressof",
            "string_at",
            "memmove",
            "memset",
            "from_address",
            "from_buffer",
            "CDLL",
            "cdll",
            "pythonapi",
            "py_object",
            "c_void_p",
            "c_char_p",
            "c_double",
            "c_uint32",
            # torch.fx.experimental re-exports sympy (its S parses strings with eval) once torch._dynamo
            # is loaded, which building any optimizer does before training starts; torch.onnx writes files
            "experimental",
            "onnx",
        }
    )
)
# Parts of torch that load native code, start processes or reach other machines.
FORBIDDEN_MODULE_PATHS = frozenset(
    {
        "torch.classes",
        "torch.ops",
        "torch.library",
        "torch.distributed",
        "torch.package",
        "torch.utils.cpp_extension",
    }
)

STATEMENT_KINDS = {
    ast.Expr: "an expression",
    ast.For: "a for loop",
    ast.AsyncFor: "a for loop",
    ast.While: "a while loop",
    ast.If: "an if statement",
    ast.With: "a with statement",
    ast.AsyncWith: "a with statement",
    ast.Try: "a try statement",
    ast.Raise: "a raise",
    ast.Assert: "an assert",
    ast.Delete: "a del statement",
    ast.AugAssign: "an augmented assignment",
    ast.Return: "a return",
    ast.Global: "a global statement",
}
