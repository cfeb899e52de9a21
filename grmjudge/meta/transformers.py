"""A local one-label ``AutoModelForSequenceClassification`` (extra ``hf``), and the meta RM on it.

This module imports torch and transformers, so ``grmjudge.meta`` and ``grmjudge.classifier`` load it only on
first use.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any, ClassVar, TypedDict, Unpack

import anyio.to_thread

from grmjudge._optional import require
from grmjudge.exceptions import ConfigurationError, InvalidInputError
from grmjudge.meta.base import ChatClassifier, ChatScores, ClassifierMetaScorer, InputTooLongError, check_chats
from grmjudge.types import Message, Usage

torch: Any = require("torch", extra="hf")
transformers: Any = require("transformers", extra="hf")
jinja2: Any = require("jinja2", extra="hf")

_UNSET_MAX_LENGTH = 10**8  # tokenizers without a model_max_length report a huge sentinel instead


class TransformersClassifierOptions(TypedDict, total=False):
    """The keyword options of the local classifier and of the meta RM on it, listed once for both.

    ``tokenizer``: a tokenizer or where to load it from; default: the model's directory. ``batch_size``: chats
    per forward pass (16). ``dtype``: ``torch_dtype`` to load with, e.g. ``"bfloat16"``; default: the
    checkpoint's. ``device``: where to run, e.g. ``"cuda"``; default: where transformers puts it (the CPU).
    ``max_length``: the longest chat in tokens; default: the model's context.
    """

    tokenizer: str | os.PathLike[str] | Any | None
    batch_size: int
    dtype: str | Any | None
    device: str | Any | None
    max_length: int | None


class TransformersChatClassifier(ChatClassifier):
    """A one-label sequence classifier run locally with transformers, in a worker thread.

    Each chat is rendered with the tokenizer's chat template (no generation prompt), tokenized without extra
    special tokens (the template has them, as on vLLM's chat input), and read in batches of ``batch_size``
    chats of similar length. Batches are **right**-padded with the config's ``pad_token_id``: the model pools
    the rightmost non-pad token, and with right padding the real tokens keep positions 0..n-1, so a padded
    chat scores as it does alone. A chat longer than ``max_length`` (default: the model's
    ``max_position_embeddings``) raises :class:`InputTooLongError`; nothing is truncated. Scores are raw
    logits. Calls on one classifier run one at a time.

    Args:
        model: A model directory or hub id, or a loaded model (used as is; ``dtype`` and ``device`` must
            then be ``None``).
        **options: [`TransformersClassifierOptions`][grmjudge.meta.transformers.TransformersClassifierOptions].

    Raises:
        ConfigurationError: The model has more than one label, no ``pad_token_id``, or the tokenizer no chat
            template.
        MissingDependencyError: torch or transformers is not installed.
    """

    name: ClassVar[str] = "transformers-classifier"

    def __init__(self, model: str | os.PathLike[str] | Any, **options: Unpack[TransformersClassifierOptions]) -> None:
        batch_size = options.get("batch_size", 16)
        if batch_size < 1:
            raise ConfigurationError(f"batch_size must be at least 1, got {batch_size}")
        self.batch_size = batch_size
        self._model = _load_model(model, dtype=options.get("dtype"), device=options.get("device"))
        config = self._model.config.get_text_config()
        self.model = _model_name(model, self._model)
        if self._model.config.num_labels != 1:
            raise ConfigurationError(
                f"{self.model} has {self._model.config.num_labels} labels; a scalar reward model needs "
                "exactly 1 (num_labels=1)"
            )
        if config.pad_token_id is None:
            raise ConfigurationError(
                f"{self.model} has no pad_token_id in its config; the classifier pools the last non-pad "
                "token, so batching needs one (set config.pad_token_id and save the model)"
            )
        self._pad_id: int = config.pad_token_id
        tokenizer = options.get("tokenizer")
        self._tokenizer = _load_tokenizer(tokenizer if tokenizer is not None else model, self.model)
        self.max_length = _max_length(options.get("max_length"), config, self._tokenizer, self.model)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"TransformersChatClassifier(model={self.model!r}, batch_size={self.batch_size})"

    async def classify(self, chats: Sequence[Sequence[Message]]) -> ChatScores:
        self._check_open()
        checked = check_chats(chats)
        if not checked:
            return ChatScores(scores=(), usage=Usage(requests=0, prompt_tokens=0, completion_tokens=0))
        return await anyio.to_thread.run_sync(self._classify_blocking, checked)

    def _classify_blocking(self, chats: list[tuple[Message, ...]]) -> ChatScores:
        ids = [self._token_ids(index, chat) for index, chat in enumerate(chats)]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        scores = [0.0] * len(ids)
        batches = [order[start : start + self.batch_size] for start in range(0, len(order), self.batch_size)]
        with self._lock:
            for batch in batches:
                for index, score in zip(batch, self._forward([ids[i] for i in batch]), strict=True):
                    scores[index] = score
        usage = Usage(requests=len(batches), prompt_tokens=sum(map(len, ids)), completion_tokens=0)
        return ChatScores(scores=tuple(scores), usage=usage)

    def _token_ids(self, index: int, chat: tuple[Message, ...]) -> list[int]:
        turns = [{"role": m.role, "content": m.content} for m in chat]
        try:
            text: str = self._tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=False)
        except jinja2.TemplateError as exc:
            raise InvalidInputError(f"the chat template of {self.model} rejected chats[{index}]: {exc}") from exc
        ids: list[int] = self._tokenizer(text, add_special_tokens=False)["input_ids"]
        if len(ids) > self.max_length:
            raise InputTooLongError(
                f"chats[{index}] is {len(ids)} tokens long, more than the {self.max_length} tokens {self.model} "
                "reads; shorten it (grmjudge never truncates a chat it scores)",
                index=index,
                length=len(ids),
                max_length=self.max_length,
            )
        if not ids or ids[-1] == self._pad_id:
            raise ConfigurationError(
                f"chats[{index}] ends with the pad token (id {self._pad_id}) after the chat template, so the "
                f"model would pool the wrong token; give {self.model} a pad token that no chat ends with"
            )
        return ids

    def _forward(self, batch: list[list[int]]) -> list[float]:
        width = max(map(len, batch))
        input_ids = torch.full((len(batch), width), self._pad_id, dtype=torch.long)
        attention_mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, ids in enumerate(batch):
            input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
            attention_mask[row, : len(ids)] = 1
        device = self._model.device
        with torch.inference_mode():
            output = self._model(input_ids=input_ids.to(device), attention_mask=attention_mask.to(device))
        logits: list[float] = output.logits[:, 0].float().cpu().tolist()
        return logits


class TransformersMetaScorer(ClassifierMetaScorer):
    """A one-label sequence classifier that rates each judgement by the meta-RM chat (METHOD.md §8).

    The arguments are those of [`TransformersChatClassifier`][grmjudge.meta.transformers.TransformersChatClassifier]:
    the chat template of ``model``'s tokenizer renders the chat, batches of ``batch_size`` run in a worker
    thread, and a chat longer than the model's context raises
    [`InputTooLongError`][grmjudge.exceptions.InputTooLongError].
    """

    def __init__(self, model: str | os.PathLike[str] | Any, **options: Unpack[TransformersClassifierOptions]) -> None:
        super().__init__(TransformersChatClassifier(model, **options))


def _load_model(model: str | os.PathLike[str] | Any, *, dtype: str | Any | None, device: str | Any | None) -> Any:
    if not isinstance(model, str | os.PathLike):
        if dtype is not None or device is not None:
            raise ConfigurationError("dtype and device apply when loading: convert and move a loaded model yourself")
        return model.eval()
    kwargs: dict[str, Any] = {} if dtype is None else {"dtype": dtype}
    loaded: Any = transformers.AutoModelForSequenceClassification.from_pretrained(os.fspath(model), **kwargs)
    if device is not None:
        loaded = loaded.to(device)
    return loaded.eval()


def _load_tokenizer(source: str | os.PathLike[str] | Any, model_name: str) -> Any:
    if isinstance(source, str | os.PathLike):
        tokenizer: Any = transformers.AutoTokenizer.from_pretrained(os.fspath(source))
    elif hasattr(source, "apply_chat_template"):
        tokenizer = source
    else:
        tokenizer = transformers.AutoTokenizer.from_pretrained(source.config.name_or_path)
    if not getattr(tokenizer, "chat_template", None):
        raise ConfigurationError(
            f"the tokenizer of {model_name} has no chat template; the classifier reads chats rendered with it"
        )
    return tokenizer


def _max_length(explicit: int | None, config: Any, tokenizer: Any, model_name: str) -> int:
    context: int | None = getattr(config, "max_position_embeddings", None)
    tokenizer_limit: int | None = getattr(tokenizer, "model_max_length", None)
    if context is None and tokenizer_limit is not None and tokenizer_limit < _UNSET_MAX_LENGTH:
        context = tokenizer_limit
    if explicit is None:
        if context is None:
            raise ConfigurationError(f"cannot tell the context length of {model_name}: pass max_length=")
        return context
    if explicit < 1 or (context is not None and explicit > context):
        raise ConfigurationError(f"max_length must be between 1 and the model's context ({context}), got {explicit}")
    return explicit


def _model_name(source: str | os.PathLike[str] | Any, model: Any) -> str:
    if isinstance(source, str | os.PathLike):
        return os.fspath(source)
    return str(getattr(model.config, "name_or_path", "") or type(model).__name__)
