"""rxgpt's benchmark suite: rxgpt against its peers, alternating, on the same bytes.

Run it with ``make bench`` (``python -m benchmarks``); see ``docs/performance.md``.
"""
