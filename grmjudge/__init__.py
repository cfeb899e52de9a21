"""grmjudge: score LLM outputs with generative reward models (DeepSeek-GRM / SPCT).

``await Judge(backend).score(query, responses, k=8, meta=True)`` samples k judgements with shuffled
response orders, optionally keeps the best half by a meta reward model, and sums the integer scores.
Importing this package loads no ML framework; heavy backends live in their own modules behind extras.
"""

from grmjudge._version import __version__
from grmjudge.adaptive import AdaptivePolicy
from grmjudge.backends.http import RetryPolicy
from grmjudge.backends.limits import RateLimits
from grmjudge.exceptions import (
    AuthenticationError,
    BackendConnectionError,
    BackendError,
    BackendResponseError,
    BackendStatusError,
    BackendTimeoutError,
    ConfigurationError,
    ContextLengthError,
    GRMJudgeError,
    InputTooLongError,
    InvalidInputError,
    MissingDependencyError,
    NoVerdictError,
    RateLimitError,
    ServerError,
)
from grmjudge.judge import Judge, JudgeItem
from grmjudge.meta import FunctionMetaScorer, MetaInput, MetaScorer
from grmjudge.parsing import Parsed, ParseFailure, ParseFailureReason, parse_boxed_scores, parse_judgement
from grmjudge.prompts import (
    DEFAULT_TEMPLATE,
    LLM_AS_JUDGE_TEMPLATE,
    SINGLE_RESPONSE_TEMPLATE,
    PromptTemplate,
)
from grmjudge.results import (
    AdaptiveProvenance,
    BatchResult,
    ItemError,
    NoVerdict,
    Provenance,
    Sample,
    SampleError,
    ScoreResult,
)
from grmjudge.settings import JudgeSettings
from grmjudge.types import Completion, Generation, GenerationRequest, Message, Usage
from grmjudge.voting import ResponseSpread, ShuffleMode

__all__ = [
    "DEFAULT_TEMPLATE",
    "LLM_AS_JUDGE_TEMPLATE",
    "SINGLE_RESPONSE_TEMPLATE",
    "AdaptivePolicy",
    "AdaptiveProvenance",
    "AuthenticationError",
    "BackendConnectionError",
    "BackendError",
    "BackendResponseError",
    "BackendStatusError",
    "BackendTimeoutError",
    "BatchResult",
    "Completion",
    "ConfigurationError",
    "ContextLengthError",
    "FunctionMetaScorer",
    "GRMJudgeError",
    "Generation",
    "GenerationRequest",
    "InputTooLongError",
    "InvalidInputError",
    "ItemError",
    "Judge",
    "JudgeItem",
    "JudgeSettings",
    "Message",
    "MetaInput",
    "MetaScorer",
    "MissingDependencyError",
    "NoVerdict",
    "NoVerdictError",
    "ParseFailure",
    "ParseFailureReason",
    "Parsed",
    "PromptTemplate",
    "Provenance",
    "RateLimitError",
    "RateLimits",
    "ResponseSpread",
    "RetryPolicy",
    "Sample",
    "SampleError",
    "ScoreResult",
    "ServerError",
    "ShuffleMode",
    "Usage",
    "__version__",
    "parse_boxed_scores",
    "parse_judgement",
]
