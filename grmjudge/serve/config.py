"""What a service allows and assumes: limits on requests, and the defaults of its RL rewards."""

from __future__ import annotations

from dataclasses import dataclass, field

from grmjudge.integrations.rewarder import Mode, Normalisation


@dataclass(frozen=True)
class ServiceLimits:
    """Caps that keep one request from taking the service down; a request over one gets a 4xx naming the field.

    Attributes:
        max_body_bytes: Request body size (413 above it).
        max_responses: Responses of one item, completions of one reward request.
        max_k: Samples per item (also capped by the judge's ``settings.max_k``).
        max_text_chars: Characters of one text (a response, a message, a prompt, a reference).
        max_batch_items: Items of one ``/v1/score/batch`` or ``/get_reward`` request.
        max_queue: Judging requests admitted at once; one more is answered 429 with ``Retry-After``.
        retry_after: The ``Retry-After`` seconds of a 429.
        deadline: Seconds a request may take before it is cancelled and answered 504.
        batch_concurrency: Items of one batch request judged at once.
    """

    max_body_bytes: int = 4 * 1024 * 1024
    max_responses: int = 32
    max_k: int = 64
    max_text_chars: int = 100_000
    max_batch_items: int = 1024
    max_queue: int = 512
    retry_after: int = 1
    deadline: float = 300.0
    batch_concurrency: int = 16


@dataclass(frozen=True)
class RewardDefaults:
    """How the reward endpoints judge when a request does not say.

    Attributes:
        mode: ``listwise`` (a group's completions in one call) or ``reference`` (each against its reference).
        normalisation: How votes become rewards (as ``GRMReward``).
        fallback: The reward of a completion without a verdict; ``None`` answers ``null``. ``/get_reward`` needs a
            number and uses ``0.0`` when this is ``None``.
        group_size: The completions of a group (the rollout ``n``) for requests that send a ``group_id`` without
            a ``group_size``.
        group_wait: Seconds a collected group waits for its missing completions before it is judged as it is.
        max_concurrent_calls: Judge calls of the reward endpoints in flight at once.
    """

    mode: Mode = "listwise"
    normalisation: Normalisation = "mean"
    fallback: float | None = None
    group_size: int | None = None
    group_wait: float = 10.0
    max_concurrent_calls: int = 64


@dataclass(frozen=True)
class ServiceConfig:
    """Everything the app needs besides its judge.

    Attributes:
        k: Samples per item when a request gives no ``k``.
        adaptive: Whether calls stop drawing once the best response is settled when a request does not say
            (``k`` is then a maximum); the reward endpoints always use it.
        api_keys: Bearer tokens accepted (several, for rotation); empty means no authentication (loopback only).
        limits: The request caps.
        rewards: The reward endpoints' defaults.
    """

    k: int = 8
    adaptive: bool = False
    api_keys: tuple[str, ...] = ()
    limits: ServiceLimits = field(default_factory=ServiceLimits)
    rewards: RewardDefaults = field(default_factory=RewardDefaults)

    def __repr__(self) -> str:
        keys = f"<{len(self.api_keys)} key(s)>"
        return (
            f"ServiceConfig(k={self.k}, adaptive={self.adaptive}, api_keys={keys}, limits={self.limits!r}, "
            f"rewards={self.rewards!r})"
        )
