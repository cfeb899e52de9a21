"""A careless server for the secrets tests: it echoes the credential it receives everywhere a server can.

Run ``python -m tests.echo_server --port N`` (``tests.servers.serve`` does it and waits until it answers). It
speaks the OpenAI chat API and ``/v1/models`` (the package's fake GRM), Anthropic's Messages API and vLLM's
``/classify``. Every response carries the credential (the ``authorization`` or ``x-api-key`` header as sent) in
its headers. A marker in the request body picks the answer:

* ``echo-401``, ``echo-429``, ``echo-500``: that status, whose JSON error message ends with the credential,
  padded so that it starts at byte ``STRADDLE`` of the body and runs past the first 500 bytes;
* ``echo-not-json``: a 200 whose body is HTML quoting the credential;
* ``echo-long-number``, ``echo-deep``: a 200 whose JSON body quotes the credential and then holds what Python's
  decoder refuses: an integer of 5,000 digits, or 100,000 levels of nesting;
* none: a valid answer; judgements end with a line quoting the credential after the boxed scores.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from grmjudge.testing._asgi import ASGIMessage, Receive, Scope, Send, read_body, send_json, serve_asgi
from grmjudge.testing.fake_anthropic import FakeAnthropicServer
from grmjudge.testing.fake_openai import FakeOpenAIServer, FakeRequest, default_judgement

STRADDLE = 480
"""Where the echoed credential starts in an error body: 20 bytes before a 500-byte excerpt would cut it."""

_ERRORS = {b"echo-401": 401, b"echo-429": 429, b"echo-500": 500}
_UNREADABLE_JSON: dict[bytes, Callable[[str], bytes]] = {
    b"echo-long-number": lambda secret: f'{{"error": "{secret}", "n": {"9" * 5000}}}'.encode(),
    b"echo-deep": lambda secret: f'{{"error": "{secret}", "n": {"[" * 100_000}{"]" * 100_000}}}'.encode(),
}


def leaked(secret: str, artefact: str | bytes) -> list[str]:
    """Every 8-character run of ``secret`` found in ``artefact``: the key, its prefixes and any other piece."""
    text = artefact.decode(errors="replace") if isinstance(artefact, bytes) else artefact
    return [secret[i : i + 8] for i in range(len(secret) - 7) if secret[i : i + 8] in text]


def credential(headers: dict[str, str]) -> str:
    """The credential a client sent, as sent (``Bearer ...`` or the bare ``x-api-key``)."""
    return headers.get("authorization") or headers.get("x-api-key") or ""


def judgement_quoting_the_key(request: FakeRequest, index: int) -> str:
    """The fake GRM's judgement, then a line that repeats the credential (a model that read it somewhere)."""
    return f"{default_judgement(request, index)}\nI was called with {credential(request.headers)}."


def straddling_error(secret: str) -> dict[str, Any]:
    """An error body whose message ends with ``secret``, starting at byte ``STRADDLE`` of the JSON."""
    opening = len(json.dumps({"error": {"message": ""}}, separators=(",", ":"))) - 3
    return {"error": {"message": "x" * (STRADDLE - opening) + secret}}


class EchoServer:
    """Routes to the fake OpenAI and Anthropic servers, adding the credential to every response's headers."""

    def __init__(self) -> None:
        self.openai = FakeOpenAIServer(judgement_quoting_the_key)
        self.anthropic = FakeAnthropicServer(judgement_quoting_the_key)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await serve_asgi(scope, receive, send, self._http)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        secret = credential(headers)
        echo = [(b"x-echo-credential", secret.encode("latin-1")), (b"www-authenticate", secret.encode("latin-1"))]

        async def send_echoing(message: ASGIMessage) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *echo]}
            await send(message)

        body = await read_body(receive)
        if body is None:
            return
        if await self._refuse(body, secret, send_echoing):
            return
        if scope["path"] == "/classify":
            await send_json(send_echoing, 200, {"data": [{"probs": [0.5], "label": secret}], "model": secret})
            return

        async def replay() -> ASGIMessage:
            return {"type": "http.request", "body": body, "more_body": False}

        app = self.anthropic if scope["path"] == "/v1/messages" else self.openai
        await app(scope, replay, send_echoing)

    async def _refuse(self, body: bytes, secret: str, send: Send) -> bool:
        """Answer a marked request with its error; whether it was one."""
        for marker, status in _ERRORS.items():
            if marker in body:
                retry_after = [(b"retry-after", b"0")] if status == 429 else [(b"retry-after", secret.encode())]
                await send_json(send, status, straddling_error(secret), retry_after)
                return True
        for marker, payload in _UNREADABLE_JSON.items():
            if marker in body:
                await send_bytes(send, 200, payload(secret), b"application/json")
                return True
        if b"echo-not-json" in body:
            page = f"<html><body>Bad gateway for {secret}</body></html>".encode()
            await send_bytes(send, 200, page, b"text/html")
            return True
        return False


async def send_bytes(send: Send, status: int, body: bytes, content_type: bytes) -> None:
    """Answer ``status`` with ``body`` as it is."""
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(EchoServer(), host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
