"""Static safety gate for LLM-written model source: a cheap filter in front of the sandbox.

The gate rejects, in milliseconds and without running anything, code that has no business in
a model file (imports of the OS, file and network APIs, eval-like builtins, escapes through the
object model, monkey-patching of shared modules, work done at import time). It is a filter,
not the boundary: whatever slips through still runs only inside `astevo.isolation.sandbox`.

Decisions worth knowing:
- `import X` needs X on the allow-list; `from X import n` needs X on it and `X.n` to pass the
  attribute rules, exactly as if the code had written `X.n`.
- `getattr`/`setattr`/`delattr` are allowed only with a constant attribute name that passes the
  attribute rules (then they are plain attribute access); `hasattr` only reads existence.
- `global` is rejected: model code never needs module state rebound at run time, and such state
  makes a fitness depend on evaluation order. `nonlocal` stays: it only touches a closure.
- At module and class level only definitions, imports, docstrings and assignments of constant
  values may appear, so that importing a candidate does no work. Decorators, default values and
  base classes are evaluated there too; they are checked by the expression rules only.
"""

from __future__ import annotations

import ast
import string
from dataclasses import dataclass

from astevo.code.imports import ALLOWED_IMPORTS, free_names, is_unallowed_module
from astevo.code.syntax import parse_module
from astevo.evaluation.gate.rules import (
    ALLOWED_DUNDER_TARGETS,
    ALLOWED_DUNDERS,
    ATTRIBUTE_BUILTINS,
    FORBIDDEN_ATTRIBUTES,
    FORBIDDEN_MODULE_PATHS,
    FORBIDDEN_NAMES,
    INTROSPECTION_ATTRIBUTES,
    STATEMENT_KINDS,
)


@dataclass(frozen=True)
class Violation:
    """One rejected construct; `message` is a single line that starts with its line number."""

    line: int
    col: int
    message: str

    def __str__(self) -> str:
        return self.message


