"""Local stand-ins for what the docs name: servers behind the docs' ports and URLs, and hub ids of tiny models."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from pathlib import Path

from tests.docs.blocks import REPO, Block
from tests.servers import LocalServer, free_port, serve

ANTHROPIC_KEY = "docs-test-anthropic-key"
ANTHROPIC_API = "https://api.anthropic.com"

DEFAULT_PORTS = (8000, 8001)
"""Ports the docs may use without starting a server: the fake GRM, which also answers vLLM's ``/classify``."""

HOSTED_OPENAI = ("https://api.openai.com/v1", "https://api.example.com/v1")
"""Hosted OpenAI-compatible APIs the docs may name; the fake GRM answers for them."""

HUB_ORGS = ("BBQGOD", "Qwen", "google", "Skywork")
"""Hub ids under these organisations resolve to a tiny model (a classifier when the name says MetaRM/Reward)."""

_HUB_ID = re.compile(rf"\b(?:{'|'.join(HUB_ORGS)})/[\w.-]*\w")
_LOCAL_PORT = re.compile(r"\b(?:localhost|127\.0\.0\.1):(\d{2,5})\b")
_PORT_FLAG = re.compile(r"--port([ =])(\d{2,5})\b")
_SERVER_COMMAND = re.compile(r"^\s*python3? -m (grmjudge\.testing\.\w+)\b(?P<rest>.*)$", re.MULTILINE)
_PATH_TO = re.compile(r"\bpath/to/([\w.-]*\w)")
_CHECKOUT_DIR = re.compile(r"(?<![\w./-])(scripts|examples)/")
VENV_PYTHON = ".venv/bin/python"


class StandInError(Exception):
    """A page names something the harness has no stand-in for."""


def is_classifier(name: str) -> bool:
    """Whether a model name stands for a scalar-head classifier (meta RM, reward model) rather than a chat model."""
    lowered = name.lower()
    return "meta" in lowered or "reward" in lowered


CODE_LANGUAGES = frozenset({"python", "bash", "json", "jsonl", "yaml", "yml", "toml"})
"""Blocks whose ports, URLs and model paths are mapped (data blocks too: a titled one becomes an input file)."""


def _code_of(blocks: Iterable[Block]) -> str:
    return "\n".join(b.code for b in blocks if b.language in CODE_LANGUAGES)


def page_ports(blocks: list[Block], default_port: Callable[[], int]) -> dict[int, int]:
    """Map every port the page's code names to a real one.

    A port that a server command of the page starts gets a fresh free port; the default ports go to the shared
    fake GRM; any other port is an error, because nothing would answer there.
    """
    bash = "\n".join(b.code for b in blocks if b.language == "bash")
    started: set[int] = set()
    for command in _SERVER_COMMAND.finditer(bash.replace("\\\n", " ")):
        flag = _PORT_FLAG.search(command["rest"])
        if flag is None:
            raise StandInError(f"`python -m {command[1]}` needs an explicit --port in the docs")
        started.add(int(flag[2]))
    code = _code_of(blocks)
    used = {int(p) for p in _LOCAL_PORT.findall(code)} | {int(p) for _, p in _PORT_FLAG.findall(code)}
    mapping = {port: free_port() for port in started}
    for port in sorted(used - started):
        if port not in DEFAULT_PORTS:
            raise StandInError(f"nothing serves port {port}: start a server on it in the page, or use 8000/8001")
        mapping[port] = default_port()
    return mapping


def localize(code: str, ports: dict[int, int], urls: dict[str, str]) -> str:
    """The code with the docs' local ports and hosted URLs replaced by the stand-ins' addresses."""
    code = _LOCAL_PORT.sub(lambda m: f"127.0.0.1:{ports[int(m[1])]}", code)
    code = _PORT_FLAG.sub(lambda m: f"--port{m[1]}{ports[int(m[2])]}", code)
    for url, local in urls.items():
        code = code.replace(url, local)
    return code


