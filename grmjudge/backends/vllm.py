"""VLLMBackend: an in-process vLLM engine, for judging on a local GPU (or CPU) without running a server.

The backend drives vLLM's asynchronous engine (V1 ``AsyncLLM``): each request goes straight into vLLM's
continuous batching, so concurrent judge calls share forward passes, and the ``n`` completions of a request
share their prompt's KV cache (prefix caching is on by default).

``AsyncLLM`` keeps the model in an engine-core child process, and runs its output loop on the event loop it
first runs on. An engine the backend builds therefore gets a private event loop in a daemon thread, and each
request is handed to that loop: any caller loop can use the backend, including the fresh loop of every
``score_sync`` call. An engine the caller built
([`VLLMBackend.from_engine`][grmjudge.backends.vllm.VLLMBackend.from_engine]) runs on the caller's loop and stays
the caller's.
"""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import anyio.to_thread

from grmjudge._optional import require
from grmjudge.backends.base import Backend
from grmjudge.exceptions import BackendError, BackendResponseError, ConfigurationError, ContextLengthError
from grmjudge.types import Completion, FinishReason, Generation, GenerationRequest, Message, Usage

vllm: Any = require("vllm", extra="vllm")
_inputs: Any = require("vllm.inputs", extra="vllm")
_exceptions: Any = require("vllm.exceptions", extra="vllm")
_engine_exceptions: Any = require("vllm.v1.engine.exceptions", extra="vllm")
_FINAL_ONLY: Any = require("vllm.sampling_params", extra="vllm").RequestOutputKind.FINAL_ONLY
_platform: Any = require("vllm.platforms", extra="vllm").current_platform

T = TypeVar("T")

_BACKEND = "vllm"


@dataclass
class EngineStats:
    """Counters since the backend was created: what reached the engine through this backend.

    ``requests`` counts requests handed to the engine (one per judge request, whatever its ``n``), ``sequences``
    the completions they asked for, ``prompt_tokens`` their prompt tokens (once per request) and
    ``completion_tokens`` the tokens generated for the requests that finished.
    """

    requests: int = 0
    sequences: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


