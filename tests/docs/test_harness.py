"""The docs harness itself: each kind of rot it exists to catch makes a page fail, with a message saying why."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.docs.blocks import PageError, read_blocks
from tests.docs.page import PageRun, StandIns
from tests.docs.pyblocks import BlockFailure
from tests.docs.standins import HubCache, Servers, StandInError

FENCE = "```"


@pytest.fixture
def run_page(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    docs_servers: Servers,
    hub_cache: HubCache,
    docs_bin: Path,
    tiny_model_dir: Path,
    tiny_classifier_dir: Path,
):
    """Write a Markdown page and run it the way test_docs_code runs the real ones."""
    stand_ins = StandIns(docs_servers, hub_cache, docs_bin, tiny_model_dir, tiny_classifier_dir)
    count = 0

    def run(markdown: str) -> Path:
        nonlocal count
        count += 1
        page = tmp_path / f"page{count}.md"
        page.write_text(markdown.replace("'''", FENCE))
        workdir = tmp_path / f"work{count}"
        workdir.mkdir()
        PageRun(page, stand_ins, workdir, monkeypatch).run()
        return workdir

    return run


def fails(run_page, markdown: str, message: str) -> None:
    with pytest.raises((BlockFailure, PageError, StandInError), match=message):
        run_page(markdown)


# --- what every page must follow ------------------------------------------------------------------------------


def test_a_language_the_harness_does_not_know_fails(run_page) -> None:
    fails(run_page, "'''rust\nfn main() {}\n'''\n", "cannot check ```rust blocks")


def test_text_needs_a_marker(run_page) -> None:
    fails(run_page, "'''text\nsome output\n'''\n", "takes not-checked or output or schema, not None")


def test_a_stray_or_unknown_marker_fails(tmp_path: Path) -> None:
    page = tmp_path / "stray.md"
    page.write_text("<!-- docs-test: static some reason -->\n\nJust prose.\n")
    with pytest.raises(PageError, match="must be right above a code block"):
        read_blocks(page)
    page.write_text("<!-- docs-test: skip -->\n```python\npass\n```\n")
    with pytest.raises(PageError, match="unknown docs-test marker"):
        read_blocks(page)
    page.write_text("<!-- docs-test: static a page's reason -->\n```python\npass\n```\n")
    with pytest.raises(PageError, match="No closing quotation"):
        read_blocks(page)


def test_a_marker_needs_its_reason(run_page) -> None:
    fails(run_page, "<!-- docs-test: static -->\n'''python\npass\n'''\n", "needs an argument")


# --- where blocks are found ----------------------------------------------------------------------------------


def test_tilde_fences_and_fences_indented_in_admonitions_and_lists_are_run(run_page) -> None:
    fails(run_page, "Intro.\n\n~~~python\nassert 1 == 2\n~~~\n", r"page\d+\.md:3: raised AssertionError")
    fails(
        run_page,
        "!!! note\n    Prose.\n\n    '''python\n    if True:\n        assert 1 == 2\n    '''\n",
        r"page\d+\.md:4: raised AssertionError",
    )
    # the marker above an indented fence in a list item is that block's marker
    fails(
        run_page,
        "- A step:\n\n    <!-- docs-test: output -->\n    '''text\n    nothing printed this\n    '''\n",
        "an output block must follow a python or bash block",
    )


def test_a_tilde_fence_holds_backtick_fences_as_its_text(tmp_path: Path) -> None:
    page = tmp_path / "nested.md"
    page.write_text("<!-- docs-test: not-checked the source of a page -->\n~~~~text\n```python\nx = 1\n```\n~~~~\n")
    (block,) = read_blocks(page)
    assert (block.line, block.language, block.code) == (2, "text", "```python\nx = 1\n```\n")
    assert block.marked("not-checked")


def test_fences_in_blockquotes_are_run_and_must_close_inside_them(run_page) -> None:
    fails(run_page, "> Quoted:\n>\n> '''python\n> assert 1 == 2\n> '''\n", r"page\d+\.md:3: raised AssertionError")
    fails(
        run_page,
        "> > <!-- docs-test: static needs a GPU -->\n> > '''python\n> > print(undefined_name)\n> > '''\n",
        "'undefined_name' is not defined",
    )
    fails(run_page, "> '''python\n> x = 1\n\n'''\n", "a code block inside a blockquote .* never closed")


# --- python ---------------------------------------------------------------------------------------------------


def test_python_blocks_share_a_namespace_and_report_the_page_line(run_page) -> None:
    fails(
        run_page,
        "Intro.\n\n'''python\nanswer = 41\n'''\n\n'''python\nassert answer == 42, answer\n'''\n",
        r"(?s)page\d\.md:7: raised AssertionError.*line 8",
    )


def test_test_functions_that_a_block_defines_are_called(run_page) -> None:
    fails(run_page, "'''python\nasync def test_it():\n    assert 1 + 1 == 3\n'''\n", "raised AssertionError")


def test_output_blocks_are_compared_with_what_was_printed(run_page) -> None:
    run_page(
        "'''python\nprint('took 1.5 s')\nprint(1)\n'''\n\n"
        "<!-- docs-test: output numbers=any -->\n'''text\ntook 9.25 s\n...\n'''\n"
    )
    fails(
        run_page,
        "'''python\nprint('scores [1, 2]')\n'''\n\n<!-- docs-test: output -->\n'''text\nscores [2, 1]\n'''\n",
        "does not match what was printed",
    )


def test_a_static_block_must_fit_the_real_signatures(run_page) -> None:
    block = (
        "'''python\nfrom grmjudge.backends import OpenAIBackend\n\nOpenAIBackend('http://x/v1', 'm', {arg}=1)\n'''\n"
    )
    run_page("<!-- docs-test: static needs a server -->\n" + block.format(arg="timeout"))
    fails(run_page, "<!-- docs-test: static needs a server -->\n" + block.format(arg="time_out"), "does not fit")
    fails(
        run_page,
        "<!-- docs-test: static needs a server -->\n'''python\nprint(undefined_name)\n'''\n",
        "'undefined_name' is not defined",
    )


def test_a_signature_block_must_list_the_real_parameters_and_defaults(run_page) -> None:
    marker = "<!-- docs-test: signature grmjudge.testing.fake_openai.FakeOpenAIServer -->\n"
    run_page(
        marker + "'''python\nFakeOpenAIServer(reply=None, *, model='fake-grm', record=True, max_model_len=None)\n'''\n"
    )
    fails(
        run_page,
        marker + "'''python\nFakeOpenAIServer(reply=None, *, model='grm', record=True, max_model_len=None)\n'''\n",
        "model defaults to 'fake-grm', not 'grm'",
    )


def test_the_docs_urls_and_model_names_reach_the_stand_ins(run_page) -> None:
    code = (
        "from grmjudge import Judge\nfrom grmjudge.backends import OpenAIBackend\n"
        "judge = Judge(OpenAIBackend('http://localhost:8000/v1', 'BBQGOD/DeepSeek-GRM-27B'))\n"
        "result = judge.score_sync('Q?', ['a', 'bb'], k=2)\nassert result.scores == [4.0, 6.0], result.scores\n"
        "from transformers import AutoConfig\n"
        "assert AutoConfig.from_pretrained('BBQGOD/DeepSeek-GRM-27B').num_hidden_layers == 2\n"
    )
    run_page(f"'''python\n{code}'''\n")
    fails(run_page, "'''python\nprint('http://localhost:9999/v1')\n'''\n", "nothing serves port 9999")


# --- bash -----------------------------------------------------------------------------------------------------


def test_an_unknown_command_fails(run_page) -> None:
    fails(run_page, "'''bash\ncurl http://localhost:8000/v1/models\n'''\n", "command not found")


def test_shell_variables_carry_over_and_grmjudge_runs_for_real(run_page) -> None:
    work = run_page(
        "'''bash\nITEMS=items.jsonl\n'''\n\n"
        '\'\'\'bash\necho \'{"query": "Q?", "responses": ["a", "bb"]}\' > $ITEMS\n'
        "grmjudge score $ITEMS -o out.jsonl --judge openai:fake-grm --base-url http://127.0.0.1:8000/v1 --k 2 -q\n'''\n"
    )
    assert '"scores":[4.0,6.0]' in (work / "out.jsonl").read_text()


@pytest.mark.slow
def test_pip_installs_must_name_real_extras(run_page) -> None:
    run_page("'''bash\npip install \"grmjudge[hf,eval]\" uvicorn\n'''\n")
    fails(run_page, "'''bash\npip install 'grmjudge[gpu]'\n'''\n", r"grmjudge has no extra \['gpu'\]")
    fails(run_page, "'''bash\npip install requests\n'''\n", "not a package the docs may name")


@pytest.mark.slow
def test_vllm_commands_must_parse_with_vllms_own_parser(run_page) -> None:
    run_page("'''bash\nvllm serve BBQGOD/DeepSeek-GRM-27B --tensor-parallel-size 2 --max-model-len 8192 &\n'''\n")
    fails(
        run_page,
        "'''bash\nvllm serve m --tensr-parallel-size 2\n'''\n",
        "unrecognized arguments: --tensr-parallel-size",
    )
    fails(run_page, "'''bash\nvllm serve m --runner classify\n'''\n", "invalid choice: 'classify'")


@pytest.mark.slow
def test_training_commands_must_parse_with_the_stage_parser(run_page) -> None:
    marker = "<!-- docs-test: static trains on a GPU -->\n"
    sft = "grmjudge train sft --model_name_or_path m --data d.jsonl --output_dir out"
    run_page(marker + f"'''bash\n{sft} --learning_rate 1e-5 --bf16 true\n'''\n")
    fails(run_page, marker + f"'''bash\n{sft} --lerning_rate 1e-5\n'''\n", "not used by the HfArgumentParser")
    fails(run_page, marker + "'''bash\ngrmjudge train sft --data d.jsonl\n'''\n", "--model-name-or-path is required")
    fails(
        run_page,
        marker + "'''bash\naccelerate launch --config_file missing.yaml -m grmjudge.training sft\n'''\n",
        "no config file missing.yaml",
    )


@pytest.mark.slow
def test_commands_from_a_checkout_are_checked_against_the_repository(run_page) -> None:
    marker = "<!-- docs-test: static sets up a checkout -->\n"
    run_page(marker + "'''bash\nbash scripts/dev-install.sh\n.venv/bin/python -m pytest tests/docs -q\n'''\n")
    fails(run_page, marker + "'''bash\nbash scripts/no-such-script.sh\n'''\n", "no script scripts/no-such-script.sh")
    fails(run_page, "'''bash\nbash scripts/dev-install.sh\n'''\n", "outside a static block")
    fails(run_page, marker + "'''bash\n.venv/bin/python -m pytest --no-such-option\n'''\n", "unrecognized arguments")
    fails(run_page, "'''bash\n.venv/bin/python -m pytest\n'''\n", "no check is defined")  # never run for real
    fails(
        run_page,
        marker + "'''bash\npython examples/score_app.py --k eight\n'''\n",
        "argument --k: invalid int value: 'eight'",
    )


def test_a_server_command_serves_the_rest_of_the_page(run_page) -> None:
    code = "import httpx\nprint(httpx.get('http://127.0.0.1:8123/v1/models').json()['data'][0]['id'])\n"
    run_page(
        "'''bash\npython -m grmjudge.testing.fake_openai --port 8123 --model my-grm &\n'''\n\n"
        f"'''python\n{code}'''\n\n<!-- docs-test: output -->\n'''text\nmy-grm\n'''\n"
    )


# --- data -----------------------------------------------------------------------------------------------------


def test_titled_blocks_become_files_and_schemas_use_grmjudges_validation(run_page) -> None:
    work = run_page(
        "<!-- docs-test: schema judge-input -->\n"
        '\'\'\'json title="in.jsonl"\n{"query": "Q?", "responses": ["a"]}\n\'\'\'\n'
    )
    assert (work / "in.jsonl").read_text() == '{"query": "Q?", "responses": ["a"]}\n'
    fails(
        run_page,
        '<!-- docs-test: schema judge-input -->\n\'\'\'json\n{"query": "Q?", "response": ["a"]}\n\'\'\'\n',
        "row 1 is not a valid judge-input",
    )
    fails(run_page, "'''json\n{\"a\": 1,}\n'''\n", "neither one JSON value")
    fails(
        run_page,
        "<!-- docs-test: schema judgement responses=2 -->\n'''text\nScores: \\boxed{9}\n'''\n",
        "does not parse",
    )


def test_an_excerpt_must_match_the_real_file(run_page) -> None:
    write = '\'\'\'bash\necho \'{"id": "a", "scores": [1.0, 2.0], "usage": {"requests": 2}}\' > out.jsonl\n\'\'\'\n\n'
    run_page(
        write + "<!-- docs-test: excerpt out.jsonl -->\n'''json\n{\"id\": \"...\", \"scores\": [1.0, ...], ...}\n'''\n"
    )
    fails(
        run_page,
        write + "<!-- docs-test: excerpt out.jsonl -->\n'''json\n{\"id\": \"a\", \"scores\": [2.0, 1.0], ...}\n'''\n",
        re.escape("scores[0] is 1.0, the excerpt shows 2.0"),
    )
    fails(
        run_page,
        write + "<!-- docs-test: excerpt out.jsonl -->\n'''json\n{\"id\": \"a\", \"scores\": [1.0, 2.0]}\n'''\n",
        re.escape("also has ['usage']"),
    )
