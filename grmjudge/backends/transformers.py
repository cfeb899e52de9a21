"""TransformersBackend: a local Hugging Face causal LM, with concurrent requests batched into one generate call.

Concurrent judge calls each send a few small requests; calling ``model.generate`` once per request would leave
the model idle between calls and run every prompt alone. The backend queues requests for a few milliseconds
(`grmjudge.backends._batching`), groups those with equal sampling parameters, and generates each group in
one left-padded ``model.generate`` call in a worker thread, one call at a time.

Sampling draws its random numbers per request, not per batch: a seeded request gets the same draws whatever
it is batched with (see [`TransformersBackend`][grmjudge.backends.transformers.TransformersBackend] for what
exactly is reproducible).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

from grmjudge._optional import require
from grmjudge.backends._batching import BatchBudget, BatchGatherer
from grmjudge.backends.base import Backend
from grmjudge.exceptions import BackendError, ConfigurationError, ContextLengthError
from grmjudge.types import Completion, FinishReason, Generation, GenerationRequest, Message, Usage

torch: Any = require("torch", extra="hf")
transformers: Any = require("transformers", extra="hf")

_NO_LIMIT = 10**7
"""Tokenizers without a known context report ``model_max_length`` of about 1e30; anything this large is no limit."""


@dataclass
class GenerateStats:
    """Counters since the backend was created, to see how well requests were batched.

    ``generate_calls`` counts ``model.generate`` calls (one per batch, failed ones included), ``requests``
    the requests sent to them, ``sequences`` their rows (a greedy request takes one row whatever its ``n``)
    and ``generated_tokens`` the tokens generated for those rows up to and including EOS.
    """

    generate_calls: int = 0
    requests: int = 0
    sequences: int = 0
    generated_tokens: int = 0


class _SamplingKey(NamedTuple):
    """What requests must share to share a generate call."""

    temperature: float
    top_p: float | None
    max_tokens: int

    @classmethod
    def of(cls, request: GenerationRequest) -> _SamplingKey:
        if request.temperature == 0.0:
            return cls(0.0, None, request.max_tokens)
        top_p = request.top_p if request.top_p is not None and request.top_p < 1.0 else None
        return cls(request.temperature, top_p, request.max_tokens)

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    def rows(self, n: int) -> int:
        """Rows a request takes: greedy completions are identical, so one row serves all n."""
        return 1 if self.greedy else n


@dataclass(frozen=True)
class _Job:
    prompt: tuple[int, ...]
    n: int
    seed: int | None


@dataclass(frozen=True)
class _Answer:
    completions: tuple[Completion, ...]
    completion_tokens: int


class _Engine:
    """The model and tokenizer, and the blocking work: render prompts, generate a batch, decode it."""

    def __init__(self, model: Any, tokenizer: Any, *, chat_template: str | None, max_context: int | None) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.chat_template = chat_template
        if chat_template is None and not getattr(tokenizer, "chat_template", None):
            raise ConfigurationError("the tokenizer has no chat template: pass chat_template= (a Jinja string)")
        self.eos_ids = _eos_ids(model, tokenizer)
        if not self.eos_ids:
            raise ConfigurationError("neither the model's generation_config nor the tokenizer names an EOS token")
        pad = tokenizer.pad_token_id
        self.pad_id: int = pad if isinstance(pad, int) else self.eos_ids[0]
        self.max_context = max_context if max_context is not None else _context_limit(model, tokenizer)
        self.rng: Any = torch.Generator()
        self.rng.seed()  # unseeded requests draw from here: a fresh, nondeterministic stream per backend
        self.stats = GenerateStats()

    def encode(self, messages: Sequence[Message]) -> list[int]:
        chat = [{"role": m.role, "content": m.content} for m in messages]
        try:
            text = self.tokenizer.apply_chat_template(
                chat, tokenize=False, add_generation_prompt=True, chat_template=self.chat_template
            )
        except Exception as exc:  # Jinja errors, templates that reject a role
            raise BackendError(
                f"the chat template failed: {type(exc).__name__}: {exc}", backend="transformers"
            ) from exc
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])  # the template has the specials

    def check_fits(self, prompt_tokens: int, max_tokens: int) -> None:
        if self.max_context is not None and prompt_tokens + max_tokens > self.max_context:
            raise ContextLengthError(
                f"the prompt has {prompt_tokens} tokens and max_tokens is {max_tokens}: {prompt_tokens + max_tokens} "
                f"exceeds the model's context of {self.max_context} tokens; shorten the input or lower max_tokens",
                prompt_tokens=prompt_tokens,
                max_tokens=max_tokens,
                max_context=self.max_context,
                backend="transformers",
            )

    def run(self, key: _SamplingKey, jobs: list[_Job]) -> list[_Answer]:
        """Generate every job's rows in one left-padded ``model.generate`` call (worker thread)."""
        rows = [job.prompt for job in jobs for _ in range(key.rows(job.n))]
        width = max(len(row) for row in rows)
        device = self.model.device
        input_ids = torch.tensor([[self.pad_id] * (width - len(r)) + list(r) for r in rows], device=device)
        attention_mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], device=device)
        config = transformers.GenerationConfig(
            max_new_tokens=key.max_tokens,
            do_sample=False,  # sampled rows are drawn by _SeededSampler, which leaves one finite logit
            num_beams=1,
            repetition_penalty=1.0,
            eos_token_id=list(self.eos_ids),
            pad_token_id=self.pad_id,
        )
        processors = transformers.LogitsProcessorList()
        if not key.greedy:
            processors.append(_SeededSampler(self._uniforms(key, jobs), key.temperature, key.top_p, width))
        self.stats.generate_calls += 1
        self.stats.requests += len(jobs)
        self.stats.sequences += len(rows)
        with torch.inference_mode():
            output = self.model.generate(
                input_ids=input_ids,
                attention_mask=attention_mask,
                generation_config=config,
                logits_processor=processors,
            )
        return self._answers(key, jobs, output[:, width:].tolist())

    def _uniforms(self, key: _SamplingKey, jobs: list[_Job]) -> Any:
        """One uniform draw per row and step; a seeded job's draws depend only on its seed, n and max_tokens."""
        draws = [
            torch.rand(
                (job.n, key.max_tokens),
                generator=self.rng if job.seed is None else torch.Generator().manual_seed(job.seed % 2**64),
            )
            for job in jobs
        ]
        return torch.cat(draws).to(self.model.device)

    def _answers(self, key: _SamplingKey, jobs: list[_Job], generated: list[list[int]]) -> list[_Answer]:
        answers: list[_Answer] = []
        row = 0
        for job in jobs:
            decoded = [self._decode(tokens) for tokens in generated[row : row + key.rows(job.n)]]
            row += key.rows(job.n)
            self.stats.generated_tokens += sum(count for _, count in decoded)
            if key.greedy:
                decoded = decoded * job.n
            answers.append(_Answer(tuple(c for c, _ in decoded), sum(count for _, count in decoded)))
        return answers

    def _decode(self, tokens: list[int]) -> tuple[Completion, int]:
        """The completion up to EOS (``stop``) or of all tokens (``length``), and its token count with EOS."""
        end = next((i for i, token in enumerate(tokens) if token in self.eos_ids), None)
        reason: FinishReason = "length" if end is None else "stop"
        kept = tokens if end is None else tokens[:end]
        text: str = self.tokenizer.decode(kept, skip_special_tokens=True)
        return Completion(text=text, finish_reason=reason), len(kept) + (0 if end is None else 1)


