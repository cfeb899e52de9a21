r"""A fault-injecting OpenAI-compatible server: test that a pipeline survives a server that misbehaves.

[`FaultyOpenAIServer`][grmjudge.testing.faults.FaultyOpenAIServer] wraps an OpenAI-compatible ASGI app (by
default a [`FakeOpenAIServer`][grmjudge.testing.fake_openai.FakeOpenAIServer]) and gives each generation request
at most one fault, drawn with the probabilities of a [`FaultPlan`][grmjudge.testing.faults.FaultPlan]: an HTTP
error (429, 500, 503), a reply that comes too late, a dropped connection, a 200 whose body is cut or is not JSON,
or a well-formed completion whose judgement cannot be scored (cut at the token limit, the wrong number of
scores, no ``\boxed{}``).

The draw for a request depends only on the seed, the request's path and body, and how many times that same
request arrived before. So a run reproduces however the client interleaves its requests, and the retry of a
failed request (the same body again) gets a fresh draw. The server counts the requests it received and the
faults it injected, in-process ([`stats`][grmjudge.testing.faults.FaultyOpenAIServer.stats]) and over HTTP
(``GET /faults/stats``), so a test can hold the client's accounting against the server's.

Serve it over TCP with ``python -m grmjudge.testing.faults --port 8123 --rate-429 0.05 --rate-dropped 0.01``
(needs ``uvicorn``); dropping a connection needs a server that exposes it, which uvicorn does.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import re
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from enum import StrEnum
from typing import Annotated, Any, Protocol, Self, cast, runtime_checkable

import anyio
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from grmjudge.testing._asgi import ASGIMessage, Receive, Scope, Send, read_body, send_json, serve_over_tcp
from grmjudge.testing.fake_openai import FakeOpenAIServer

ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

STATS_PATH = "/faults/stats"
"""Where ``GET`` answers the counters, as the JSON of a [`FaultStats`][grmjudge.testing.faults.FaultStats]."""

_GENERATION_PATHS = frozenset({"/v1/chat/completions", "/v1/completions"})
_LAST_BOX = re.compile(r"\\boxed\{([^{}]*)\}(?!.*\\boxed\{)", re.DOTALL)

Rate = Annotated[float, Field(ge=0.0, le=1.0)]


class FaultKind(StrEnum):
    """What can go wrong with one generation request; each value is also a field of `FaultPlan`."""

    STATUS_429 = "status_429"
    """429 with a ``Retry-After`` header: the client should wait and retry."""
    STATUS_500 = "status_500"
    """500 with an OpenAI-style error body: retried."""
    STATUS_503 = "status_503"
    """503, with a ``Retry-After`` header when the plan sets one: retried."""
    SLOW = "slow"
    """A correct reply, sent after ``slow_delay`` seconds: a timeout when that exceeds the client's timeout."""
    DROPPED = "dropped"
    """The connection is closed before any byte of a response: the client sees the server disconnect."""
    TRUNCATED_JSON = "truncated_json"
    """A 200 whose body is the first half of the completion's JSON (with a matching Content-Length)."""
    INVALID_JSON = "invalid_json"
    """A 200 whose body is the whole completion with single quotes for double quotes: not JSON."""
    LENGTH = "length"
    """Every choice is cut to half its words and finishes with ``"length"``: a truncated judgement."""
    WRONG_COUNT = "wrong_count"
    r"""Every choice's last ``\boxed{...}`` gets one score too many."""
    NO_BOX = "no_box"
    r"""Every choice loses its ``\boxed{`` markers, so the scores are not boxed."""


_RETRYABLE = frozenset(
    {FaultKind.STATUS_429, FaultKind.STATUS_500, FaultKind.STATUS_503, FaultKind.SLOW, FaultKind.DROPPED}
)
_STATUS = {
    FaultKind.STATUS_429: (429, "rate_limit_error", "Rate limit reached (injected fault)"),
    FaultKind.STATUS_500: (500, "server_error", "The server had an error (injected fault)"),
    FaultKind.STATUS_503: (503, "server_error", "The server is overloaded (injected fault)"),
}


