r"""An on-disk cache of generated samples, so a re-run or a resumed batch makes no request it already made.

A sample is keyed by everything that determines it: backend kind, model, template hash, sampling parameters,
the request's seed, the sample's position in that request, and the rendered prompt. Only what the model
wrote is stored (text and finish reason): no credentials, no headers, no URLs. HTTP backends redact their keys
from texts before they get here.

A text that is not valid Unicode (a lone surrogate such as ``"\ud800"``, which a JSON body can carry) cannot be
stored as SQLite text; it is stored as a blob of its ``surrogatepass`` UTF-8 bytes and read back unchanged, so
caching never fails a run and a rerun sees exactly what the first run saw.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import anyio.to_thread

from grmjudge._lifecycle import Closable
from grmjudge.types import Completion, FinishReason, GenerationRequest

_SCHEMA = "CREATE TABLE IF NOT EXISTS samples (key TEXT PRIMARY KEY, text TEXT NOT NULL, finish_reason TEXT NOT NULL)"


def sample_keys(backend: str, model: str, template_hash: str, request: GenerationRequest) -> list[str]:
    """One key per completion of ``request``; equal keys mean an identical generation would be asked for."""
    base = json.dumps(
        {
            "backend": backend,
            "model": model,
            "template": template_hash,
            "messages": [[m.role, m.content] for m in request.messages],
            "temperature": request.temperature,
            "top_p": request.top_p,
            "max_tokens": request.max_tokens,
            "seed": request.seed,
            "extra_body": dict(request.extra_body or {}),
        },
        sort_keys=True,
        default=str,
    )
    digest = hashlib.sha256(base.encode()).hexdigest()
    return [f"{digest}:{i}" for i in range(request.n)]


class SampleCache(Closable, ABC):
    """Stores completions by sample key; ``aclose`` releases the store."""

    @abstractmethod
    async def get_many(self, keys: Sequence[str]) -> dict[str, Completion]:
        """The cached completions among ``keys`` (missing keys are absent)."""

    @abstractmethod
    async def put_many(self, entries: Mapping[str, Completion]) -> None:
        """Store completions; all of them or none."""


class SQLiteCache(SampleCache):
    """A SQLite file in WAL mode, created with mode 0600; reads and writes run in a worker thread.

    Each ``put_many`` is one transaction, so a process killed mid-write leaves either the whole request's
    samples or none of them.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._connection = _open(self.path)

    def __repr__(self) -> str:
        return f"SQLiteCache(path={str(self.path)!r})"

    async def get_many(self, keys: Sequence[str]) -> dict[str, Completion]:
        return await anyio.to_thread.run_sync(self._get_many, list(keys))

    async def put_many(self, entries: Mapping[str, Completion]) -> None:
        rows = [(key, _storable(c.text), c.finish_reason) for key, c in entries.items()]
        await anyio.to_thread.run_sync(self._put_many, rows)

    async def aclose(self) -> None:
        with self._lock:
            self._connection.close()
        await super().aclose()

    def count(self) -> int:
        """How many samples the cache holds."""
        with self._lock:
            (count,) = self._connection.execute("SELECT COUNT(*) FROM samples").fetchone()
        return int(count)

    def _get_many(self, keys: list[str]) -> dict[str, Completion]:
        marks = ",".join("?" * len(keys))
        with self._lock:
            rows: list[Any] = self._connection.execute(
                f"SELECT key, text, finish_reason FROM samples WHERE key IN ({marks})", keys
            ).fetchall()
        return {key: Completion(text=_text(text), finish_reason=_finish(reason)) for key, text, reason in rows}

    def _put_many(self, rows: list[tuple[str, str | bytes, str]]) -> None:
        with self._lock, self._connection:
            self._connection.executemany("INSERT OR REPLACE INTO samples VALUES (?, ?, ?)", rows)


def _open(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    connection = sqlite3.connect(path, check_same_thread=False, isolation_level="DEFERRED")
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute(_SCHEMA)
    connection.commit()
    for suffix in ("-wal", "-shm"):  # SQLite creates these with the umask; keep them private too
        side = path.with_name(path.name + suffix)
        if side.exists():
            side.chmod(0o600)
    return connection


def _storable(text: str) -> str | bytes:
    """The text as is, or its ``surrogatepass`` bytes when it holds a lone surrogate (invalid UTF-8).

    The judge never caches such a text (the sample fails as ``invalid_text``); a caller's own ``put_many`` can.
    """
    try:
        text.encode()
    except UnicodeEncodeError:
        return text.encode(errors="surrogatepass")
    return text


def _text(stored: str | bytes) -> str:
    return stored.decode(errors="surrogatepass") if isinstance(stored, bytes) else stored


def _finish(value: str) -> FinishReason:
    return value if value in ("stop", "length") else "other"  # type: ignore[return-value]
