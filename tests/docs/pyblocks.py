"""Python blocks: run in one namespace per page, or checked statically, or compared with a real signature."""

from __future__ import annotations

import ast
import asyncio
import builtins
import contextlib
import importlib
import inspect
import io
import sys
import traceback
import types
from collections.abc import Callable
from typing import Any

from tests.docs.blocks import Block


class BlockFailure(Exception):
    """A block that does not do what the page says; the message names the block."""


class Tee(io.TextIOBase):
    """Writes to a buffer, and to the real stream too so that pytest's capture still shows it on failure."""

    def __init__(self, stream: Any) -> None:
        self.buffer_text = io.StringIO()
        self._stream = stream

    def write(self, text: str) -> int:
        self.buffer_text.write(text)
        return self._stream.write(text)

    def flush(self) -> None:
        self._stream.flush()


class PythonSession:
    """The namespace and event loop that a page's Python blocks share, like one interactive session."""

    def __init__(self, page_name: str) -> None:
        self.module = types.ModuleType(f"docs_page_{abs(hash(page_name))}")
        self.namespace: dict[str, Any] = self.module.__dict__
        self._runner: asyncio.Runner | None = None
        self.static_names: set[str] = set()
        """Names that blocks checked statically bind: later static blocks may use them."""

    def run(self, block: Block, code: str) -> str:
        """Execute ``code`` (the block, localized) and return what it printed; test_* functions it defines run too."""
        compiled = _compile(block, code)
        before = dict(self.namespace)
        sys.modules[self.module.__name__] = self.module
        out = Tee(sys.stdout)
        try:
            with contextlib.redirect_stdout(out):
                if compiled.co_flags & inspect.CO_COROUTINE:
                    self._loop_runner().run(eval(compiled, self.namespace))  # top-level await
                else:
                    exec(compiled, self.namespace)
                for name, test in _new_tests(before, self.namespace, compiled.co_filename):
                    self._call_test(block, name, test)
        except BlockFailure:
            raise
        except Exception as exc:
            trace = "".join(traceback.format_exception(exc))
            raise BlockFailure(f"{block.where}: raised {type(exc).__name__}:\n{trace}") from exc
        finally:
            sys.modules.pop(self.module.__name__, None)
        return out.buffer_text.getvalue()

    def _call_test(self, block: Block, name: str, test: Callable[..., Any]) -> None:
        if inspect.signature(test).parameters:
            raise BlockFailure(f"{block.where}: {name} takes parameters; the harness calls test functions bare")
        if inspect.iscoroutinefunction(test):
            self._loop_runner().run(test())
        else:
            test()

    def _loop_runner(self) -> asyncio.Runner:
        if self._runner is None:
            self._runner = asyncio.Runner()
        return self._runner

    def close(self) -> None:
        if self._runner is not None:
            self._runner.close()
        self.namespace.clear()


def _compile(block: Block, code: str) -> types.CodeType:
    """Compile with top-level await allowed, so that tracebacks point at the page's own line numbers."""
    padded = "\n" * block.line + code
    try:
        return compile(padded, str(block.page), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True)
    except SyntaxError as exc:
        raise BlockFailure(f"{block.where}: does not compile: {exc}") from exc


def _new_tests(before: dict[str, Any], after: dict[str, Any], filename: str) -> list[tuple[str, Callable[..., Any]]]:
    """The ``test_*`` functions that this block defined (not ones an earlier block left in the namespace)."""
    found = []
    for name, value in after.items():
        if name.startswith("test_") and inspect.isfunction(value) and before.get(name) is not value:
            if value.__code__.co_filename == filename:
                found.append((name, value))
    return found


# --- static checks -------------------------------------------------------------------------------------------