class FaultPlan(BaseModel):
    """How often each fault happens: the probability that a generation request gets it.

    Every rate is in [0, 1] and they add up to at most 1 (a request gets at most one fault). The other fields
    shape the faults: the ``Retry-After`` seconds sent with a 429 (``retry_after_429``) and a 503
    (``retry_after_503``; ``None`` sends no header), and how long a slow reply takes (``slow_delay``; set it
    above the client's timeout to see timeouts). Fractional ``Retry-After`` values are not standard HTTP, but
    grmjudge honours them, which keeps tests fast.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    status_429: Rate = 0.0
    status_500: Rate = 0.0
    status_503: Rate = 0.0
    slow: Rate = 0.0
    dropped: Rate = 0.0
    truncated_json: Rate = 0.0
    invalid_json: Rate = 0.0
    length: Rate = 0.0
    wrong_count: Rate = 0.0
    no_box: Rate = 0.0
    retry_after_429: float | None = Field(default=1.0, ge=0.0)
    retry_after_503: float | None = Field(default=None, ge=0.0)
    slow_delay: float = Field(default=5.0, ge=0.0)

    @model_validator(mode="after")
    def _total_at_most_one(self) -> Self:
        total = math.fsum(self.rates().values())
        if total > 1.0 + 1e-9:
            given = ", ".join(f"{kind.value}={rate:g}" for kind, rate in self.rates().items() if rate)
            raise ValueError(f"the fault rates add up to {total:g}, more than 1 ({given})")
        return self

    def rates(self) -> dict[FaultKind, float]:
        """Every kind's rate, in `FaultKind` order."""
        return {kind: cast(float, getattr(self, kind.value)) for kind in FaultKind}

    def pick(self, u: float) -> FaultKind | None:
        """The fault for a uniform draw ``u`` in [0, 1): the kinds take consecutive slices of [0, 1)."""
        edge = 0.0
        for kind, rate in self.rates().items():
            edge += rate
            if u < edge:
                return kind
        return None


class FaultStats(BaseModel):
    """What a server received and did: generation requests, and faults injected by kind (every kind listed)."""

    model_config = ConfigDict(frozen=True)

    requests: int
    injected: dict[FaultKind, int]

    @property
    def faults(self) -> int:
        """How many requests got a fault."""
        return sum(self.injected.values())

    @property
    def retryable_faults(self) -> int:
        """Faults a client retries: 429, 500, 503, slow (when it times out) and dropped connections."""
        return sum(count for kind, count in self.injected.items() if kind in _RETRYABLE)


class ConnectionDropped(ConnectionError):
    """Raised by the app for a dropped-connection fault where the server gives it no connection to close.

    In-process transports (``httpx.ASGITransport``) have no connection, so they pass this exception to the
    client instead; serve the app with uvicorn to drop connections for real.
    """


@runtime_checkable
class _Abortable(Protocol):
    def abort(self) -> None: ...


