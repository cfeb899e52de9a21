"""Base URL checks for HTTP servers: a malformed URL fails once, where it is given, not on every request.

The backends, the classifier servers and the CLI's ``--base-url`` options all use :func:`url_problem`. A base
URL is a prefix that request paths are appended to, so one with a query string or a fragment is refused too.
:func:`masked_url` is how a URL appears in any message: user info and query string hidden.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from typing import cast
from urllib.parse import unquote, urlsplit

from grmjudge.exceptions import ConfigurationError

_USERINFO = re.compile(r"(?<=//)[^/?#]*@")
_QUERY = re.compile(r"\?[^#]*")
_EXPECTED = "an http:// or https:// URL such as http://127.0.0.1:8000/v1"


def url_problem(url: str) -> str | None:
    """What makes ``url`` unusable as a server's base URL, worded to follow its name; ``None`` when it is fine.

    The value is shown with its user info and query string (where keys sometimes ride) redacted.
    """
    reason = _reason(url)
    return None if reason is None else f"must be {_EXPECTED}, got {masked_url(url)!r}{reason}"


def check_base_url(url: object, field: str = "base_url") -> str:
    """``url`` without its trailing slash, or a ConfigurationError naming the value (credentials hidden)."""
    if not isinstance(url, str):
        raise ConfigurationError(f"{field} must be {_EXPECTED}, got {type(url).__name__}")
    problem = url_problem(url)
    if problem is not None:
        raise ConfigurationError(f"{field} {problem}")
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


def _reason(url: str) -> str | None:
    """``None`` for a good URL, else what to add after the value ("" when the scheme says it all)."""
    try:
        parts = urlsplit(url)
    except ValueError:  # an unclosed IPv6 bracket
        return " (not a valid URL)"
    if parts.scheme not in ("http", "https"):
        return ""
    if any(c.isspace() for c in url):
        return " (it holds white space)"
    if not parts.hostname:
        return " (no host)"
    try:
        port = parts.port  # raises ValueError on a port that is not a number from 0 to 65535
    except ValueError:
        return " (a bad port)"
    if port == 0:
        return " (port 0: no server listens there)"
    if "?" in url:
        return " (a query string: request paths are appended to the base URL, so it would end up mid-path)"
    if "#" in url:
        return " (a fragment: request paths are appended to the base URL, so they would end up in it)"
    return None


def masked_url(url: str) -> str:
    """The URL as shown in messages: user info and query string (where keys sometimes ride) replaced."""
    return _QUERY.sub("?[REDACTED]", _USERINFO.sub("[REDACTED]@", url))


def url_secrets(url: str) -> tuple[str, ...]:
    """The credentials a URL's user info holds, to redact from replies: user, password and the Basic credential.

    HTTP clients send user info as ``authorization: Basic base64(user:password)``, which a server may echo.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return ()
    if parts.username is None:
        return ()
    user, password = unquote(parts.username), unquote(parts.password or "")
    basic = base64.b64encode(f"{user}:{password}".encode()).decode()
    return tuple(value for value in (user, password, basic) if value)
