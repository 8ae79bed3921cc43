"""The prompts a run sends, built up front and without downloads.

Workloads (``BenchConfig.dataset``):

* ``random``: prompts of ``input_len`` tokens asking for ``output_len`` tokens, each length
  drawn uniformly within ±``range_ratio`` (vLLM's ``random`` dataset);
* ``shared-prefix``: the same, after one common prefix of ``prefix_len`` tokens (prefix
  caching);
* ``sharegpt``: a ShareGPT-format JSON file (a list of ``{"conversations": [{"from":
  "human", "value": ...}, {"from": "gpt", "value": ...}]}``): the first human turn is the
  prompt, the length of the recorded answer the output length;
* ``jsonl``: one prompt per line: a JSON string, or an object with ``prompt`` (text) or
  ``messages`` (chat messages), and optionally ``output_tokens`` / ``max_tokens``;
* ``sample``: the small ShareGPT-format file shipped in ``rxgpt/bench/data``.

A dataset that is missing, unreadable or holds no usable prompt raises ValueError, its
message naming the file (and line) and the problem.

Token counts without a tokenizer: random prompts are made of short common English words,
each one token (with its leading space) in the GPT-2, cl100k/o200k and Llama vocabularies,
so a prompt of N words is about N tokens. Other text is estimated by :func:`estimate_tokens`
(words and punctuation marks, each one token), which is within roughly ±25 % of real BPE
counts for English prose. The server's own usage figures replace these estimates in the
report whenever the stream reports usage.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

from .._files import json_problem, loads, read_text
from ._config import MAX_OUTPUT_TOKENS, MAX_WORKLOAD_TOKENS, BenchConfig

__all__ = ["BenchPrompt", "build_prompts", "estimate_tokens"]

_WORDS = tuple(
    [
        "the",
        "of",
        "and",
        "to",
        "in",
        "is",
        "was",
        "he",
        "for",
        "it",
        "with",
        "as",
        "his",
        "on",
        "be",
        "at",
        "by",
        "had",
        "are",
        "but",
        "from",
        "or",
        "have",
        "an",
        "they",
        "which",
        "one",
        "you",
        "were",
        "her",
        "all",
        "she",
        "there",
        "would",
        "their",
        "we",
        "him",
        "been",
        "has",
        "when",
        "who",
        "will",
        "more",
        "no",
        "if",
        "out",
        "so",
        "said",
        "what",
        "up",
        "its",
        "about",
        "into",
        "than",
        "them",
        "can",
        "only",
        "other",
        "new",
        "some",
        "could",
        "time",
        "these",
        "two",
        "may",
        "then",
        "do",
        "first",
        "any",
        "my",
        "now",
        "such",
        "like",
        "our",
        "over",
        "man",
        "me",
        "even",
        "most",
        "made",
        "after",
        "also",
        "did",
        "many",
        "before",
        "must",
        "through",
        "back",
        "years",
        "where",
        "much",
        "your",
        "way",
        "well",
        "down",
        "should",
        "because",
        "each",
        "just",
        "those",
        "people",
        "how",
        "too",
        "little",
        "state",
        "good",
        "very",
        "make",
        "world",
        "still",
        "own",
        "see",
        "men",
        "work",
        "long",
        "get",
        "here",
        "between",
        "both",
        "life",
        "being",
        "under",
        "never",
        "day",
        "same",
        "another",
        "know",
        "while",
        "last",
        "might",
        "us",
        "great",
        "old",
        "year",
        "off",
        "come",
        "since",
        "against",
        "go",
        "came",
        "right",
        "used",
        "take",
        "three",
        "house",
        "use",
        "during",
        "without",
        "again",
        "place",
        "around",
        "however",
        "home",
        "small",
        "found",
        "thought",
        "went",
        "say",
        "part",
        "once",
        "general",
        "high",
        "upon",
        "school",
        "every",
        "does",
        "got",
        "united",
        "left",
        "number",
        "course",
        "war",
        "until",
        "always",
        "away",
        "something",
        "fact",
        "though",
        "water",
        "less",
        "public",
        "put",
        "think",
        "almost",
        "hand",
        "enough",
        "far",
        "took",
        "head",
        "yet",
        "government",
        "system",
        "better",
        "set",
        "told",
        "nothing",
        "night",
        "end",
        "why",
        "called",
        "asked",
    ]
)

#: The largest dataset file read (ShareGPT V3, the usual one, is 0.64 GB).
MAX_DATASET_BYTES = 2**30
#: The most characters of file prompts a run builds (each is also encoded as a body): the
#: one workload limit, :data:`MAX_WORKLOAD_TOKENS`, at 8 characters a token (a word or a
#: punctuation mark and its space, as :func:`estimate_tokens` counts).
MAX_WORKLOAD_CHARS = MAX_WORKLOAD_TOKENS * 8
#: Prompts a run builds when its count is open (a duration run), reused in turn.
POOL = 1000
#: The most prompts a run builds up front (one per request up to this, then reused in turn).
MAX_PROMPTS = POOL * 10

_PIECES = re.compile(r"\w+|[^\w\s]")


def estimate_tokens(text: str) -> int:
    """An estimate of ``text``'s token count without a tokenizer (at least 1)."""
    return max(1, len(_PIECES.findall(text)))