class _SeededSampler:
    """A logits processor that samples each row from its own uniform draws, then leaves only that token.

    generate runs greedily over the result, so batching never mixes the rows' random streams: row r at
    step t takes the token where the (top-p truncated) cumulative distribution first reaches ``u[r, t]``.
    """

    def __init__(self, uniforms: Any, temperature: float, top_p: float | None, prompt_width: int) -> None:
        self.uniforms = uniforms
        self.temperature = temperature
        self.top_p = top_p
        self.prompt_width = prompt_width

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        step = input_ids.shape[1] - self.prompt_width
        u = self.uniforms[:, step : step + 1]
        probs = torch.softmax(scores.float() / self.temperature, dim=-1)
        if self.top_p is None:
            order = None
        else:
            probs, order = torch.sort(probs, dim=-1, descending=True)
            outside = probs.cumsum(dim=-1) - probs >= self.top_p  # keeps the smallest prefix with mass >= top_p
            probs = probs.masked_fill(outside, 0.0)
        cdf = probs.cumsum(dim=-1)
        total = cdf[:, -1:]
        target = torch.minimum(u * total, torch.nextafter(total, torch.zeros_like(total)))  # stays below the top
        choice = torch.searchsorted(cdf, target, side="right")  # the first token whose mass covers the target
        if order is not None:
            choice = order.gather(-1, choice)
        return torch.full_like(scores, float("-inf")).scatter_(-1, choice, 0.0)


