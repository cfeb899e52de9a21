"""Stand-in judge servers for the example scripts, served by uvicorn in their own process.

``python -m tests.examples.servers --port N --provider openai|anthropic --reply position-biased|noisy-teacher
[--api-key KEY]`` (``tests.servers.serve`` runs it and waits until it answers).

- ``position-biased``: a hosted chat model. Asked with the LLM-as-a-Judge template to name the best response, it
  always names the one shown first (complete position bias); with a GRM template it writes the fake GRM's
  content-based judgement (response i scores ``1 + len(text_i) % 10``).
- ``noisy-teacher``: a teacher for rejection sampling. With a hint ("The best response is: Response j") it
  scores j highest; without one it picks a best response from the request's seed, so it is right about as often
  as chance and its samples of one item disagree.

``--api-key`` makes the server refuse any other key; the OpenAI stand-in then echoes the key it was sent in its
401 body, as a careless server would, so the tests can check that no client repeats it.
"""

from __future__ import annotations

import argparse
import random
import re
from typing import Any

from grmjudge.prompts import HINT_SUFFIX, LLM_AS_JUDGE_TEMPLATE
from grmjudge.testing.fake_anthropic import FakeAnthropicServer
from grmjudge.testing.fake_openai import FakeRequest, default_judgement
from tests.cli.servers import LatencyServer

_BASELINE_HEAD = LLM_AS_JUDGE_TEMPLATE.text.split("{context}")[0]
_NUMBERED_BLOCK = re.compile(r"^\[The Begin of Response (\d+)\]$", re.MULTILINE)
_HINT = re.compile(re.escape(HINT_SUFFIX.split("{")[0]) + r"(\d+)\s*$")
_HEAD = "Specific Criteria: Accuracy (Weight: 100%).\nAnalysis: "


def position_biased(request: FakeRequest, index: int) -> str:
    """Name Response 1 as the best with the LLM-as-a-Judge template; judge by content otherwise."""
    if request.prompt_text.startswith(_BASELINE_HEAD):
        return "Analysis: Response 1 looks best.\n\\boxed{1}"
    return default_judgement(request, index)


def noisy_teacher(request: FakeRequest, index: int) -> str:
    """Follow the hint if there is one, else a best response drawn from the choice's seed (vLLM: seed + index)."""
    prompt = request.prompt_text
    n = len(_NUMBERED_BLOCK.findall(prompt))
    hint = _HINT.search(prompt)
    if hint is not None:
        best = int(hint.group(1)) - 1
    else:
        best = random.Random(int(request.body.get("seed") or 0) + index).randrange(max(n, 1))
    if n == 0:  # the single-response 0/1 template
        return f"{_HEAD}checked.\nScores: \\boxed{{{best % 2}}}"
    scores = ", ".join("9" if i == best else "3" for i in range(n))
    return f"{_HEAD}Response {best + 1} is the most accurate.\nScores: \\boxed{{{scores}}}"


REPLIES = {"position-biased": position_biased, "noisy-teacher": noisy_teacher}


def build(args: argparse.Namespace) -> Any:
    """The ASGI app: the package's fake servers with the chosen reply (and key check)."""
    reply = REPLIES[args.reply]
    if args.provider == "anthropic":
        return FakeAnthropicServer(reply, api_key=args.api_key)
    options = {
        "delay": 0.0,
        "record": None,
        "slow_marker": None,
        "slow_delay": 0.0,
        "slow_until": None,
        "max_model_len": None,
    }
    server = LatencyServer(argparse.Namespace(**options, require_key=args.api_key))
    server.inner.reply = reply
    return server


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--provider", choices=["openai", "anthropic"], default="openai")
    parser.add_argument("--reply", choices=sorted(REPLIES), default="position-biased")
    parser.add_argument("--api-key")
    args = parser.parse_args()
    uvicorn.run(build(args), host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
