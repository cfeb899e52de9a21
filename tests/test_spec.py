from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from grmjudge import ConfigurationError, Judge
from grmjudge.backends import FunctionBackend, OpenAIBackend
from grmjudge.backends._spec import backend_from_spec


def test_openai_spec_builds_the_backend_with_options() -> None:
    judge = Judge.from_spec("openai:my-grm", base_url="http://127.0.0.1:8000/v1/", endpoint="completions")
    assert isinstance(judge.backend, OpenAIBackend)
    assert (judge.backend.model, judge.backend.base_url, judge.backend.endpoint) == (
        "my-grm",
        "http://127.0.0.1:8000/v1",
        "completions",
    )


def test_model_names_may_contain_colons() -> None:
    backend = backend_from_spec("openai:org/model:v2", base_url="http://h/v1")
    assert backend.model == "org/model:v2"


@pytest.mark.parametrize(
    ("spec", "options", "message"),
    [
        ("openai", {}, "kind:model"),
        (":model", {}, "kind:model"),
        ("openai:", {}, "kind:model"),
        ("openai:m", {}, "needs base_url"),
        ("opnai:m", {}, "Did you mean 'openai'"),
        ("nothing-like-it:m", {}, "unknown backend kind"),
        ("openai:m", {"base_url": "http://h/v1", "no_such_option": 1}, "does not accept"),
    ],
)
def test_bad_specs_are_configuration_errors(spec: str, options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Judge.from_spec(spec, **options)


PLUGIN = """
from grmjudge.backends import FunctionBackend
from tests.judges import by_length

def make(model, **options):
    return FunctionBackend(by_length, model=model, **options)

NOT_CALLABLE = 42
"""


@pytest.fixture
def installed_plugin(tmp_path: Path) -> Iterator[None]:
    """A real installed distribution (a dist-info on sys.path) that registers two backend kinds."""
    (tmp_path / "grmjudge_echo_plugin.py").write_text(PLUGIN)
    dist = tmp_path / "grmjudge_echo_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: grmjudge-echo-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[grmjudge.backends]\necho = grmjudge_echo_plugin:make\nbroken = grmjudge_echo_plugin:NOT_CALLABLE\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        yield
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("grmjudge_echo_plugin", None)


@pytest.mark.anyio
async def test_third_party_backends_register_through_entry_points(installed_plugin: None) -> None:
    judge = Judge.from_spec("echo:custom-model", supports_n=False)
    assert isinstance(judge.backend, FunctionBackend)
    assert judge.backend.model == "custom-model"
    result = await judge.score("q", ["a", "bb"], k=2)
    assert result.ok and result.provenance.model == "custom-model"
    with pytest.raises(ConfigurationError, match="not callable"):
        Judge.from_spec("broken:x")
    with pytest.raises(ConfigurationError, match="Did you mean 'echo'"):
        Judge.from_spec("ecko:x")


@pytest.mark.parametrize(("spec", "extra"), [("hf:some/model", "hf"), ("vllm:some/model", "vllm")])
def test_missing_extra_names_the_install_command(spec: str, extra: str) -> None:
    blocked = "torch" if extra == "hf" else "vllm"
    code = textwrap.dedent(
        f"""
        import sys
        sys.modules[{blocked!r}] = None  # as if the extra were not installed
        from grmjudge import Judge, MissingDependencyError
        try:
            Judge.from_spec({spec!r})
        except MissingDependencyError as exc:
            print(exc)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert f"pip install 'grmjudge[{extra}]'" in out.stdout
