"""The one place secrets are taken out of text: every server-provided string, error and CLI line goes through it.

Keys travel only in request headers, but a careless server may echo one anywhere: an error body, a completion
text, a header. The HTTP layer knows its keys (from its credential headers) and redacts what it returns, so
results, exceptions and caches never hold them; the CLI redacts the keys of its environment once more.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

MARK = "[REDACTED]"
MIN_SECRET_LENGTH = 8
"""Shorter values ("EMPTY", "none") are placeholders, not keys; redacting them would rewrite ordinary words."""
MIN_PREFIX_RUN = 12
"""The shortest run of a key's first characters redacted on its own (see :func:`prefix_run`)."""

KEY_VARIABLES = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY")
"""The environment variables the backends read their keys from."""

_CREDENTIAL_WORDS = ("auth", "key", "token", "secret", "cookie", "password")
_LIBRARY_LOGGERS = ("httpcore.connection", "httpcore.http11", "httpcore.http2", "httpcore.proxy", "httpcore.socks")
"""httpcore's DEBUG trace logs response headers as received, so a header echoing a key would reach the logs."""


def prefix_run(secret: str) -> int:
    """How many of a key's first characters a run must have to be redacted: half the key, at least 12, at most all.

    Prefixes count because a key cut by a length limit (its own or a server's) still gives much of it away. Short
    runs do not, since the start of a key is what every key of a vendor shares (``sk-proj-``, ``sk-ant-api03-``):
    redacting those would rewrite honest text about keys. A run of half the key still leaves the other half
    unknown; a secret of 12 characters or fewer is redacted only whole.
    """
    return min(len(secret), max(MIN_PREFIX_RUN, (len(secret) + 1) // 2))


def redact(text: str, secrets: Sequence[str]) -> str:
    """``text`` with each secret, and any run of its first :func:`prefix_run` characters, replaced by ``[REDACTED]``."""
    for secret in secrets:
        if len(secret) >= MIN_SECRET_LENGTH and secret[: prefix_run(secret)] in text:
            text = _replace_prefix_runs(text, secret)
    return text


def _replace_prefix_runs(text: str, secret: str) -> str:
    head = secret[: prefix_run(secret)]
    parts: list[str] = []
    start = 0
    while (found := text.find(head, start)) != -1:
        end = found + len(head)
        while end < len(text) and end - found < len(secret) and text[end] == secret[end - found]:
            end += 1
        parts += (text[start:found], MARK)
        start = end
    parts.append(text[start:])
    return "".join(parts)


def header_secrets(headers: Mapping[str, str]) -> tuple[str, ...]:
    """The secret values among request headers: each word of a header whose name speaks of credentials.

    ``authorization: Bearer KEY`` gives ``KEY`` (the scheme is too short to count); ``x-api-key: KEY`` gives
    ``KEY``. Names are matched loosely (``x-goog-api-key``, ``x-auth-token``), since over-redacting costs nothing.
    """
    return tuple(
        word
        for name, value in headers.items()
        if any(part in name.lower() for part in _CREDENTIAL_WORDS)
        for word in value.split()
        if len(word) >= MIN_SECRET_LENGTH
    )


class Redactor:
    """A set of secrets, applied with :func:`redact`; its repr counts them and never shows them."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self.secrets = tuple(dict.fromkeys(s for s in secrets if len(s) >= MIN_SECRET_LENGTH))

    def __repr__(self) -> str:
        return f"Redactor({len(self.secrets)} secrets)"

    @classmethod
    def from_environment(cls, names: Iterable[str] = KEY_VARIABLES) -> Redactor:
        """A redactor for the API keys set in the environment."""
        return cls(os.environ.get(name, "") for name in names)

    def __call__(self, text: str) -> str:
        return redact(text, self.secrets)

    def json(self, value: Any) -> Any:
        """A decoded JSON value with every string in it (keys too) redacted; the value itself if no secret is known.

        The walk keeps its own stack rather than recursing, so no depth of nesting can raise ``RecursionError``.
        """
        if not self.secrets:
            return value
        root: list[Any] = [None]
        pending: list[tuple[Any, Any, Any]] = [(value, root, 0)]  # (a value, the copy it goes in, its slot there)
        while pending:
            item, parent, slot = pending.pop()
            if isinstance(item, str):
                parent[slot] = self(item)
            elif isinstance(item, list):
                items: list[Any] = item  # pyright: ignore[reportUnknownVariableType]
                parent[slot] = copied = [None] * len(items)
                pending.extend((v, copied, i) for i, v in enumerate(items))
            elif isinstance(item, dict):
                fields: dict[Any, Any] = item  # pyright: ignore[reportUnknownVariableType]
                parent[slot] = copied_fields = dict.fromkeys(self(k) if isinstance(k, str) else k for k in fields)
                pending.extend((v, copied_fields, self(k) if isinstance(k, str) else k) for k, v in fields.items())
            else:
                parent[slot] = item
        return root[0]


class _LibraryLogFilter(logging.Filter):
    """Redacts the secrets of every live :class:`Redactor` it guards from the records of the loggers it sits on."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._guarded: weakref.WeakSet[Redactor] = weakref.WeakSet()

    def guard(self, redactor: Redactor) -> None:
        with self._lock:
            self._guarded.add(redactor)

    def filter(self, record: logging.LogRecord) -> bool:
        with self._lock:
            secrets = [secret for redactor in list(self._guarded) for secret in redactor.secrets]
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is the handler's to report; a filter must not raise in the caller
            return True
        cleaned = redact(message, secrets)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


_LIBRARY_LOG_FILTER = _LibraryLogFilter()


def redact_library_logs(redactor: Redactor) -> None:
    """Keep ``redactor``'s secrets out of the HTTP libraries' own log records for as long as it lives."""
    if not redactor.secrets:
        return
    _LIBRARY_LOG_FILTER.guard(redactor)
    for name in _LIBRARY_LOGGERS:
        logging.getLogger(name).addFilter(_LIBRARY_LOG_FILTER)  # a no-op when already there