class TransformersBackend(Backend):
    """A local Hugging Face causal LM that batches concurrent requests into shared ``model.generate`` calls.

    ``model`` is a local path or hub id, loaded with ``AutoModelForCausalLM`` and ``AutoTokenizer``
    (``trust_remote_code`` off unless you turn it on). Without ``device_map`` the model goes to ``device``:
    ``"cuda"`` when available, else ``"cpu"``. To use a model and tokenizer already in memory, see
    `from_pretrained_objects`.

    Prompts are the model's own chat template (``add_generation_prompt=True``). ``temperature=0`` is
    greedy; otherwise tokens are sampled with the request's ``temperature`` and ``top_p`` (no top-k, no
    repetition penalty, whatever the checkpoint's ``generation_config.json`` suggests). The n completions of
    a request are n rows of the batch (one row, copied, when greedy). ``extra_body`` is ignored.

    Reproducibility: a seeded request draws its random numbers from its own generator (its ``seed``, ``n``
    and ``max_tokens`` fix them), so it gets the same texts when run again in the same batch, and the same
    texts whatever it is batched with as long as the model returns the same logits; padding to a different
    batch shape may change the logits' last bits on some hardware, which can flip a rare near-tie.
    Requests without a seed draw from a stream seeded once per backend from the OS.

    Batching: requests wait up to ``batch_window`` seconds for others; those with equal temperature,
    top_p and max_tokens share a call of up to ``max_batch_sequences`` rows and ``max_batch_tokens`` padded
    tokens (rows × (longest prompt + max_tokens)); ``None`` lifts a limit. One call runs at a time.
    A prompt with more than the model's context (the smaller of ``max_position_embeddings`` and a real
    ``tokenizer.model_max_length``, or ``max_context``) minus ``max_tokens`` tokens raises
    [`ContextLengthError`][grmjudge.exceptions.ContextLengthError] for that request only, before
    anything is generated.
    """

    name: ClassVar[str] = "transformers"
    supports_n: bool = True

    def __init__(
        self,
        model: str,
        *,
        dtype: Any = "auto",
        device: str | None = None,
        device_map: str | Mapping[str, Any] | None = None,
        trust_remote_code: bool = False,
        model_kwargs: Mapping[str, Any] | None = None,
        chat_template: str | None = None,
        max_context: int | None = None,
        batch_window: float = 0.005,
        max_batch_sequences: int | None = 64,
        max_batch_tokens: int | None = None,
    ) -> None:
        budget = _budget(batch_window, max_batch_sequences, max_batch_tokens)  # bad options fail before loading
        try:
            tokenizer = transformers.AutoTokenizer.from_pretrained(model, trust_remote_code=trust_remote_code)
            hf_model = transformers.AutoModelForCausalLM.from_pretrained(
                model, dtype=dtype, device_map=device_map, trust_remote_code=trust_remote_code, **(model_kwargs or {})
            )
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"could not load {model!r} with transformers: {exc}") from exc
        if device_map is None:
            hf_model.to(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self._setup(hf_model, tokenizer, model, chat_template, max_context, batch_window, budget)
        self._owns_model = True

    @classmethod
    def from_pretrained_objects(
        cls,
        model: Any,
        tokenizer: Any,
        *,
        name: str | None = None,
        chat_template: str | None = None,
        max_context: int | None = None,
        batch_window: float = 0.005,
        max_batch_sequences: int | None = 64,
        max_batch_tokens: int | None = None,
    ) -> TransformersBackend:
        """A backend over a causal LM and tokenizer already loaded (and placed on their device) by the caller.

        ``name`` is reported as the backend's ``model``; it defaults to the model's ``name_or_path``. The
        objects stay the caller's: `aclose` leaves them alone.
        """
        self = cls.__new__(cls)
        label = name or getattr(model, "name_or_path", None) or type(model).__name__
        budget = _budget(batch_window, max_batch_sequences, max_batch_tokens)
        self._setup(model, tokenizer, label, chat_template, max_context, batch_window, budget)
        self._owns_model = False
        return self

    def _setup(
        self,
        hf_model: Any,
        tokenizer: Any,
        label: str,
        chat_template: str | None,
        max_context: int | None,
        batch_window: float,
        budget: BatchBudget,
    ) -> None:
        hf_model.eval()
        self.model = label
        self._engine: _Engine | None = _Engine(
            hf_model, tokenizer, chat_template=chat_template, max_context=_positive("max_context", max_context)
        )
        self.stats = self._engine.stats
        self._gatherer: BatchGatherer[_SamplingKey, _Job, _Answer] = BatchGatherer(
            self._run_batch, window=batch_window, budget=budget, wrap_error=_generate_error
        )

    def __repr__(self) -> str:
        return f"TransformersBackend(model={self.model!r})"

    @property
    def hf_model(self) -> Any:
        """The underlying ``transformers`` model."""
        return self._live_engine().model

    @property
    def tokenizer(self) -> Any:
        """The tokenizer that renders and decodes."""
        return self._live_engine().tokenizer

    @property
    def max_context(self) -> int | None:
        """The most tokens a prompt plus ``max_tokens`` may take; ``None`` when the model names no limit."""
        return self._live_engine().max_context

    def encode_prompt(self, messages: Sequence[Message]) -> list[int]:
        """The token ids the model is given for ``messages``: its chat template with the generation prompt."""
        return self._live_engine().encode(messages)

    async def generate(self, request: GenerationRequest) -> Generation:
        engine = self._live_engine()
        prompt = engine.encode(request.messages)
        engine.check_fits(len(prompt), request.max_tokens)
        key = _SamplingKey.of(request)
        answer = await self._gatherer.submit(
            key,
            _Job(tuple(prompt), request.n, request.seed),
            rows=key.rows(request.n),
            width=len(prompt) + key.max_tokens,
        )
        usage = Usage(requests=1, prompt_tokens=len(prompt), completion_tokens=answer.completion_tokens)
        return Generation(completions=answer.completions, usage=usage, model=self.model)

    async def aclose(self) -> None:
        """Refuse further requests and, for a model this backend loaded, drop it so its memory can be freed."""
        if self._owns_model:
            self._engine = None
        await super().aclose()

    def _run_batch(self, key: _SamplingKey, jobs: list[_Job]) -> list[_Answer]:
        engine = self._engine  # looked up per batch, so that aclose can drop the model
        if engine is None:
            raise ConfigurationError("TransformersBackend is closed")
        return engine.run(key, jobs)

    def _live_engine(self) -> _Engine:
        self._check_open()
        if self._engine is None:
            raise ConfigurationError("TransformersBackend is closed")
        return self._engine


def _positive(option: str, value: int | None) -> int | None:
    if value is not None and value < 1:
        raise ConfigurationError(f"{option} must be a positive integer or None, got {value}")
    return value


def _budget(batch_window: float, max_batch_sequences: int | None, max_batch_tokens: int | None) -> BatchBudget:
    if batch_window < 0:
        raise ConfigurationError(f"batch_window must be >= 0 seconds, got {batch_window}")
    return BatchBudget(
        _positive("max_batch_sequences", max_batch_sequences), _positive("max_batch_tokens", max_batch_tokens)
    )


def _eos_ids(model: Any, tokenizer: Any) -> tuple[int, ...]:
    configured: Any = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids: list[Any] = [*configured] if isinstance(configured, list | tuple) else [configured]
    ids.append(tokenizer.eos_token_id)
    return tuple(dict.fromkeys(i for i in ids if isinstance(i, int)))


def _context_limit(model: Any, tokenizer: Any) -> int | None:
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    limits = [getattr(config, "max_position_embeddings", None), getattr(tokenizer, "model_max_length", None)]
    sensible = [n for n in limits if isinstance(n, int) and 0 < n < _NO_LIMIT]
    return min(sensible) if sensible else None


def _generate_error(exc: Exception) -> BackendError:
    hint = ""
    if isinstance(exc, torch.OutOfMemoryError):
        hint = "; lower max_batch_sequences or set max_batch_tokens"
    return BackendError(f"model.generate failed: {type(exc).__name__}: {exc}{hint}", backend="transformers")


__all__ = ["GenerateStats", "TransformersBackend"]
