"""HTTPMetaScorer: a meta RM served by vLLM as a one-label classifier."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from grmjudge._classifier_http import HTTPChatClassifier
from grmjudge.classifier import ClassifierMetaScorer
from grmjudge.settings import RetryPolicy


class HTTPMetaScorer(ClassifierMetaScorer):
    """A meta RM behind a vLLM server: one ``/classify`` request per judgement, raw logits (METHOD.md §8).

    The arguments are those of :class:`~grmjudge.classifier.HTTPChatClassifier`; ``base_url`` is the server
    root (a trailing ``/v1`` is dropped) and the server applies the model's own chat template.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        *,
        timeout: float = 300.0,
        max_connections: int = 64,
        retry: RetryPolicy | None = None,
        headers: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(
            HTTPChatClassifier(
                base_url,
                model,
                api_key,
                timeout=timeout,
                max_connections=max_connections,
                retry=retry,
                headers=headers,
                extra_body=extra_body,
                http_client=http_client,
            )
        )