@dataclass(frozen=True, slots=True)
class BenchPrompt:
    """One prompt: its chat messages, estimated input tokens and the output tokens asked."""

    messages: tuple[dict[str, Any], ...]
    input_tokens: int
    output_tokens: int

    @property
    def text(self) -> str:
        """The prompt's text (the user turns joined), for completions-style APIs."""
        return "\n\n".join(str(m.get("content", "")) for m in self.messages)


def _words(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(n))


def _length(rng: random.Random, mean: int, ratio: float) -> int:
    low = max(1, int(mean * (1 - ratio)))
    high = max(low, int(mean * (1 + ratio)))
    return rng.randint(low, high)


def _user(text: str) -> tuple[dict[str, Any], ...]:
    return ({"role": "user", "content": text},)


def _random(config: BenchConfig, count: int, rng: random.Random) -> list[BenchPrompt]:
    prefix = ""
    if config.dataset == "shared-prefix" and config.prefix_len:
        prefix = _words(random.Random(config.seed ^ 0x5EED), config.prefix_len) + " "
    out = []
    for i in range(count):
        n_in = _length(rng, config.input_len, config.range_ratio)
        n_out = _length(rng, config.output_len, config.range_ratio)
        # a distinct head per prompt keeps servers' prefix caches out of random runs
        text = f"{prefix}{i} {_words(rng, max(n_in - 1, 0))}".rstrip()
        out.append(BenchPrompt(_user(text), n_in + config.prefix_len * bool(prefix), n_out))
    return out


def _sharegpt(text: str, where: str) -> list[BenchPrompt]:
    data = loads(text, where)
    if not isinstance(data, list):
        raise ValueError(f"{where}: a ShareGPT file is a JSON list of conversations")
    out = []
    for number, entry in enumerate(data, 1):
        turns = (
            entry.get("conversations") or entry.get("conversation")
            if isinstance(entry, dict)
            else None
        )
        if not isinstance(turns, list) or len(turns) < 2:
            continue
        first, second = turns[0], turns[1]
        if not (isinstance(first, dict) and isinstance(second, dict)):
            continue
        if first.get("from") not in ("human", "user") or not isinstance(first.get("value"), str):
            continue
        answer = second.get("value")
        if not isinstance(answer, str):
            continue
        prompt = first["value"]
        _check(_user(prompt), where, f"conversation {number}")
        # (clamped, not refused: the length is an estimate from the answer's text, which no
        # one asked for; a JSONL ``output_tokens`` is a number its author wrote, refused)
        n_out = min(estimate_tokens(answer), MAX_OUTPUT_TOKENS)
        out.append(BenchPrompt(_user(prompt), estimate_tokens(prompt), n_out))
    return out


def _check(messages: tuple[dict[str, Any], ...], where: str, which: str) -> None:
    """Refuse a prompt no request body can carry (a lone surrogate, a 100-digit number)."""
    problem = json_problem(list(messages))
    if problem is not None:
        raise ValueError(f"{where}: {which}: {problem}")


