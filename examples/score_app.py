"""Pick the best of a few candidate answers inside an application, with grmjudge's blocking API.

An assistant has drafted several answers to a user's question and must show one. It asks a generative reward
model (GRM) for k judgements, each seeing the candidates in a different order, sums the scores per candidate
and shows the winner. When no judgement can be read (the model broke the output format, the server was down),
grmjudge raises a typed `NoVerdictError` instead of inventing a score, and the app falls back to its first
draft. Bad input (no candidates, an empty question) is an `InvalidInputError` raised before anything is sent.

Run it against a GRM served by vLLM:

    vllm serve BBQGOD/DeepSeek-GRM-27B --port 8000
    python examples/score_app.py --base-url http://127.0.0.1:8000/v1 --model BBQGOD/DeepSeek-GRM-27B --k 8

Add meta-guided voting with a meta RM served as a classifier (only the best half of the judgements vote):

    vllm serve runs/meta-rm --served-model-name meta-rm --runner pooling --convert classify --port 8001
    python examples/score_app.py --k 8 --meta-url http://127.0.0.1:8001 --meta-model meta-rm

Your own question: ``--question "..." --candidate "first answer" --candidate "second answer"``. A server that
wants a key reads it from ``OPENAI_API_KEY``; it is sent as a header only. Without a GPU, try the fake GRM
(``python -m grmjudge.testing.fake_openai --port 8000 --model BBQGOD/DeepSeek-GRM-27B``): its judgements are
well formed and meaningless. Exit status: 0 the judge picked an answer, 1 no verdict (the fallback was shown),
2 the input could not be judged.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import anyio

from grmjudge import BackendError, InvalidInputError, Judge, JudgeSettings, NoVerdictError, ScoreResult
from grmjudge.backends import OpenAIBackend
from grmjudge.meta import HTTPMetaScorer

QUESTION = "My script fails with 'ModuleNotFoundError: No module named requests'. How do I fix it?"
CANDIDATES = (
    "Install the package into the interpreter that runs the script: `python -m pip install requests`. "
    "If you use a virtual environment, activate it first, then run the script again.",
    "Rename your script to requests.py so that Python finds the module.",
    "Reinstall Python.",
)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line: server URLs and models are arguments, so the app runs against any deployment."""
    parser = argparse.ArgumentParser(description="Pick the best candidate answer with a GRM.")
    parser.add_argument("--base-url", default="http://127.0.0.1:8000/v1", help="the GRM server's OpenAI base URL")
    parser.add_argument("--model", default="BBQGOD/DeepSeek-GRM-27B", help="the model name the server serves")
    parser.add_argument("--k", type=int, default=8, help="judgements to sample and sum (default 8)")
    parser.add_argument("--max-tokens", type=int, default=2048, help="token limit of one judgement")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per request")
    parser.add_argument("--meta-url", help="root URL of a meta RM served by vLLM as a classifier (enables meta=True)")
    parser.add_argument("--meta-model", default="meta-rm", help="the meta RM's served model name")
    parser.add_argument("--question", default=QUESTION)
    parser.add_argument("--candidate", action="append", help="a candidate answer (repeat; default: three built in)")
    return parser.parse_args(argv)


def build_judge(args: argparse.Namespace) -> Judge:
    """A judge on the GRM server, with the meta RM when one is given."""
    backend = OpenAIBackend(args.base_url, args.model, timeout=args.timeout)
    meta = HTTPMetaScorer(args.meta_url, args.meta_model, timeout=args.timeout) if args.meta_url else None
    # raise_on_no_verdict turns "every judgement failed" into an exception the app handles in one place
    settings = JudgeSettings(max_tokens=args.max_tokens, raise_on_no_verdict=True)
    return Judge(backend, meta=meta, settings=settings)


def show(result: ScoreResult, candidates: Sequence[str]) -> None:
    """Print each candidate's summed score, the sample counts, one critique and the winner."""
    assert result.scores is not None and result.best is not None  # a verdict: no_verdict raised otherwise
    for index, (score, text) in enumerate(zip(result.scores, candidates, strict=True)):
        marker = "  <- best" if index == result.best else ""
        print(f"  candidate {index}: score {score:g}  {text[:60]!r}{marker}")
    voted = f", {result.n_kept} kept by the meta RM" if result.provenance.meta else ""
    print(f"samples: {result.n_valid} valid of {len(result.samples)}{voted}")
    why = next((s.critique for s in result.samples if s.kept and s.critique), None)
    if why:
        print(f"one critique: {why[:200]!r}")
    print(f"best: {result.best}")


def main(argv: Sequence[str] | None = None) -> int:
    """Score the candidates and show the best; see the module docstring for the exit status."""
    args = parse_args(argv)
    candidates: Sequence[str] = args.candidate or CANDIDATES
    judge = build_judge(args)
    print(f"question: {args.question!r}")
    try:
        result = judge.score_sync(args.question, candidates, k=args.k, meta=judge.meta is not None)
    except InvalidInputError as exc:  # nothing was sent: the input itself cannot be judged
        print(f"cannot judge this input: {exc}", file=sys.stderr)
        return 2
    except NoVerdictError as exc:  # failures are counted by reason: no_boxed, truncated, BackendConnectionError, ...
        reasons = ", ".join(f"{reason} x{count}" for reason, count in sorted(exc.no_verdict.failures.items()))
        print(f"no verdict ({reasons}); showing the first draft", file=sys.stderr)
        print("best: none (fallback 0)")
        return 1
    except BackendError as exc:  # the meta RM failed (the GRM's own failures are recorded on the samples)
        print(f"the meta RM failed: {type(exc).__name__}", file=sys.stderr)
        return 1
    finally:
        anyio.run(judge.aclose)
    show(result, candidates)
    return 0


if __name__ == "__main__":
    sys.exit(main())