def check_static(block: Block, session: PythonSession) -> None:
    """Without running the block: it compiles, its imports resolve, every name it loads exists, and every call
    of something it imported binds to that callable's signature. Its imports stay, as after a real run."""
    compiled_tree = _parse(block)
    scratch = dict(session.namespace)
    for node in compiled_tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            module = ast.Module(body=[node], type_ignores=[])
            try:
                exec(compile(module, str(block.page), "exec"), scratch)
            except ImportError as exc:
                raise BlockFailure(f"{block.where}: line {node.lineno}: {exc}") from exc
    defined = _bound_names(compiled_tree) | session.static_names
    for node in ast.walk(compiled_tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            if node.id not in defined and node.id not in scratch and not hasattr(builtins, node.id):
                raise BlockFailure(f"{block.where}: line {node.lineno}: name {node.id!r} is not defined")
        if isinstance(node, ast.Call):
            _check_call(block, node, scratch, defined)
    session.namespace.update({k: v for k, v in scratch.items() if k not in session.namespace})
    session.static_names |= _bound_names(compiled_tree)


def _parse(block: Block) -> ast.Module:
    try:
        return ast.parse("\n" * block.line + block.code, str(block.page))
    except SyntaxError as exc:
        raise BlockFailure(f"{block.where}: does not compile: {exc}") from exc


def _bound_names(tree: ast.Module) -> set[str]:
    """Every name the block binds anywhere: assignments, definitions, parameters, imports, loop variables."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store | ast.Del):
            names.add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.alias):
            names.add((node.asname or node.name).split(".")[0])
    return names


def _resolve(node: ast.expr, scratch: dict[str, Any], defined: set[str]) -> Any:
    """The object a ``name`` or ``name.attr...`` expression denotes, if it is imported; else None."""
    if isinstance(node, ast.Name):
        if node.id in defined and node.id not in scratch:
            return None
        return scratch.get(node.id)
    if isinstance(node, ast.Attribute):
        owner = _resolve(node.value, scratch, defined)
        if owner is None:
            return None
        if not hasattr(owner, node.attr):
            raise AttributeError(f"{owner!r} has no attribute {node.attr!r}")
        return getattr(owner, node.attr)
    return None


def _check_call(block: Block, call: ast.Call, scratch: dict[str, Any], defined: set[str]) -> None:
    try:
        target = _resolve(call.func, scratch, defined)
    except AttributeError as exc:
        raise BlockFailure(f"{block.where}: line {call.lineno}: {exc}") from exc
    if target is None or not callable(target):
        return
    if any(isinstance(a, ast.Starred) for a in call.args) or any(k.arg is None for k in call.keywords):
        return  # *args / **kwargs: the arguments are not known statically
    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError):
        return  # a builtin without a signature
    try:
        signature.bind(*call.args, **{k.arg: k.value for k in call.keywords if k.arg is not None})
    except TypeError as exc:
        name = ast.unparse(call.func)
        raise BlockFailure(f"{block.where}: line {call.lineno}: {name}(...) does not fit {signature}: {exc}") from exc


# --- signature blocks ----------------------------------------------------------------------------------------


def check_signature(block: Block, dotted: str) -> None:
    """The block shows ``Name(a, b=1, *, c=2)``; it must list the real parameters in order, with their defaults."""
    module_name, _, attribute = dotted.rpartition(".")
    target = getattr(importlib.import_module(module_name), attribute)
    shown = _shown_parameters(block)
    real = [p for p in inspect.signature(target).parameters.values() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    shown_names = [name for name, _, _ in shown]
    real_names = [p.name for p in real]
    if shown_names != real_names:
        raise BlockFailure(f"{block.where}: shows parameters {shown_names}, but {dotted} has {real_names}")
    for (name, keyword_only, default), parameter in zip(shown, real, strict=True):
        if keyword_only != (parameter.kind is parameter.KEYWORD_ONLY):
            raise BlockFailure(f"{block.where}: {name} is shown {'after' if keyword_only else 'before'} the `*`")
        if default != parameter.default:
            raise BlockFailure(f"{block.where}: {name} defaults to {parameter.default!r}, not {default!r}")


def _shown_parameters(block: Block) -> list[tuple[str, bool, object]]:
    """(name, keyword-only, default or ``inspect.Parameter.empty``) for each parameter the block shows."""
    head, paren, rest = block.code.partition("(")
    if not paren or not head.strip().isidentifier():
        raise BlockFailure(f"{block.where}: a signature block must read `Name(parameters...)`")
    try:
        function = ast.parse(f"def shown({rest.rstrip()}:\n    pass\n").body[0]
    except SyntaxError as exc:
        raise BlockFailure(f"{block.where}: the signature does not parse: {exc}") from exc
    assert isinstance(function, ast.FunctionDef)
    args = function.args
    positional = args.posonlyargs + args.args
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    shown = [(a.arg, False, _literal(block, d)) for a, d in zip(positional, defaults, strict=True)]
    shown += [(a.arg, True, _literal(block, d)) for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True)]
    return shown


def _literal(block: Block, node: ast.expr | None) -> object:
    if node is None:
        return inspect.Parameter.empty
    try:
        return ast.literal_eval(node)
    except ValueError as exc:
        raise BlockFailure(f"{block.where}: default {ast.unparse(node)} is not a literal") from exc