def _jsonl(text: str, where: str, default_out: int) -> list[BenchPrompt]:
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        item = loads(line, f"{where}:{number}")
        n_out = default_out
        if isinstance(item, str):
            messages = _user(item)
        elif isinstance(item, dict):
            key = "output_tokens" if "output_tokens" in item else "max_tokens"
            raw_out = item.get(key)
            if isinstance(raw_out, int) and not isinstance(raw_out, bool) and raw_out > 0:
                if raw_out > MAX_OUTPUT_TOKENS:
                    raise ValueError(
                        f"{where}:{number}: {key} {raw_out} is more than the "
                        f"{MAX_OUTPUT_TOKENS} output tokens a request asks for"
                    )
                n_out = raw_out
            if isinstance(item.get("messages"), list):
                messages = tuple(dict(m) for m in item["messages"] if isinstance(m, dict))
            elif isinstance(item.get("prompt"), str):
                messages = _user(item["prompt"])
            else:
                raise ValueError(f"{where}:{number}: expected a 'prompt' or 'messages' field")
        else:
            raise ValueError(f"{where}:{number}: expected a string or an object")
        _check(messages, where, f"line {number}")
        text_in = " ".join(str(m.get("content", "")) for m in messages)
        out.append(BenchPrompt(messages, estimate_tokens(text_in), n_out))
    return out


def _file_prompts(config: BenchConfig) -> list[BenchPrompt]:
    if config.dataset == "sample":
        where = "rxgpt/bench/data/sample_sharegpt.json"
        text = (
            resources.files("rxgpt.bench")
            .joinpath("data/sample_sharegpt.json")
            .read_text(encoding="utf-8")
        )
        return _sharegpt(text, where)
    assert config.dataset_path is not None
    text = read_text(config.dataset_path, MAX_DATASET_BYTES, "dataset")
    if config.dataset == "sharegpt":
        return _sharegpt(text, config.dataset_path)
    return _jsonl(text, config.dataset_path, config.output_len)


def build_prompts(config: BenchConfig, count: int) -> list[BenchPrompt]:
    """``count`` prompts for ``config``'s workload, the same for the same seed.

    File datasets are shuffled with the seed and reused in turn when ``count`` is larger;
    ``max_tokens``, when set, replaces every prompt's output length.
    """
    rng = random.Random(config.seed)
    if config.dataset in ("random", "shared-prefix"):
        _refuse_large(config, count)
        prompts = _random(config, count, rng)
    else:
        pool = _file_prompts(config)
        if not pool:
            raise ValueError(f"dataset {config.dataset_path or config.dataset} has no prompt")
        rng.shuffle(pool)
        prompts = [pool[i % len(pool)] for i in range(count)]
        size = sum(len(p.text) for p in prompts)
        if size > MAX_WORKLOAD_CHARS:
            raise ValueError(
                f"{count} prompts of dataset {config.dataset_path or config.dataset} hold "
                f"{size} characters, more than the {MAX_WORKLOAD_CHARS} a run builds "
                "(lower --num-prompts)"
            )
    if config.max_tokens is not None:
        limit = config.max_tokens
        prompts = [BenchPrompt(p.messages, p.input_tokens, limit) for p in prompts]
    return prompts


def _refuse_large(config: BenchConfig, count: int) -> None:
    """Refuse random prompts of more than :data:`MAX_WORKLOAD_TOKENS` tokens in all."""
    prefix = config.prefix_len if config.dataset == "shared-prefix" else 0
    longest = prefix + max(1, int(config.input_len * (1 + config.range_ratio)))
    if count * longest > MAX_WORKLOAD_TOKENS:
        raise ValueError(
            f"{count} prompts of up to {longest} tokens are {count * longest} tokens, more "
            f"than the {MAX_WORKLOAD_TOKENS} a run builds (prompts are built up front, at "
            f"most {MAX_PROMPTS} and then reused): lower --num-prompts, --input-len or "
            "--prefix-len"
        )