class FaultyOpenAIServer:
    r"""An OpenAI-compatible ASGI app that injects the faults of a `FaultPlan` into generation requests.

    Generation requests are ``POST /v1/chat/completions`` and ``POST /v1/completions``; everything else goes to
    the wrapped ``app`` untouched (default: a [`FakeOpenAIServer`][grmjudge.testing.fake_openai.FakeOpenAIServer]
    that does not record requests), and ``GET /faults/stats`` answers the counters. Faults that rewrite a reply
    (bad JSON, length, wrong count, no box) apply only to the wrapped app's 200s; its other answers (a 400
    for a bad body) pass through. ``wrong_count`` and ``no_box`` edit ``\boxed{...}``, so a reply without a box
    is sent as it is. A fault that changed nothing is not counted, so the counters say what clients got. Each
    distinct request is remembered (16 bytes and a count) so that its retries get fresh draws.
    """

    def __init__(self, plan: FaultPlan | None = None, *, seed: int = 0, app: ASGIApp | None = None) -> None:
        self.plan = plan or FaultPlan()
        self.seed = seed
        self.app: ASGIApp = app or FakeOpenAIServer(record=False)
        self._requests = 0
        self._injected: Counter[FaultKind] = Counter()
        self._seen: dict[bytes, int] = {}

    def stats(self) -> FaultStats:
        """A snapshot of the counters."""
        return FaultStats(requests=self._requests, injected={kind: self._injected[kind] for kind in FaultKind})

    def draw(self, path: str, body: bytes) -> FaultKind | None:
        """The fault for the next arrival of this request (and count the arrival)."""
        request = path.encode() + b"\0" + body
        key = hashlib.blake2b(request, digest_size=16).digest()
        arrival = self._seen.get(key, 0)
        self._seen[key] = arrival + 1
        digest = hashlib.blake2b(f"{self.seed}\0{arrival}\0".encode() + request, digest_size=8).digest()
        return self.plan.pick(int.from_bytes(digest) / 2**64)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI 3 entry point."""
        if scope["type"] == "http" and scope["path"] == STATS_PATH:
            await self._send_stats(scope, send)
        elif scope["type"] == "http" and scope["method"] == "POST" and scope["path"] in _GENERATION_PATHS:
            await self._generation(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _send_stats(self, scope: Scope, send: Send) -> None:
        if scope["method"] != "GET":
            error = {"error": {"message": f"method {scope['method']} not allowed on {STATS_PATH}"}}
            await send_json(send, 405, error, [(b"allow", b"GET")])
            return
        await send_json(send, 200, self.stats().model_dump(mode="json"))

    async def _generation(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = await read_body(receive)
        if raw is None:
            return  # the client went away before sending its request
        self._requests += 1
        fault = self.draw(scope["path"], raw)
        if fault is None:
            await self.app(scope, _replay(raw, receive), send)
            return
        if fault in _STATUS:
            self._injected[fault] += 1
            await self._send_status(fault, send)
        elif fault == FaultKind.SLOW:
            self._injected[fault] += 1
            await anyio.sleep(self.plan.slow_delay)
            await self.app(scope, _replay(raw, receive), send)
        elif fault == FaultKind.DROPPED:
            self._injected[fault] += 1
            await _drop(receive, send)
        else:
            await self._rewrite(fault, scope, raw, receive, send)

    async def _send_status(self, fault: FaultKind, send: Send) -> None:
        status, error_type, message = _STATUS[fault]
        seconds = {429: self.plan.retry_after_429, 503: self.plan.retry_after_503}.get(status)
        headers = [(b"retry-after", f"{seconds:g}".encode())] if seconds is not None else []
        await send_json(send, status, {"error": {"message": message, "type": error_type, "param": None}}, headers)

    async def _rewrite(self, fault: FaultKind, scope: Scope, raw: bytes, receive: Receive, send: Send) -> None:
        """Let the wrapped app answer, then damage its 200 the way ``fault`` says (counted if it changed)."""
        status, headers, body = await _capture(self.app, scope, _replay(raw, receive))
        damaged = _damage(fault, body) if status == 200 else None
        if damaged is not None:
            self._injected[fault] += 1
            body = damaged
        kept = [(name, value) for name, value in headers if name.lower() != b"content-length"]
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [*kept, (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _replay(raw: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the already-read body to the wrapped app, then listens to the client again."""
    pending = [{"type": "http.request", "body": raw, "more_body": False}]

    async def replay() -> ASGIMessage:
        return pending.pop() if pending else await receive()

    return replay


