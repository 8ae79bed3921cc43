"""Deterministic SSE bodies and read patterns for the benchmarks.

Every generator is a pure function of its arguments (fixed seeds, no clock, no I/O), so two
runs, two machines and two peers always see the same bytes. A :class:`Body` carries the bytes
and what a correct decoder must find in them (the data of every event, in order, and for
chat bodies the accumulated answer text), so each benchmark can check its peers.

Shapes:

- :func:`openai_chat_body`: ``chat.completion.chunk`` events in the byte layout of the
  recordings in ``tests/fixtures/recorded/openai-chat`` (a role chunk, content chunks, a
  finish chunk, a usage chunk with ``"choices": []``, then ``data: [DONE]``), ~170 bytes per
  event, with some 2-, 3- and 4-byte UTF-8 tokens.
- :func:`big_line_body`: one event whose single ``data:`` line is several MiB long.
- :func:`heartbeat_body`: nothing but ``:`` comment lines (keep-alives), then one event.
- :func:`multibyte_body`: events whose text is mostly non-ASCII.

Read patterns (how the network cuts the body): :func:`split_random` (random sizes in a
range, seeded), :func:`split_fixed` and :func:`split_events` (one event per read, as a
server that flushes every event and a client that keeps up would see it).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field

__all__ = [
    "DONE",
    "Body",
    "big_line_body",
    "heartbeat_body",
    "multibyte_body",
    "openai_chat_body",
    "split_events",
    "split_fixed",
    "split_random",
]

#: The data of the event that ends an OpenAI stream.
DONE = "[DONE]"

_WORDS: tuple[str, ...] = (
    " the", " a", " of", " and", " to", " in", " is", " it", " that", " for", " stream",
    " token", " server", " client", " event", " data", " model", " answer", " message",
    " network", " buffer", " socket", " line", " chunk", " frame", " request", " response",
    " quick", " brown", " fox", " reactive", " async", " loop", " await", " value", " result",
    " delta", " choice", " usage", " prompt", " every", " each", " some", " often", " never",
    " because", " however", " Python", " JSON", " HTTP", ",", ",", ".", ".", "!", "?", "\n",
    " café", " naïve", " →", " 日本", " über", " 🚀", ' "quoted"',
)  # fmt: skip
_MULTIBYTE_TEXT: tuple[str, ...] = (
    "日本語のテキスト", "Ünïcödé", "🚀🌍✨", "→ ← ↑ ↓", "Ελληνικά", "中文字符", "한국어", "café",
    "Ωμέγα", "😀😃😄", "ñandú", "ß", "Ж", "€", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
)  # fmt: skip


@dataclass(slots=True)
class Body:
    """An SSE response body and what a correct decoder must get out of it.

    ``events`` holds the data of every event a WHATWG decoder dispatches, in order (the
    ``[DONE]`` marker included); ``text`` is the answer's content for chat bodies;
    ``comments`` counts the comment lines (heartbeats).
    """

    name: str
    data: bytes
    events: list[str]
    text: str = ""
    comments: int = 0
    info: dict[str, object] = field(default_factory=dict)

    @property
    def size(self) -> int:
        """Size of the body in bytes."""
        return len(self.data)


def _dumps(obj: object) -> str:
    """Compact JSON with non-ASCII kept, like OpenAI's servers write it."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def _chunk(head: str, choice: str) -> str:
    return head + choice + "]}"


def openai_chat_body(chunks: int = 20_000, *, seed: int = 1727346171) -> Body:
    """An OpenAI Chat Completions stream of ``chunks`` chunks (at least 4), then ``[DONE]``.

    Chunk 0 carries the role, chunks 1..n-3 one content token each, chunk n-2 the finish
    reason and chunk n-1 the usage (``"choices": []``), as with
    ``stream_options.include_usage``. Events are ~170 bytes on the wire.
    """
    if chunks < 4:
        raise ValueError("an OpenAI chat body needs at least 4 chunks")
    rng = random.Random(seed)
    head = (
        '{"id":"chatcmpl-B9x","object":"chat.completion.chunk","created":1727346171,'
        '"model":"gpt-4o","choices":['
    )
    events: list[str] = [
        _chunk(
            head,
            '{"index":0,"delta":{"role":"assistant","content":"","refusal":null},'
            '"logprobs":null,"finish_reason":null}',
        )
    ]
    tokens: list[str] = []
    for _ in range(chunks - 3):
        token = rng.choice(_WORDS)
        tokens.append(token)
        events.append(
            _chunk(
                head,
                '{"index":0,"delta":{"content":' + _dumps(token) + '},"finish_reason":null}',
            )
        )
    events.append(_chunk(head, '{"index":0,"delta":{},"finish_reason":"stop"}'))
    usage = {"prompt_tokens": 19, "completion_tokens": chunks - 3, "total_tokens": chunks + 16}
    events.append(head + '],"usage":' + _dumps(usage) + "}")
    events.append(DONE)
    data = "".join(f"data: {event}\n\n" for event in events).encode()
    return Body(
        name=f"openai-chat-{chunks}",
        data=data,
        events=events,
        text="".join(tokens),
        info={"chunks": chunks},
    )


def big_line_body(size: int = 4 * 1024 * 1024) -> Body:
    """One event whose ``data:`` line holds a JSON object of about ``size`` bytes, then [DONE].

    The payload is ``{"b64":"AAAA..."}``, the shape of an inline image or audio clip.
    """
    filler = "QUJD" * max((size - 12) // 4, 1)
    payload = '{"b64":"' + filler + '"}'
    data = f"data: {payload}\n\ndata: {DONE}\n\n".encode()
    return Body(name=f"big-line-{size}", data=data, events=[payload, DONE], info={"size": size})


def heartbeat_body(comments: int = 50_000) -> Body:
    """``comments`` keep-alive comments (``:\\n\\n``), then one ``data: [DONE]`` event."""
    data = b":\n\n" * comments + f"data: {DONE}\n\n".encode()
    return Body(name=f"heartbeat-{comments}", data=data, events=[DONE], comments=comments)


def multibyte_body(events: int = 5_000, *, seed: int = 7) -> Body:
    """``events`` events of mostly non-ASCII text (2-, 3- and 4-byte UTF-8), then [DONE]."""
    rng = random.Random(seed)
    datas: list[str] = []
    for index in range(events):
        words = " ".join(rng.choice(_MULTIBYTE_TEXT) for _ in range(rng.randint(3, 8)))
        datas.append(_dumps({"i": index, "text": words}))
    datas.append(DONE)
    data = "".join(f"data: {d}\n\n" for d in datas).encode()
    return Body(name=f"multibyte-{events}", data=data, events=datas)


def split_random(data: bytes, low: int, high: int, *, seed: int = 42) -> list[bytes]:
    """Cut ``data`` into reads of random sizes in ``[low, high]`` (seeded)."""
    rng = random.Random(seed)
    out: list[bytes] = []
    pos, size = 0, len(data)
    while pos < size:
        step = rng.randint(low, high)
        out.append(data[pos : pos + step])
        pos += step
    return out


def split_fixed(data: bytes, size: int) -> list[bytes]:
    """Cut ``data`` into reads of ``size`` bytes (the last one shorter)."""
    return [data[pos : pos + size] for pos in range(0, len(data), size)]


def split_events(data: bytes) -> list[bytes]:
    """One read per event: cut after every blank line (``\\n\\n``)."""
    parts = data.split(b"\n\n")
    tail = parts.pop()
    out = [part + b"\n\n" for part in parts]
    if tail:
        out.append(tail)
    return out