def check_source(source: str) -> list[Violation]:
    """All rule violations in `source`, in source order; an empty list means it passed."""
    try:
        tree = parse_module(source)
    except SyntaxError as error:
        line = error.lineno or 1
        return [Violation(line, (error.offset or 1) - 1, f"line {line}: syntax error: {error.msg}")]
    checker = _Checker(_import_bindings(tree))
    checker.check_layout(tree.body, "module")
    checker.visit(tree)
    free = free_names(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in free and is_unallowed_module(node.id):
            checker.report(node, f"uses module {node.id} without importing it, and {node.id} is not on the allow-list")
    return sorted(set(checker.violations), key=lambda v: (v.line, v.col, v.message))


def _import_bindings(tree: ast.Module) -> dict[str, str]:
    """Local name -> module path for every import anywhere in the file (scope-insensitive)."""
    bindings: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    bindings[alias.asname] = alias.name
                else:
                    root = alias.name.split(".")[0]
                    bindings[root] = root
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                bindings[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return bindings


def _attribute_chain(node: ast.Attribute) -> tuple[ast.expr, list[str]]:
    """The base expression and the attribute names of `base.a.b.c`, outermost last."""
    names: list[str] = []
    current: ast.expr = node
    while isinstance(current, ast.Attribute):
        names.append(current.attr)
        current = current.value
    return current, names[::-1]


def _is_constant(node: ast.expr) -> bool:
    """Literals and arithmetic on literals: values whose evaluation runs no user code."""
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return all(_is_constant(item) for item in node.elts)
    if isinstance(node, ast.Dict):
        return all(k is not None and _is_constant(k) for k in node.keys) and all(_is_constant(v) for v in node.values)
    if isinstance(node, ast.UnaryOp):
        return _is_constant(node.operand)
    if isinstance(node, ast.BinOp):
        return _is_constant(node.left) and _is_constant(node.right)
    return False


def _is_dunder(name: str) -> bool:
    return len(name) > 4 and name.startswith("__") and name.endswith("__")


def _format_field_reaches_dunder(text: str) -> bool:
    """True for format strings like "{0.__class__}" that read attributes by name."""
    try:
        fields = [field for _, field, _, _ in string.Formatter().parse(text) if field]
    except ValueError:
        return False
    return any("__" in field for field in fields)


class _Checker(ast.NodeVisitor):
    """Collects violations; layout rules per level, expression rules everywhere."""

    def __init__(self, bindings: dict[str, str]) -> None:
        self.bindings = bindings
        self.violations: list[Violation] = []
        self._approved_names: set[int] = set()

    def report(self, node: ast.AST, text: str) -> None:
        line = getattr(node, "lineno", 1)
        self.violations.append(Violation(line, getattr(node, "col_offset", 0), f"line {line}: {text}"))

    # ----- layout: what may stand at module and class level
    def check_layout(self, body: list[ast.stmt], level: str) -> None:
        for statement in body:
            if isinstance(statement, ast.ClassDef):
                self.check_layout(statement.body, "class")
            elif not self._allowed_at_top(statement):
                kind = STATEMENT_KINDS.get(type(statement), f"a {type(statement).__name__} statement")
                if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call):
                    kind = "a call"
                elif isinstance(statement, (ast.Assign, ast.AnnAssign)):
                    kind = "an assignment of a non-constant value"
                self.report(
                    statement,
                    f"{kind} is not allowed at {level} level; only definitions, "
                    "imports, docstrings and constant assignments are",
                )

    def _allowed_at_top(self, statement: ast.stmt) -> bool:
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Import, ast.ImportFrom, ast.Pass)):
            return True
        if isinstance(statement, ast.Expr):
            value = statement.value
            return isinstance(value, ast.Constant) and (isinstance(value.value, str) or value.value is ...)
        if isinstance(statement, ast.Assign):
            return _is_constant(statement.value)
        if isinstance(statement, ast.AnnAssign):
            annotation_calls = any(isinstance(n, ast.Call) for n in ast.walk(statement.annotation))
            return not annotation_calls and (statement.value is None or _is_constant(statement.value))
        return False

    # ----- imports
    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name not in ALLOWED_IMPORTS:
                self.report(node, f"import of '{alias.name}' is not allowed")

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            self.report(node, "relative imports are not allowed")
            return
        module = node.module or ""
        if module not in ALLOWED_IMPORTS:
            self.report(node, f"import of '{module}' is not allowed")
            return
        for alias in node.names:
            if alias.name == "*":
                self.report(node, f"star import from '{module}' is not allowed")
            elif f"{module}.{alias.name}" not in ALLOWED_IMPORTS:
                problem = self._attribute_problem(module, alias.name)
                if problem:
                    self.report(node, f"import of '{module}.{alias.name}' is not allowed ({problem})")

    # ----- statements inside code
    def visit_Global(self, node: ast.Global) -> None:
        self.report(node, "'global' statements are not allowed")

    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            self._check_target(target)
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self._check_target(node.target)
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self._check_target(node.target)
        self.generic_visit(node)

    def visit_Delete(self, node: ast.Delete) -> None:
        for target in node.targets:
            self._check_target(target)
        self.generic_visit(node)

    def _check_target(self, target: ast.expr) -> None:
        """Assigning into an imported module would change it for the trusted evaluator too."""
        if isinstance(target, (ast.Tuple, ast.List)):
            for item in target.elts:
                self._check_target(item)
        elif isinstance(target, ast.Starred):
            self._check_target(target.value)
        elif isinstance(target, (ast.Attribute, ast.Subscript)):
            owner = target.value
            if self._module_path(owner) is not None:
                self.report(
                    target, f"assignment into '{ast.unparse(owner)}' is not allowed (it would change a shared module)"
                )

    # ----- expressions
    def visit_Name(self, node: ast.Name) -> None:
        if id(node) in self._approved_names:
            return
        if node.id in FORBIDDEN_NAMES:
            self.report(node, f"name '{node.id}' is not allowed")
        elif node.id in ATTRIBUTE_BUILTINS:
            self.report(node, f"'{node.id}' is allowed only as a call with a constant attribute name")
        elif _is_dunder(node.id) and not (isinstance(node.ctx, ast.Store) and node.id in ALLOWED_DUNDER_TARGETS):
            self.report(node, f"name '{node.id}' is not allowed")

    def visit_Attribute(self, node: ast.Attribute) -> None:
        base, names = _attribute_chain(node)
        path = self.bindings.get(base.id) if isinstance(base, ast.Name) else None
        for index, name in enumerate(names):
            owner = ".".join([path, *names[:index]]) if path else None
            problem = self._attribute_problem(owner, name)
            if problem:
                prefix = ast.unparse(base) + "".join(f".{n}" for n in names[: index + 1])
                self.report(node, f"'{prefix}' is not allowed ({problem})")
                break
        self.visit(base)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Name) and func.id in ATTRIBUTE_BUILTINS:
            self._check_attribute_builtin(node, func)
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str) and _format_field_reaches_dunder(node.value):
            self.report(node, "format strings that look up dunder attributes are not allowed")

    def _check_attribute_builtin(self, node: ast.Call, func: ast.Name) -> None:
        self._approved_names.add(id(func))
        if len(node.args) < 2 or not (isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str)):
            self.report(node, f"{func.id} with a non-constant attribute name is not allowed")
            return
        owner = node.args[0]
        owner_path = self._module_path(owner)
        problem = self._attribute_problem(owner_path, node.args[1].value)
        if problem:
            self.report(node, f"{func.id} of '{node.args[1].value}' is not allowed ({problem})")
        elif func.id != "getattr" and owner_path is not None:
            self.report(node, f"{func.id} on '{ast.unparse(owner)}' is not allowed (it would change a shared module)")

    def _module_path(self, node: ast.expr) -> str | None:
        """The dotted path of `node` when it is an imported name or an attribute chain on one."""
        if isinstance(node, ast.Name):
            return self.bindings.get(node.id)
        if isinstance(node, ast.Attribute):
            base, names = _attribute_chain(node)
            if isinstance(base, ast.Name) and base.id in self.bindings:
                return ".".join([self.bindings[base.id], *names])
        return None

    @staticmethod
    def _attribute_problem(owner_path: str | None, name: str) -> str | None:
        """Why reading attribute `name` (of module path `owner_path`, if known) is rejected."""
        if _is_dunder(name):
            return None if name in ALLOWED_DUNDERS else "dunder attribute escapes the object model"
        if name in INTROSPECTION_ATTRIBUTES:
            return "introspection attribute"
        if name in FORBIDDEN_ATTRIBUTES:
            return f"'{name}' gives access to files, processes, native code or the interpreter"
        if owner_path is None:
            return None
        full = f"{owner_path}.{name}"
        if any(full == p or full.startswith(p + ".") for p in FORBIDDEN_MODULE_PATHS):
            return f"'{full}' loads native code or reaches other processes"
        if name.startswith("_"):
            return f"private attribute of '{owner_path}'"
        return None
