"""The OpenAPI 3.1 document, from the request and response models' JSON schemas."""

from __future__ import annotations

import functools
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from grmjudge._version import __version__
from grmjudge.results import BatchResult, ScoreResult
from grmjudge.serve.schemas import (
    BatchRequest,
    ErrorBody,
    OpenRLHFRequest,
    OpenRLHFResponse,
    RewardsRequest,
    RewardsResponse,
    ScoreRequest,
)

_OPERATIONS: tuple[tuple[str, str, type[BaseModel], type[BaseModel], str], ...] = (
    ("/v1/score", "Judge one item", ScoreRequest, ScoreResult, "application/json"),
    ("/v1/score/batch", "Judge items; one NDJSON line per item", BatchRequest, BatchResult, "application/x-ndjson"),
    ("/v1/rewards", "RL rewards, groups collected by group_id", RewardsRequest, RewardsResponse, "application/json"),
    ("/get_reward", "OpenRLHF's remote reward protocol", OpenRLHFRequest, OpenRLHFResponse, "application/json"),
)
_PROBES = {"/healthz": "The process is up", "/readyz": "The backend answers", "/metrics": "Prometheus text"}


@functools.cache
def openapi_schema() -> dict[str, Any]:
    """The document served at ``/openapi.json``."""
    models = {m for _, _, request, response, _ in _OPERATIONS for m in (request, response)} | {ErrorBody}
    keys, definitions = models_json_schema(
        [(model, "validation" if model.__name__.endswith("Request") else "serialization") for model in models],
        ref_template="#/components/schemas/{model}",
    )
    ref = {model: keys[(model, mode)] for (model, mode) in keys}
    errors = {
        str(status): {"description": text, "content": {"application/json": {"schema": ref[ErrorBody]}}}
        for status, text in (
            (401, "No valid API key"),
            (413, "Body too large"),
            (422, "A field the service will not take (error.field names it)"),
            (429, "Queue full; see Retry-After"),
            (502, "The GRM backend failed (error.type is the SDK's error class)"),
            (503, "The GRM backend is unavailable"),
            (504, "Deadline exceeded"),
        )
    }
    paths: dict[str, Any] = {
        path: {
            "post": {
                "summary": summary,
                "requestBody": {"required": True, "content": {"application/json": {"schema": ref[request]}}},
                "responses": {"200": {"description": "OK", "content": {media: {"schema": ref[response]}}}, **errors},
            }
        }
        for path, summary, request, response, media in _OPERATIONS
    }
    paths |= {
        path: {"get": {"summary": text, "responses": {"200": {"description": "OK"}}}} for path, text in _PROBES.items()
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "grmjudge serve", "version": __version__},
        "components": {
            "schemas": definitions.get("$defs", {}),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
        "paths": paths,
    }
