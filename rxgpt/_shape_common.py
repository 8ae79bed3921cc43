"""Provider-shaped views of a :class:`~rxgpt.Completion`: what the shape writers share.

Each writer (:mod:`._shape_openai`, :mod:`._shape_anthropic`, :mod:`._shape_responses`)
takes the neutral result and rebuilds the object the provider's non-streaming API (and its
SDK's stream accumulator) would give: the accumulated text, reasoning and tool-call
arguments go into the provider's structure; identifiers and other metadata come from the
start payloads kept in ``Completion.raw`` and ``ContentPart.raw``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._completion import Choice, Completion
    from ._deltas import Usage

__all__ = ["first_choice", "usage_shape"]


def first_choice(c: Completion) -> Choice | None:
    """Choice 0, the only one a single-answer shape (Anthropic, Responses) describes."""
    return c.choices[0] if c.choices else None


def usage_shape(
    c: Completion, native: bool, build: Callable[[Usage], dict[str, Any]]
) -> dict[str, Any] | None:
    """The shape's usage: the provider's own object (a copy) if native, else ``build``'s."""
    usage = c.usage
    if usage is None:
        return None
    if native and usage.raw is not None:
        return copy.deepcopy(usage.raw)
    return build(usage)
