"""Replay storage: late subscribers get every delta, and an open stream keeps no GC-tracked
object per event (the cyclic collector's cost at thousands of open streams)."""

from __future__ import annotations

import asyncio
import gc

from helpers import DONE, FINISH, ROLE, chunk
from hypothesis import given
from hypothesis import strategies as st

from rxgpt import (
    ChatStream,
    Client,
    Delta,
    FinishDelta,
    Heartbeat,
    ReasoningDelta,
    RoleDelta,
    TextDelta,
    ToolCallArguments,
)
from rxgpt._disposable import NOTHING
from rxgpt._fusion import SLICE, Batched, subscribe_batches
from rxgpt._replay import AllItems, DeltaLog, LastItems
from rxgpt.mock import MockServer

TIMEOUT = 10.0

deltas = st.one_of(
    st.builds(TextDelta, st.integers(0, 3), st.text(max_size=5), st.integers(0, 2)),
    st.builds(RoleDelta, st.integers(0, 3), st.sampled_from(["assistant", "user"])),
    st.builds(ReasoningDelta, st.integers(0, 2), st.text(max_size=5)),
    st.builds(ToolCallArguments, st.integers(0, 2), st.integers(0, 3), st.text(max_size=5)),
    st.builds(FinishDelta, st.integers(0, 2), st.sampled_from(["stop", "length"])),
    st.builds(Heartbeat, st.text(max_size=3)),
)


@given(st.lists(st.lists(deltas, max_size=6), max_size=8))
def test_the_delta_log_gives_back_exactly_what_it_took(batches: list[list[Delta]]) -> None:
    log = DeltaLog()
    for batch in batches:
        log.extend(batch)
    flat = [d for batch in batches for d in batch]
    assert log.items() == flat
    assert [type(d) for d in log.items()] == [type(d) for d in flat]
    assert len(log) == len(flat)


@given(st.lists(st.integers(), max_size=30), st.integers(1, 5))
def test_all_and_last_items(items: list[int], n: int) -> None:
    every, last = AllItems[int](), LastItems[int](n)
    every.extend(items)
    last.extend(items)
    assert every.items() == items
    assert last.items() == items[-n:]


def test_the_commonest_delta_is_kept_untracked() -> None:
    log = DeltaLog()
    log.extend([TextDelta(0, "a"), TextDelta(1, "b"), TextDelta(0, "c", part=1)])
    kept = log._items
    assert not gc.is_tracked(kept[0])  # choice 0, part 0: its text
    assert gc.is_tracked(kept[1]) and gc.is_tracked(kept[2])  # the others as they are


async def test_an_open_stream_keeps_no_tracked_object_per_event() -> None:
    tokens = 3_000
    gc.collect()
    before = sum(1 for o in gc.get_objects() if type(o) is TextDelta)  # other tests' own
    async with MockServer(tokens=tokens) as server, Client(server.base_url, "sk-t") as client:
        stream = client.chat(model="m", messages=[{"role": "user", "content": "hi"}])
        early: list[Delta] = []
        stream.subscribe(early.append)
        await asyncio.wait_for(stream.completion(), TIMEOUT)
        del early[:]  # only the stream itself holds its deltas now
        gc.collect()
        alive = sum(1 for o in gc.get_objects() if type(o) is TextDelta) - before
        assert alive < 50, alive  # not one per token

        late: list[Delta] = []  # ...yet a late subscriber still gets every one of them
        stream.subscribe(late.append)
        texts = [d for d in late if isinstance(d, TextDelta) and d.text]
        assert len(texts) == tokens
        assert "".join(d.text for d in texts) == (await stream.completion()).text


async def test_a_long_read_is_passed_on_in_slices_whose_deltas_die_young() -> None:
    # One network read holding 5 slices of events: its deltas reach the subscribers slice
    # by slice (at most SLICE payloads' worth alive at once), not all together at the end.
    events = 5 * SLICE + 7
    body = ROLE + chunk({"content": "x"}) * events + FINISH + DONE

    def make_source(flow: object, progress: object) -> Batched[bytes]:
        def subscribe(on_batch, on_error, on_completed):  # type: ignore[no-untyped-def]
            on_batch([body])  # the whole body in one read
            on_completed()
            return NOTHING

        return Batched(subscribe)

    stream = ChatStream(make_source)  # type: ignore[arg-type]
    sizes: list[int] = []
    alive: list[int] = []
    gc.collect()
    before = sum(1 for o in gc.get_objects() if type(o) is TextDelta)  # other tests' own

    def on_batch(batch: list[Delta]) -> None:
        sizes.append(len(batch))
        alive.append(sum(1 for o in gc.get_objects() if type(o) is TextDelta) - before)

    subscribe_batches(stream.observable, on_batch, lambda e: None, lambda: None)
    stream.start()
    assert (await asyncio.wait_for(stream.completion(), TIMEOUT)).text == "x" * events
    assert sum(sizes) >= events and len(sizes) >= events // SLICE
    assert max(sizes) <= SLICE + 4  # a slice of payloads (the first also has role, info)
    assert max(alive) <= 2 * SLICE + 4  # this slice's deltas (and at most the one before)
