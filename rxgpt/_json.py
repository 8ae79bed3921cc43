"""JSON with orjson when installed (the ``fast`` extra), the standard library otherwise."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

__all__ = ["BACKEND", "JSONDecodeError", "dumps", "loads"]

loads: Callable[[str | bytes], Any]
#: What ``loads`` raises for text that is not JSON (too deep a nesting included).
JSONDecodeError: tuple[type[Exception], ...]

try:
    import orjson

    loads = orjson.loads
    JSONDecodeError = (orjson.JSONDecodeError, ValueError, TypeError)
    BACKEND = "orjson"

    def dumps(obj: Any) -> str:
        """Serialise ``obj`` compactly (no spaces, UTF-8 kept)."""
        return orjson.dumps(obj).decode()

except ImportError:  # pragma: no cover - exercised only without the fast extra
    loads = json.loads
    JSONDecodeError = (json.JSONDecodeError, ValueError, TypeError, RecursionError)
    BACKEND = "json"

    def dumps(obj: Any) -> str:
        """Serialise ``obj`` compactly (no spaces, UTF-8 kept)."""
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
