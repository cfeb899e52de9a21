"""One page's run: its blocks in order, each checked the way its language and marker say."""

from __future__ import annotations

import functools
import gc
import inspect
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.docs import datablocks, pyblocks
from tests.docs.blocks import Block, read_blocks
from tests.docs.pyblocks import BlockFailure, PythonSession
from tests.docs.shell import Shell
from tests.docs.standins import (
    ANTHROPIC_API,
    ANTHROPIC_KEY,
    HubCache,
    Servers,
    localize,
    make_checkout_paths,
    make_local_paths,
    page_ports,
)

MARKERS_BY_LANGUAGE = {
    "python": {None, "static", "signature", "given"},
    "bash": {None, "static", "fresh-clone"},
    "json": {None, "schema", "excerpt"},
    "yaml": {None, "schema"},
    "toml": {None},
    "text": {"output", "not-checked", "schema"},
}
"""Which markers each language takes (None: no marker); a language not listed here fails."""
LANGUAGE_ALIASES = {"jsonl": "json", "yml": "yaml", "": "text"}


@dataclass
class StandIns:
    """What a page runs against; built once per session by the fixtures in conftest."""

    servers: Servers
    hub: HubCache
    bin_dir: Path
    chat_model: Path
    classifier: Path


class PageRun:
    """Runs the blocks of one page in a working directory of its own."""

    def __init__(self, page: Path, stand_ins: StandIns, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.page = page
        self.blocks = read_blocks(page)
        self.stand_ins = stand_ins
        self.workdir = workdir
        self.monkeypatch = monkeypatch
        self.python = PythonSession(str(page))
        self.shell = Shell(workdir, workdir.parent / f"{workdir.name}-state", stand_ins.bin_dir)
        self.printed: str | None = None
        self.ports: dict[int, int] = {}
        self.urls: dict[str, str] = {}

    def run(self) -> None:
        environ = dict(os.environ)
        try:
            self._prepare()
            for block in self.blocks:
                self._check_marker_fits(block)
                self._run_block(block)
                if block.title:
                    (self.workdir / block.title).parent.mkdir(parents=True, exist_ok=True)
                    (self.workdir / block.title).write_text(self._localize(block.code), encoding="utf-8")
        finally:
            self.python.close()
            self.shell.close()
            gc.collect()  # what the page left unclosed warns now, in this page's test
            os.environ.clear()
            os.environ.update(environ)

    def _prepare(self) -> None:
        """Map the page's ports, URLs and model names to stand-ins, and enter its working directory."""
        stand_ins = self.stand_ins
        code = "\n".join(b.code for b in self.blocks)
        self.ports = page_ports(self.blocks, stand_ins.servers.grm_port)
        self.urls = stand_ins.servers.hosted_urls(code)
        stand_ins.hub.add_ids_in(code)
        list(make_local_paths(self.workdir, self.blocks, stand_ins.chat_model, stand_ins.classifier))
        make_checkout_paths(self.workdir, self.blocks, stand_ins.bin_dir / "python")
        mp = self.monkeypatch
        mp.chdir(self.workdir)
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("HF_HUB_CACHE", str(stand_ins.hub.root))
        mp.setenv("VLLM_CACHE_ROOT", str(self.workdir.parent / f"{self.workdir.name}-vllm-cache"))
        mp.setenv("ANTHROPIC_API_KEY", ANTHROPIC_KEY)
        _point_huggingface_hub_at(stand_ins.hub.root, mp)
        if ANTHROPIC_API in code or "AnthropicBackend" in code or "anthropic:" in code:
            _route_anthropic_default(stand_ins.servers.anthropic.root, mp)

    def _check_marker_fits(self, block: Block) -> None:
        language = LANGUAGE_ALIASES.get(block.language, block.language)
        if language not in MARKERS_BY_LANGUAGE:
            raise BlockFailure(
                f"{block.where}: the harness cannot check ```{block.language} blocks "
                f"(it knows {', '.join(sorted(MARKERS_BY_LANGUAGE))})"
            )
        kind = block.marker.kind if block.marker else None
        if kind not in MARKERS_BY_LANGUAGE[language]:
            wanted = " or ".join(k or "no marker" for k in sorted(MARKERS_BY_LANGUAGE[language], key=str))
            raise BlockFailure(f"{block.where}: a ```{block.language or 'text'} block takes {wanted}, not {kind}")
        if kind in ("static", "not-checked", "signature", "excerpt", "schema", "given") and not block.marker.args:
            raise BlockFailure(f"{block.where}: the {kind} marker needs an argument (a reason or a name)")

    def _run_block(self, block: Block) -> None:
        language = LANGUAGE_ALIASES.get(block.language, block.language)
        marker = block.marker
        kind = marker.kind if marker else None
        printed, self.printed = self.printed, None
        if language == "python":
            self._python(block, kind)
        elif kind == "fresh-clone":
            pass  # run for real in a fresh copy of the checkout by test_fresh_clone.py, not in the page's shell
        elif language == "bash":
            self.printed = self.shell.run(block, self._localize(block.code), static=kind == "static")
        elif language == "json":
            self._json(block)
        elif language == "yaml":
            document = datablocks.parse_yaml(block)
            if block.marked("schema"):
                datablocks.check_schema(block, marker.text, [document])
        elif language == "toml":
            datablocks.parse_toml(block)
        elif kind == "output":
            datablocks.check_output(block, printed, marker.options.get("numbers") == "any")
        elif kind == "schema":
            if marker.text != "judgement":
                raise BlockFailure(f"{block.where}: a text block's schema can only be `judgement`")
            datablocks.check_judgement(block)

    def _python(self, block: Block, kind: str | None) -> None:
        if kind == "static":
            pyblocks.check_static(block, self.python)
        elif kind == "signature":
            pyblocks.check_signature(block, block.marker.text)
        else:
            if kind == "given":
                self.python.namespace.update(self._given(block, block.marker.args[0].split(",")))
            self.printed = self.python.run(block, self._localize(block.code))

    def _json(self, block: Block) -> None:
        if block.marked("excerpt"):
            datablocks.check_excerpt(block, self.workdir, block.marker.text)
            return
        rows = datablocks.parse_json_values(block)
        if block.marked("schema"):
            datablocks.check_schema(block, block.marker.text, rows)

    def _localize(self, code: str) -> str:
        return localize(code, self.ports, self.urls)

    def _given(self, block: Block, names: list[str]) -> dict[str, Any]:
        """The names a ``given`` fragment uses, made by the harness."""
        known = {"model", "tokenizer"}
        unknown = sorted(set(names) - known)
        if unknown:
            raise BlockFailure(f"{block.where}: the harness cannot provide {unknown}; it provides {sorted(known)}")
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = self.stand_ins.chat_model
        made: dict[str, Any] = {
            "model": AutoModelForCausalLM.from_pretrained(path),
            "tokenizer": AutoTokenizer.from_pretrained(path),
        }
        return {name: made[name] for name in names}


def _point_huggingface_hub_at(cache: Path, mp: pytest.MonkeyPatch) -> None:
    """huggingface_hub reads HF_HUB_CACHE once at import; point the already-imported constant at the stand-in."""
    import huggingface_hub.constants

    mp.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))


def _route_anthropic_default(root: str, mp: pytest.MonkeyPatch) -> None:
    """``AnthropicBackend`` given Anthropic's real API root (its default) talks to the fake Anthropic server.

    The wrapper keeps ``__wrapped__``, so ``inspect.signature`` still shows the real default.
    """
    from grmjudge.backends.anthropic import AnthropicBackend

    original = AnthropicBackend.__init__
    signature = inspect.signature(original)

    @functools.wraps(original)
    def routed(*args: Any, **kwargs: Any) -> None:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        if bound.arguments["base_url"] == ANTHROPIC_API:
            bound.arguments["base_url"] = root
        original(*bound.args, **bound.kwargs)

    mp.setattr(AnthropicBackend, "__init__", routed)
