"""API keys and bind addresses: the service is open only on loopback, and otherwise only to holders of a key."""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import os
from collections.abc import Iterable

KEY_VARIABLE = "GRMJUDGE_API_KEY"
"""The environment variable holding the service's keys (comma-separated for several, for rotation)."""

MIN_KEY_LENGTH = 16
"""Shorter keys are refused: they are guessable, and the redaction of short strings would rewrite ordinary text."""


def keys_from(given: Iterable[str], environ: dict[str, str] | None = None) -> tuple[str, ...]:
    """The keys of ``--api-key`` options and of ``GRMJUDGE_API_KEY``; a key too short raises ``ValueError``."""
    env = os.environ if environ is None else environ
    keys = [*given, *(part.strip() for part in env.get(KEY_VARIABLE, "").split(",") if part.strip())]
    short = sum(1 for key in keys if len(key) < MIN_KEY_LENGTH)
    if short:
        raise ValueError(f"{short} API key(s) shorter than {MIN_KEY_LENGTH} characters; use long random keys")
    return tuple(dict.fromkeys(keys))


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the service to this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def presented_key(authorization: str | None) -> str | None:
    """The key in an ``Authorization`` header: a bearer token, or the password of HTTP basic auth.

    Basic auth is what clients send for a URL with user info (``http://grm:KEY@host/get_reward``), the one way to
    give a key to trainers that send no headers of their own.
    """
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer":
        return value or None
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2] or None
    return None


def key_accepted(presented: str | None, keys: Iterable[str]) -> bool:
    """Whether ``presented`` is one of ``keys``, compared in constant time against every key."""
    if presented is None:
        return False
    candidate = presented.encode()
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(candidate, key.encode())
    return matched