class _EngineThread:
    """A private event loop in a daemon thread that builds an engine, serves requests, and shuts it down."""

    def __init__(self, build: Callable[[], Any]) -> None:
        self.engine: Any = None
        self._build = build
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._lock = threading.Lock()
        self._stopping = False
        self._closing = False  # read on the engine loop only
        self._inflight: set[asyncio.Task[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, name="grmjudge-vllm", daemon=True)

    def start(self) -> Any:
        """Build the engine on the private loop and return it; a build failure is re-raised here."""
        self._thread.start()
        self._ready.wait()
        if self._startup_error is not None:
            self._thread.join()
            raise self._startup_error
        return self.engine

    async def run(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Await ``fn(*args)`` on the engine loop; cancelling the caller cancels it there too."""
        with self._lock:
            if self._stopping or self._loop is None:
                raise ConfigurationError("VLLMBackend is closed")
            future = asyncio.run_coroutine_threadsafe(self._tracked(fn, *args), self._loop)
        return await asyncio.wrap_future(future)

    def stop(self) -> None:
        """Abort the requests in flight (their callers get a BackendError), shut the engine down, end the thread."""
        with self._lock:
            if self._stopping:
                return
            self._stopping = True
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join()

    def _main(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            self.engine = self._build()  # on this loop, so that vLLM's output loop runs here
        except BaseException as exc:  # handed to the thread that called start
            self._startup_error = exc
            return
        finally:
            self._ready.set()
        try:
            await self._stop.wait()
        finally:
            self._closing = True
            for task in self._inflight:
                task.cancel()
            if self._inflight:
                await asyncio.wait(set(self._inflight))
            shutdown_engine(self.engine)

    async def _tracked(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        task = asyncio.current_task()
        assert task is not None
        self._inflight.add(task)
        try:
            return await fn(*args)
        except asyncio.CancelledError:
            if self._closing:
                raise BackendError("VLLMBackend was closed while this request ran", backend=_BACKEND) from None
            raise
        finally:
            self._inflight.discard(task)


class VLLMBackend(Backend):
    """A vLLM engine in this process (V1 ``AsyncLLM``), built from a model path or hub id.

    The engine options are vLLM's (``AsyncEngineArgs``): the named ones are the common ones, and
    ``engine_kwargs`` passes any other, e.g. ``tensor_parallel_size=2`` or ``distributed_executor_backend="uni"``.
    ``None`` leaves vLLM's default. Prefix caching is on by default, and vLLM's periodic stats log off unless
    ``disable_log_stats=False`` is passed. Building the engine blocks until it is ready (model load, KV cache).

    Prompts are the tokenizer's chat template (or ``chat_template``) with ``add_generation_prompt=True``,
    tokenized without extra special tokens, as ``vllm serve`` does. Each request becomes one engine request with
    ``SamplingParams(n, temperature, top_p, seed, max_tokens)``, so vLLM seeds completion i with ``seed + i``.
    Keys of the request's ``extra_body`` are passed to ``SamplingParams`` too (e.g. ``top_k``), overriding.

    Like ``vllm serve``, a request whose prompt plus ``max_tokens`` exceeds ``max_model_len`` generates up to the
    end of the context (``finish_reason="length"``); a prompt with no room left raises
    [`ContextLengthError`][grmjudge.exceptions.ContextLengthError] for that request only. Other vLLM failures
    raise [`BackendError`][grmjudge.exceptions.BackendError] naming vLLM's error.

    [`aclose`][grmjudge.backends.vllm.VLLMBackend.aclose] aborts requests in flight and shuts the engine down
    (its child processes and threads end); ``async with VLLMBackend(...) as backend:`` does it for you.
    """

    name: ClassVar[str] = "vllm"
    supports_n: bool = True

    def __init__(
        self,
        model: str | os.PathLike[str],
        *,
        max_model_len: int | None = None,
        dtype: str | None = None,
        enforce_eager: bool | None = None,
        gpu_memory_utilization: float | None = None,
        seed: int | None = None,
        enable_prefix_caching: bool = True,
        chat_template: str | None = None,
        **engine_kwargs: Any,
    ) -> None:
        named = {
            "max_model_len": max_model_len,
            "dtype": dtype,
            "enforce_eager": enforce_eager,
            "gpu_memory_utilization": gpu_memory_utilization,
            "seed": seed,
        }
        options = {"disable_log_stats": True, **{k: v for k, v in named.items() if v is not None}, **engine_kwargs}
        if _platform.is_cpu():
            # vLLM's CPU runner kills the engine when it prefills a seeded request in chunks ("CPU Generator does
            # not use offset"), and judge requests are always seeded: prefill whole prompts instead.
            options.setdefault("enable_chunked_prefill", False)
        try:
            args = vllm.AsyncEngineArgs(model=os.fspath(model), enable_prefix_caching=enable_prefix_caching, **options)
        except TypeError as exc:
            raise ConfigurationError(f"vLLM's AsyncEngineArgs does not take these options: {exc}") from exc
        except Exception as exc:  # e.g. a model that is neither a directory nor a hub id
            raise _start_error(model, exc) from exc
        thread = _EngineThread(lambda: vllm.AsyncLLMEngine.from_engine_args(args))
        try:
            engine = thread.start()
        except Exception as exc:
            raise _start_error(model, exc) from exc
        try:
            self._setup(engine, os.fspath(model), chat_template, thread)
        except BaseException:
            thread.stop()
            raise

    @classmethod
    def from_engine(cls, engine: Any, *, name: str | None = None, chat_template: str | None = None) -> VLLMBackend:
        """A backend over a vLLM ``AsyncLLM`` (``AsyncLLMEngine``) that the caller built and will shut down.

        vLLM binds the engine's output loop to the event loop it first runs on, so use the backend from that one
        loop (no ``score_sync``). [`aclose`][grmjudge.backends.vllm.VLLMBackend.aclose] leaves the engine running;
        [`shutdown_engine`][grmjudge.backends.vllm.shutdown_engine] stops it cleanly. ``name`` is reported as the
        backend's ``model`` (default: the engine's model).
        """
        if not isinstance(engine, vllm.AsyncLLMEngine):
            raise ConfigurationError(
                f"from_engine takes vLLM's AsyncLLM (AsyncLLMEngine), not {type(engine).__name__}; "
                "for a model path, use VLLMBackend(model, ...)"
            )
        self = cls.__new__(cls)
        self._setup(engine, name or str(engine.model_config.model), chat_template, None)
        return self

    def _setup(self, engine: Any, label: str, chat_template: str | None, thread: _EngineThread | None) -> None:
        tokenizer = engine.get_tokenizer()
        if chat_template is None and not getattr(tokenizer, "chat_template", None):
            raise ConfigurationError("the tokenizer has no chat template: pass chat_template= (a Jinja string)")
        self.model = label
        self.stats = EngineStats()
        self._engine = engine
        self._tokenizer = tokenizer
        self._chat_template = chat_template
        self._thread = thread

    def __repr__(self) -> str:
        return f"VLLMBackend(model={self.model!r})"

    @property
    def engine(self) -> Any:
        """The vLLM ``AsyncLLM``."""
        return self._engine

    @property
    def tokenizer(self) -> Any:
        """The engine's tokenizer, which renders the chat template."""
        return self._tokenizer

    @property
    def max_model_len(self) -> int:
        """The engine's context: prompt plus generated tokens."""
        return int(self._engine.model_config.max_model_len)

    def encode_prompt(self, messages: Sequence[Message]) -> list[int]:
        """The token ids the engine is given for ``messages``: the chat template with the generation prompt."""
        chat = [{"role": m.role, "content": m.content} for m in messages]
        try:
            text = self._tokenizer.apply_chat_template(
                chat, tokenize=False, add_generation_prompt=True, chat_template=self._chat_template
            )
        except Exception as exc:  # Jinja errors, templates that reject a role
            raise BackendError(f"the chat template failed: {type(exc).__name__}: {exc}", backend=_BACKEND) from exc
        return list(self._tokenizer.encode(text, add_special_tokens=False))  # the template has the specials

    async def generate(self, request: GenerationRequest) -> Generation:
        self._check_open()
        prompt = self.encode_prompt(request.messages)
        limit = self.max_model_len
        if len(prompt) >= limit:
            raise ContextLengthError(
                f"the prompt has {len(prompt)} tokens, but the vLLM engine's max_model_len is {limit}: it needs room "
                f"for at least one generated token (max_tokens={request.max_tokens}); shorten the input or build the "
                "backend with a larger max_model_len",
                prompt_tokens=len(prompt),
                max_tokens=request.max_tokens,
                max_context=limit,
                backend=_BACKEND,
            )
        params = _sampling_params(request, max_tokens=min(request.max_tokens, limit - len(prompt)))
        try:
            if self._thread is None:
                output = await _run_request(self._engine, prompt, params, self.stats)
            else:
                output = await self._thread.run(_run_request, self._engine, prompt, params, self.stats)
        except (BackendError, ConfigurationError):
            raise
        except Exception as exc:
            raise _engine_error(exc) from exc
        return _generation(output, params, request.n, self.model)

    async def aclose(self) -> None:
        """Refuse further requests and, for an engine this backend built, abort what runs and shut it down."""
        if self._thread is not None:
            await anyio.to_thread.run_sync(self._thread.stop)
        await super().aclose()


def shutdown_engine(engine: Any) -> None:
    """Shut a vLLM ``AsyncLLM`` down, including the ZMQ context that vLLM leaves to the garbage collector.

    Call it on the engine's event loop. vLLM 0.32 never terminates the context its engine client opens, so
    garbage collection later warns about it (``ResourceWarning``), which fails test suites that treat warnings
    as errors.
    """
    engine.shutdown()
    context: Any = getattr(getattr(getattr(engine, "engine_core", None), "resources", None), "ctx", None)
    if context is not None and not context.closed:
        context.destroy(linger=0)


async def _run_request(engine: Any, prompt: list[int], params: Any, stats: EngineStats) -> Any:
    """One engine request; returns vLLM's final ``RequestOutput``."""
    stats.requests += 1
    stats.sequences += params.n
    stats.prompt_tokens += len(prompt)
    final: Any = None
    async for output in engine.generate(_inputs.tokens_input(prompt), params, f"grmjudge-{uuid.uuid4().hex}"):
        final = output
    if final is not None:
        stats.completion_tokens += sum(len(o.token_ids) for o in final.outputs)
    return final


def _sampling_params(request: GenerationRequest, *, max_tokens: int) -> Any:
    options: dict[str, Any] = {
        "n": 1 if request.temperature == 0.0 else request.n,  # vLLM refuses greedy n > 1: one is copied instead
        "temperature": request.temperature,
        "max_tokens": max_tokens,
        "seed": request.seed,
        "output_kind": _FINAL_ONLY,  # one output per request, not one per generated token
    }
    if request.top_p is not None:
        options["top_p"] = request.top_p
    options.update(request.extra_body or {})
    try:
        return vllm.SamplingParams(**options)
    except TypeError as exc:
        raise ConfigurationError(f"extra_body has a key that vLLM's SamplingParams does not take: {exc}") from exc
    except (ValueError, _exceptions.VLLMError) as exc:
        raise ConfigurationError(f"vLLM rejected the sampling parameters: {exc}") from exc


def _generation(output: Any, params: Any, n: int, model: str) -> Generation:
    """The request's n completions from vLLM's final output, with usage."""
    if output is None:
        raise BackendResponseError("vLLM finished the request without an output", backend=_BACKEND)
    choices = sorted(output.outputs, key=lambda o: o.index)
    completions = tuple(Completion(text=o.text, finish_reason=_finish_reason(o.finish_reason)) for o in choices)
    completion_tokens = sum(len(o.token_ids) for o in choices)
    if params.temperature == 0.0 and len(completions) == 1:
        # greedy: the one completion stands for all n, and counts n times, as a server would count it
        completions, completion_tokens = completions * n, completion_tokens * n
    if len(completions) != n:
        raise BackendResponseError(f"vLLM returned {len(completions)} completions for n={n}", backend=_BACKEND)
    usage = Usage(requests=1, prompt_tokens=len(output.prompt_token_ids), completion_tokens=completion_tokens)
    return Generation(completions=completions, usage=usage, model=model)


def _finish_reason(reason: str | None) -> FinishReason:
    if reason in ("stop", "length"):
        return reason  # pyright: ignore[reportReturnType]
    if reason in ("abort", "error", None):  # an unfinished text must never be parsed into a score
        raise BackendError(f"vLLM ended a completion early (finish_reason={reason!r})", backend=_BACKEND)
    return "other"  # e.g. "repetition"


def _start_error(model: str | os.PathLike[str], exc: Exception) -> ConfigurationError:
    return ConfigurationError(f"vLLM could not start an engine for {os.fspath(model)!r}: {type(exc).__name__}: {exc}")


def _engine_error(exc: Exception) -> BackendError:
    if isinstance(exc, _engine_exceptions.EngineDeadError):
        return BackendError("the vLLM engine has died (its log names the cause); build a new backend", backend=_BACKEND)
    if isinstance(exc, _exceptions.VLLMClientError | ValueError):
        return BackendError(f"vLLM rejected the request: {type(exc).__name__}: {exc}", backend=_BACKEND)
    cause = exc.__cause__ if isinstance(exc, _engine_exceptions.EngineGenerateError) and exc.__cause__ else exc
    return BackendError(f"vLLM failed to generate: {type(cause).__name__}: {cause}", backend=_BACKEND)


__all__ = ["EngineStats", "VLLMBackend", "shutdown_engine"]
