"""The mock server's timing model: its settings, the presets of real models, output lengths.

Everything here is a pure value or function; the engine (:mod:`rxgpt.mock._engine`) uses it.

* **Prefill**: ``TTFT = ttft_ms + prefill_overhead_ms + prefill_per_token_ms * prompt tokens``
  (use ``ttft_ms`` for a constant TTFT, the other two for one that grows with the prompt),
  plus the time spent waiting for a free slot, plus up to one decode step (a sequence whose
  prefill ends joins the running batch at its next step, as in vLLM).
* **Decode**: one step every ``itl_ms`` (normal with ``itl_std_ms``, clamped to ±70 % of the
  mean, as llm-d-inference-sim does), stretched by the load factor (see
  :func:`load_factor`); each step emits ``tokens_per_chunk`` tokens of every running sequence
  in one chunk.
* **Output length**: ``tokens`` (normal with ``tokens_std``, at least 1, the same for the same
  request), capped by the request's ``max_tokens`` / ``max_completion_tokens`` / ...

:data:`PROFILES` holds presets taken from the published latency figures of real deployments
(llm-d-inference-sim's ``docs/latency-profiles.md``: batch size 1, FP16, vLLM/MLPerf numbers).
A request overrides the timing for itself with keys of its ``mock`` object
(:data:`REQUEST_KEYS`).
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "PROFILES",
    "REQUEST_KEYS",
    "Timing",
    "load_factor",
    "output_length",
    "parse_timing",
]

PROFILES: Mapping[str, Mapping[str, Any]] = {
    # 7-8B on one H100: TTFT 60-120 ms at 256 prompt tokens (overhead 25-40 ms + 0.15-0.30 ms
    # per token), ITL 10-15 ms, std 5-15 %, 1.5-2x slower near max-num-seqs.
    "llama-8b-h100": {
        "prefill_overhead_ms": 30.0,
        "prefill_per_token_ms": 0.27,
        "itl_ms": 12.0,
        "itl_std_ms": 1.2,
        "max_num_seqs": 256,
        "time_factor_under_load": 1.5,
    },
    # 7-8B on one A100: TTFT 100-180 ms at 256 tokens, ITL 15-25 ms.
    "llama-8b-a100": {
        "prefill_overhead_ms": 40.0,
        "prefill_per_token_ms": 0.39,
        "itl_ms": 20.0,
        "itl_std_ms": 2.0,
        "max_num_seqs": 256,
        "time_factor_under_load": 1.75,
    },
    # 1-3B on one H100: TTFT 30-60 ms at 256 tokens, ITL 5-8 ms.
    "llama-3b-h100": {
        "prefill_overhead_ms": 20.0,
        "prefill_per_token_ms": 0.1,
        "itl_ms": 6.5,
        "itl_std_ms": 0.65,
        "max_num_seqs": 256,
        "time_factor_under_load": 1.5,
    },
    # 13B on one H100: TTFT 120-200 ms at 256 tokens, ITL 15-22 ms.
    "llama-13b-h100": {
        "prefill_overhead_ms": 40.0,
        "prefill_per_token_ms": 0.47,
        "itl_ms": 18.0,
        "itl_std_ms": 1.8,
        "max_num_seqs": 256,
        "time_factor_under_load": 1.75,
    },
    # 70B at TP=4 on H100: TTFT 250-400 ms at 256 tokens, ITL 25-40 ms.
    "llama-70b-h100-tp4": {
        "prefill_overhead_ms": 60.0,
        "prefill_per_token_ms": 1.04,
        "itl_ms": 32.0,
        "itl_std_ms": 3.2,
        "max_num_seqs": 256,
        "time_factor_under_load": 2.0,
    },
    # 405B at TP=8: ITL 60-100 ms (TTFT scaled from the 70B figures).
    "llama-405b-h100-tp8": {
        "prefill_overhead_ms": 120.0,
        "prefill_per_token_ms": 2.5,
        "itl_ms": 80.0,
        "itl_std_ms": 8.0,
        "max_num_seqs": 128,
        "time_factor_under_load": 2.5,
    },
}
"""Named presets: :class:`~rxgpt.mock.MockConfig` fields of a real model on real hardware."""

REQUEST_KEYS = frozenset(
    (
        "ttft_ms",
        "prefill_overhead_ms",
        "prefill_per_token_ms",
        "itl_ms",
        "itl_std_ms",
        "tokens_per_chunk",
        "tokens",
        "tokens_std",
    )
)
"""The timing keys a request's ``mock`` object may set for itself."""