class Servers:
    """The shared stand-in servers, each started on first use and stopped at the end of the session."""

    def __init__(self) -> None:
        self._stack = ExitStack()
        self._grm: LocalServer | None = None
        self._anthropic: LocalServer | None = None

    @property
    def grm(self) -> LocalServer:
        """The fake GRM (``FakeOpenAIServer``'s default judgement) that also answers ``POST /classify``."""
        if self._grm is None:
            self._grm = self._stack.enter_context(serve("tests.cli.servers"))
        return self._grm

    def grm_port(self) -> int:
        return int(self.grm.root.rsplit(":", 1)[1])

    @property
    def anthropic(self) -> LocalServer:
        """A ``FakeAnthropicServer`` that accepts only ``ANTHROPIC_KEY``."""
        if self._anthropic is None:
            headers = {"x-api-key": ANTHROPIC_KEY, "anthropic-version": "2023-06-01"}
            self._anthropic = self._stack.enter_context(
                serve("grmjudge.testing.fake_anthropic", ["--api-key", ANTHROPIC_KEY], headers=headers)
            )
        return self._anthropic

    def hosted_urls(self, code: str) -> dict[str, str]:
        """The hosted APIs that ``code`` names, mapped to the local servers (started only when named)."""
        urls = {url: self.grm.base_url for url in HOSTED_OPENAI if url in code}
        if ANTHROPIC_API in code:
            urls[ANTHROPIC_API] = self.anthropic.root
        return urls

    def close(self) -> None:
        self._stack.close()


class HubCache:
    """A private Hugging Face cache in which the docs' hub ids are snapshots of the tiny models."""

    def __init__(self, root: Path, chat_model: Path, classifier: Path) -> None:
        self.root = root
        self._chat_model = chat_model
        self._classifier = classifier

    def add_ids_in(self, code: str) -> None:
        """Make every hub id that ``code`` names loadable offline."""
        for repo_id in set(_HUB_ID.findall(code)):
            self._add(repo_id)

    def _add(self, repo_id: str) -> None:
        repo = self.root / ("models--" + repo_id.replace("/", "--"))
        if repo.exists():
            return
        revision = "0" * 40
        snapshot = repo / "snapshots" / revision
        snapshot.mkdir(parents=True)
        (repo / "refs").mkdir()
        (repo / "refs" / "main").write_text(revision)
        link_model(snapshot, self._classifier if is_classifier(repo_id) else self._chat_model)


def link_model(target: Path, source: Path) -> None:
    """Fill directory ``target`` with links to the files of the model directory ``source``."""
    target.mkdir(parents=True, exist_ok=True)
    for item in source.iterdir():
        (target / item.name).symlink_to(item.resolve())


def make_local_paths(workdir: Path, blocks: list[Block], chat_model: Path, classifier: Path) -> Iterator[str]:
    """Create every ``path/to/NAME`` that the page names as a tiny model in ``workdir``; yields the paths."""
    for name in sorted(set(_PATH_TO.findall(_code_of(blocks)))):
        target = workdir / "path" / "to" / name
        if not target.exists():
            link_model(target, classifier if is_classifier(name) else chat_model)
        yield f"path/to/{name}"


def make_checkout_paths(workdir: Path, blocks: list[Block], python_command: Path) -> None:
    """Commands that name a checkout's paths (``bash scripts/dev-install.sh``, ``python examples/score_app.py``,
    ``.venv/bin/python -m pytest``) find them in the page's directory: the repository's folders are linked
    there, and ``.venv/bin/python`` is the harness's ``python`` command."""
    bash = "\n".join(b.code for b in blocks if b.language == "bash")
    for name in sorted(set(_CHECKOUT_DIR.findall(bash))):
        (workdir / name).symlink_to(REPO / name, target_is_directory=True)
    if VENV_PYTHON in bash:
        (workdir / VENV_PYTHON).parent.mkdir(parents=True)
        (workdir / VENV_PYTHON).symlink_to(python_command)
