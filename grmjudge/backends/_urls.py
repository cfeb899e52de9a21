"""Base URL checks for the HTTP backends: a malformed URL fails once, at construction, not on every request."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import cast
from urllib.parse import urlsplit

from grmjudge.exceptions import ConfigurationError

_USERINFO = re.compile(r"(?<=//)[^/?#]*@")
_QUERY = re.compile(r"\?[^#]*")
_EXPECTED = "an http:// or https:// URL such as http://127.0.0.1:8000/v1"


def check_base_url(url: object, field: str = "base_url") -> str:
    """``url`` without its trailing slash, or a ConfigurationError naming the value (credentials hidden)."""
    if not isinstance(url, str):
        raise ConfigurationError(f"{field} must be {_EXPECTED}, got {type(url).__name__}")
    if not _is_http_url(url):
        raise ConfigurationError(f"{field} must be {_EXPECTED}, got {_redacted(url)!r}")
    return url.rstrip("/")


def check_base_urls(value: object) -> tuple[str, ...]:
    """One URL or a list of replica URLs, each checked; at least one."""
    if isinstance(value, str):
        return (check_base_url(value),)
    if not isinstance(value, Sequence):
        raise ConfigurationError(
            f"base_url must be an http:// or https:// URL or a list of them, got {type(value).__name__}"
        )
    urls = cast(Sequence[object], value)
    if not urls:
        raise ConfigurationError("base_url is an empty list: give at least one server URL")
    return tuple(check_base_url(url, f"base_url[{i}]") for i, url in enumerate(urls))


def _is_http_url(url: str) -> bool:
    if any(c.isspace() for c in url):
        return False
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError on a port that is not a number in range
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _redacted(url: str) -> str:
    """The URL as shown in errors: user info and query string (where keys sometimes ride) replaced."""
    return _QUERY.sub("?[REDACTED]", _USERINFO.sub("[REDACTED]@", url))
