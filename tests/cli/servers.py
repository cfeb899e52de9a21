"""A real OpenAI-compatible server for the CLI tests: the package's fake GRM with latency, a request log,
a slow item, a context limit, a key check and a ``/classify`` meta RM.

Run ``python -m tests.cli.servers --port N [options]`` (``tests.servers.serve`` does it and waits until it answers).
Every generation request is appended to ``--record`` as one JSON line ``{t, body}`` *when it arrives*, before any
delay, so requests that were in flight when a client was killed are in the log too. ``--slow-until PATH`` holds
the slow item's requests until PATH exists (a test creates it at teardown), instead of a fixed ``--slow-delay``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import IO, Any

import anyio

from grmjudge.testing.fake_openai import FakeOpenAIServer, Receive, Scope, Send

GENERATION_PATHS = ("/v1/chat/completions", "/v1/completions")


class LatencyServer:
    """Wraps ``FakeOpenAIServer``: records, delays, checks the key, and answers ``/classify``."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.inner = FakeOpenAIServer(max_model_len=args.max_model_len)
        self.delay: float = args.delay
        self.slow_marker: str | None = args.slow_marker
        self.slow_delay: float = args.slow_delay
        self.release: Path | None = Path(args.slow_until) if args.slow_until else None
        self.required_key: str | None = args.require_key
        self.log: IO[str] | None = open(args.record, "a", buffering=1) if args.record else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in (*GENERATION_PATHS, "/classify"):
            await self.inner(scope, receive, send)
            return
        body = await _read(receive)
        if scope["path"] == "/classify":
            await _answer(send, 200, _classification(json.loads(body)))
            return
        if self.log is not None:
            self.log.write(json.dumps({"t": time.time(), "body": json.loads(body)}) + "\n")
        if self.required_key is not None:
            sent = dict(scope["headers"]).get(b"authorization", b"").decode()
            if sent != f"Bearer {self.required_key}":
                # a careless server that echoes the key it was sent: the client must not repeat it anywhere
                error = {"error": {"message": f"Incorrect API key provided: {sent.removeprefix('Bearer ')}"}}
                await _answer(send, 401, error)
                return
        slow = self.slow_marker is not None and self.slow_marker.encode() in body
        await anyio.sleep(self.slow_delay if slow else self.delay)
        while slow and self.release is not None and not self.release.exists():  # noqa: ASYNC110 (another process)
            await anyio.sleep(0.05)

        async def replay() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        await self.inner(scope, replay, send)


def _classification(body: dict[str, Any]) -> dict[str, Any]:
    judgement = body["messages"][-1]["content"]
    return {"data": [{"probs": [len(judgement) % 7 / 7]}], "usage": {"prompt_tokens": 1, "total_tokens": 1}}


async def _read(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _answer(send: Send, status: int, payload: dict[str, Any]) -> None:
    data = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--record")
    parser.add_argument("--slow-marker")
    parser.add_argument("--slow-delay", type=float, default=0.0)
    parser.add_argument("--slow-until", metavar="PATH")
    parser.add_argument("--max-model-len", type=int)
    parser.add_argument("--require-key")
    args = parser.parse_args()
    uvicorn.run(LatencyServer(args), host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