_INT_KEYS = frozenset(("tokens_per_chunk", "tokens"))
_JITTER_CLAMP = 0.7  # samples stay within ±70 % of the mean


@dataclass(frozen=True, slots=True)
class Timing:
    """The timing of one request (server settings, then the request's own overrides)."""

    ttft_ms: float = 0.0
    prefill_overhead_ms: float = 0.0
    prefill_per_token_ms: float = 0.0
    itl_ms: float = 0.0
    itl_std_ms: float = 0.0
    tokens_per_chunk: int = 1
    tokens: int = 64
    tokens_std: float = 0.0

    def prefill_seconds(self, prompt_tokens: int) -> float:
        """The prefill time (TTFT without queueing) for a prompt of ``prompt_tokens``."""
        ms = self.ttft_ms + self.prefill_overhead_ms + self.prefill_per_token_ms * prompt_tokens
        return max(ms, 0.0) / 1000

    @property
    def batch_key(self) -> tuple[float, float]:
        """Sequences with the same key share decode steps (one batch)."""
        return (self.itl_ms, self.itl_std_ms)

    def step_seconds(self, rng: random.Random, factor: float) -> float:
        """One decode step: ``itl_ms`` (with jitter), times the load ``factor``."""
        itl = self.itl_ms
        if itl <= 0:
            return 0.0
        if self.itl_std_ms > 0:
            low, high = itl * (1 - _JITTER_CLAMP), itl * (1 + _JITTER_CLAMP)
            itl = min(max(rng.gauss(itl, self.itl_std_ms), low), high)
        return itl * factor / 1000

    def chunks(self, tokens: int) -> int:
        """Decode steps that ``tokens`` tokens take (``tokens_per_chunk`` per step)."""
        return -(-tokens // self.tokens_per_chunk) if tokens > 0 else 0


def load_factor(running: int, max_num_seqs: int | None, factor: float) -> float:
    """The step-time multiplier: 1 with one sequence, ``factor`` with ``max_num_seqs``."""
    if factor == 1.0 or not max_num_seqs or max_num_seqs <= 1 or running <= 1:
        return 1.0
    share = min(running - 1, max_num_seqs - 1) / (max_num_seqs - 1)
    return 1.0 + (factor - 1.0) * share


def output_length(timing: Timing, digest: str, seed: Any = None) -> int:
    """The answer length before any cap: ``tokens``, or a normal draw fixed per request."""
    if timing.tokens_std <= 0:
        return max(timing.tokens, 0)
    hashed = hashlib.sha256(f"{digest}#length#{seed}".encode()).digest()
    draw = random.Random(int.from_bytes(hashed[:8], "big")).gauss(timing.tokens, timing.tokens_std)
    return max(1, round(draw))


def finite_number(value: Any) -> bool:
    """Whether an untrusted JSON value is a number a float holds: not a boolean, NaN, an
    infinity (Python's parser takes ``NaN`` and ``Infinity``) or an integer past 1e308."""
    if value.__class__ is bool or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # (an integer too big for a float)
        return False


def _number(name: str, value: Any) -> float | int:
    if not finite_number(value):
        raise ValueError(f"mock option {name!r} must be a number")
    if name in _INT_KEYS:
        if not isinstance(value, int) or value < (1 if name == "tokens_per_chunk" else 0):
            low = 1 if name == "tokens_per_chunk" else 0
            raise ValueError(f"mock option {name!r} must be an int >= {low}")
        return value
    if value < 0:
        raise ValueError(f"mock option {name!r} must be a number >= 0")
    return float(value)


def parse_timing(base: Timing, options: Mapping[str, Any]) -> Timing:
    """``base`` with the timing keys of a ``mock`` object applied (others are ignored).

    Raises:
        ValueError: a timing key with a value of the wrong type or range.
    """
    changes = {name: _number(name, options[name]) for name in REQUEST_KEYS if name in options}
    if not changes:
        return base
    fields = {name: getattr(base, name) for name in Timing.__slots__}
    fields.update(changes)
    return Timing(**fields)