async def _capture(app: ASGIApp, scope: Scope, receive: Receive) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Run ``app`` and collect its response: status, headers and the whole body."""
    start: dict[str, Any] = {}
    chunks: list[bytes] = []

    async def send(message: ASGIMessage) -> None:
        if message["type"] == "http.response.start":
            start.update(message)
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return cast(int, start["status"]), list(start.get("headers", [])), b"".join(chunks)


async def _drop(receive: Receive, send: Send) -> None:
    """Close the connection without a response; wait until the server has noticed, so it sends no 500."""
    # uvicorn binds ``send`` to the request's cycle, which holds the connection's transport
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if not isinstance(transport, _Abortable):
        raise ConnectionDropped("dropped-connection fault: this server gives the app no connection to close")
    transport.abort()
    while (await receive())["type"] != "http.disconnect":
        pass


def _damage(fault: FaultKind, body: bytes) -> bytes | None:
    """A completion body as ``fault`` leaves it; ``None`` when the fault finds nothing to damage."""
    if fault == FaultKind.TRUNCATED_JSON:
        return body[: len(body) // 2] if body else None
    if fault == FaultKind.INVALID_JSON:
        return body.replace(b'"', b"'") if b'"' in body else None
    payload = json.loads(body)
    changed = [_damage_choice(fault, choice) for choice in cast(list[dict[str, Any]], payload.get("choices", []))]
    return json.dumps(payload, separators=(",", ":")).encode() if any(changed) else None


def _damage_choice(fault: FaultKind, choice: dict[str, Any]) -> bool:
    """Damage one choice in place; whether there was something to damage."""
    message = cast(dict[str, Any] | None, choice.get("message"))
    holder, key = (message, "content") if message is not None else (choice, "text")
    text = cast(str | None, holder.get(key)) or ""
    if fault == FaultKind.LENGTH:
        words = text.split()
        holder[key] = " ".join(words[: len(words) // 2])
        choice["finish_reason"] = "length"
        return True
    if fault == FaultKind.WRONG_COUNT:
        holder[key], boxes = _LAST_BOX.subn(lambda box: f"\\boxed{{{box[1]}, {_last_score(box[1])}}}", text)
        return boxes > 0
    holder[key] = text.replace("\\boxed{", "{")
    return holder[key] != text


def _last_score(box: str) -> str:
    """The last score of a box's content, repeated to make one score too many."""
    return box.split(",")[-1].strip() or "1"


def _flag(kind: FaultKind) -> str:
    """The command-line flag of a kind's rate: ``--rate-429``, ``--rate-slow``, ``--rate-truncated-json``..."""
    return "--rate-" + kind.value.removeprefix("status_").replace("_", "-")


def _optional_seconds(value: str) -> float | None:
    return None if value.lower() == "none" else float(value)


def _parse_args(argv: Sequence[str] | None) -> tuple[FaultPlan, argparse.Namespace]:
    """The plan and the other options of the command line (exits with a usage error on a bad plan)."""
    parser = argparse.ArgumentParser(description="Serve a fake OpenAI-compatible GRM that injects faults.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8123)
    parser.add_argument("--model", default="fake-grm")
    parser.add_argument("--seed", type=int, default=0)
    for kind in FaultKind:
        parser.add_argument(_flag(kind), dest=kind.value, type=float, default=0.0, metavar="P")
    parser.add_argument("--retry-after-429", type=_optional_seconds, default=1.0, metavar="SECONDS|none")
    parser.add_argument("--retry-after-503", type=_optional_seconds, default=None, metavar="SECONDS|none")
    parser.add_argument("--slow-delay", type=float, default=5.0, metavar="SECONDS")
    args = parser.parse_args(argv)
    fields = [*(kind.value for kind in FaultKind), "retry_after_429", "retry_after_503", "slow_delay"]
    try:
        plan = FaultPlan.model_validate({name: getattr(args, name) for name in fields})
    except ValidationError as exc:
        parser.error(str(exc))
    return plan, args


def main(argv: Sequence[str] | None = None) -> None:
    """Serve the fault-injecting fake GRM over TCP with uvicorn, quietly."""
    plan, args = _parse_args(argv)

    server = FaultyOpenAIServer(plan, seed=args.seed, app=FakeOpenAIServer(model=args.model, record=False))
    serve_over_tcp(server, args.host, args.port)


if __name__ == "__main__":
    main()
