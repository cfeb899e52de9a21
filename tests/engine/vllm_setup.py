"""How the tests run vLLM's engine in-process on a 2-core CPU machine (shared by every test that builds one)."""

from __future__ import annotations

from typing import Any

ENGINE_OPTIONS: dict[str, Any] = {
    "max_model_len": 2048,
    "dtype": "float32",
    "enforce_eager": True,  # no torch.compile: starts in seconds on CPU
    "distributed_executor_backend": "uni",  # the model runs in the engine-core process, no extra worker
}
CPU_ENV = {
    "VLLM_CPU_KVCACHE_SPACE": "1",  # GiB; the default (4) is wasteful for a tiny model
    "VLLM_ENABLE_V1_MULTIPROCESSING": "0",  # keeps the "uni" executor on CPU (else vLLM forces "mp")
    "VLLM_NO_USAGE_STATS": "1",
    "DO_NOT_TRACK": "1",
}
