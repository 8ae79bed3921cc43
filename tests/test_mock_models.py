"""The embedded server's model catalog and token counts, through each vendor's own client.

The SDKs are the oracles: OpenAI's and Anthropic's ``models`` calls, Anthropic's
``count_tokens``, google-genai's ``models.list`` / ``get`` / ``count_tokens`` at both API
versions, Ollama's ``show`` / ``ps`` / ``list`` and its "load" requests, and litellm's model
info for Ollama (which reads ``/api/show``). A count must be what the usage of an answer to
the same body reports, for any body (a hypothesis property over a server in a thread).
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import anthropic
import httpx
import ollama
import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # (no fetch at import)

import litellm
from google import genai
from litellm.llms.custom_httpx.http_handler import HTTPHandler
from litellm.llms.ollama.completion.transformation import OllamaConfig

from rxgpt.mock import MockServer
from rxgpt.mock._models import CONTEXT_LENGTH

pytestmark = [
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

KEY = "sk-test-catalog"
MODEL = "catalog-model"
MESSAGES: Any = [{"role": "user", "content": "Count these five words"}]


@pytest.fixture
async def mock() -> AsyncIterator[MockServer]:
    async with MockServer(model=MODEL, tokens=4) as running:
        yield running


@pytest.fixture
async def keyed() -> AsyncIterator[MockServer]:
    async with MockServer(model=MODEL, tokens=4, api_key=KEY) as running:
        yield running


async def test_openai_lists_and_retrieves_models(keyed: MockServer) -> None:
    async with openai.AsyncOpenAI(base_url=keyed.base_url, api_key=KEY, max_retries=0) as client:
        listed = [model.id async for model in client.models.list()]
        model = await client.models.retrieve("meta-llama/Llama-3.1-8B-Instruct")
    assert listed == [MODEL]
    assert (model.id, model.object, model.owned_by) == (
        "meta-llama/Llama-3.1-8B-Instruct",
        "model",
        "rxgpt",
    )
    async with openai.AsyncOpenAI(
        base_url=keyed.base_url, api_key="sk-wrong", max_retries=0
    ) as wrong:
        with pytest.raises(openai.AuthenticationError):
            await wrong.models.retrieve(MODEL)


async def test_anthropic_lists_models_and_counts_what_usage_reports(keyed: MockServer) -> None:
    async with anthropic.AsyncAnthropic(base_url=keyed.url, api_key=KEY, max_retries=0) as client:
        await _anthropic_catalog_and_counts(client)
    async with anthropic.AsyncAnthropic(
        base_url=keyed.url, api_key="sk-wrong", max_retries=0
    ) as wrong:
        with pytest.raises(anthropic.AuthenticationError):
            await wrong.messages.count_tokens(model="claude-x", messages=MESSAGES)
        with pytest.raises(anthropic.AuthenticationError):
            await wrong.models.list()


async def _anthropic_catalog_and_counts(client: anthropic.AsyncAnthropic) -> None:
    page = await client.models.list()
    assert [model.id for model in page.data] == [MODEL] and page.has_more is False
    assert page.data[0].type == "model" and page.data[0].max_input_tokens == CONTEXT_LENGTH
    assert (await client.models.retrieve("claude-x")).id == "claude-x"
    bodies: list[dict[str, Any]] = [
        {"messages": MESSAGES},
        {"messages": MESSAGES, "system": "You count words, three more"},
        {
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "a b c"}]},
                {"role": "assistant", "content": "d e"},
                {"role": "user", "content": "f"},
            ]
        },
    ]
    counts = []
    for body in bodies:
        counted = await client.messages.count_tokens(model="claude-x", **body)
        answer = await client.messages.create(model="claude-x", max_tokens=8, **body)
        assert counted.input_tokens == answer.usage.input_tokens
        counts.append(counted.input_tokens)
    assert counts == [4, 9, 6]  # the words of every message and of the system prompt
    with pytest.raises(anthropic.BadRequestError, match="messages"):
        await client.messages.count_tokens(model="claude-x", messages=[])


@pytest.mark.parametrize("version", ["v1beta", "v1"])
async def test_google_genai_lists_gets_and_counts(mock: MockServer, version: str) -> None:
    client = genai.Client(api_key="k", http_options={"base_url": mock.url, "api_version": version})
    names = [model.name async for model in await client.aio.models.list()]
    assert names == [f"models/{MODEL}"]
    model = await client.aio.models.get(model="gemini-2.5-flash")
    assert model.name == "models/gemini-2.5-flash"
    assert model.supported_actions is not None and "countTokens" in model.supported_actions
    contents = "one two three four five six"
    counted = await client.aio.models.count_tokens(model="gemini-2.5-flash", contents=contents)
    answer = await client.aio.models.generate_content(model="gemini-2.5-flash", contents=contents)
    assert answer.usage_metadata is not None
    assert counted.total_tokens == answer.usage_metadata.prompt_token_count == 6


async def test_gemini_catalog_errors_are_geminis(mock: MockServer) -> None:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        url = f"{mock.url}/v1beta/models/gemini-x:generateContent"
        async with session.get(url) as resp:
            assert resp.status == 404
            error = (await resp.json())["error"]
            assert error["status"] == "NOT_FOUND" and "models/gemini-x" in error["message"]
        # (/v1/models is shared: a Gemini key asks for Gemini's shape)
        async with session.get(f"{mock.url}/v1/models", headers={"x-goog-api-key": "k"}) as resp:
            assert (await resp.json()) == {"models": [await _gemini_model(session, mock)]}
        async with session.get(f"{mock.url}/v1/nothing?key=k") as resp:
            assert resp.status == 404 and (await resp.json())["error"]["code"] == 404


async def _gemini_model(session: aiohttp.ClientSession, mock: MockServer) -> Any:
    async with session.get(f"{mock.url}/v1beta/models/{MODEL}") as resp:
        assert resp.status == 200
        return await resp.json()


async def test_ollama_show_ps_list_and_load(mock: MockServer) -> None:
    client = ollama.AsyncClient(host=mock.url, timeout=10)
    try:
        await _ollama_catalog_and_loads(client)
    finally:
        await client.close()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        async with session.get(mock.url + "/") as resp:
            assert resp.status == 200 and await resp.text() == "Ollama is running"
        async with session.post(f"{mock.url}/api/show", data=b"{") as resp:
            assert resp.status == 400 and "error" in await resp.json()


async def _ollama_catalog_and_loads(client: ollama.AsyncClient) -> None:
    shown = await client.show("llama3.2")
    assert shown.capabilities == ["completion", "tools", "thinking"]
    assert shown.modelinfo is not None and shown.modelinfo["rxgpt.context_length"] == CONTEXT_LENGTH
    assert shown.details is not None and shown.details.family == "rxgpt"
    running = await client.ps()
    assert [model.name for model in running.models] == [MODEL]
    assert running.models[0].context_length == CONTEXT_LENGTH
    assert [model.model for model in (await client.list()).models] == [MODEL]
    for stream in (False, True):  # (a load is one object, streamed or not)
        loaded = await client.generate(model="llama3.2", stream=stream)
        if stream:
            loaded = [part async for part in loaded][-1]
        assert (loaded.done, loaded.done_reason, loaded.response) == (True, "load", "")
        chat = await client.chat(model="llama3.2", messages=[], stream=False)
        assert (chat.done_reason, chat.message.content) == ("load", "")
        unloaded = await client.generate(model="llama3.2", keep_alive=0)
        assert unloaded.done_reason == "unload"


async def test_litellm_reads_the_ollama_models_capabilities(
    mock: MockServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """litellm asks ``/api/show`` whether an Ollama model calls tools, and its context."""
    http = HTTPHandler(timeout=10)  # (litellm's own pools a socket until the process ends)
    monkeypatch.setattr(litellm, "module_level_client", http, raising=False)
    try:
        info = await asyncio.wait_for(
            asyncio.to_thread(OllamaConfig().get_model_info, "ollama/llama3.2", api_base=mock.url),
            timeout=20,
        )
    finally:
        http.close()
    assert info is not None
    assert info["supports_function_calling"] is True
    assert info["max_input_tokens"] == CONTEXT_LENGTH


# --------------------------------------------------------------------------- any body


@pytest.fixture(scope="module")
def threaded() -> Iterator[httpx.Client]:
    """A client of a mock server on its own loop in a thread, for synchronous property tests."""
    ready = threading.Event()
    url: list[str] = []
    stop: list[asyncio.Event] = []
    loop = asyncio.new_event_loop()

    async def run() -> None:
        async with MockServer(tokens=3) as running:
            url.append(running.url)
            stop.append(asyncio.Event())
            ready.set()
            await stop[0].wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(run(),), daemon=True)
    thread.start()
    assert ready.wait(10), "the server did not start"
    with httpx.Client(base_url=url[0], timeout=10) as http:
        yield http
    loop.call_soon_threadsafe(stop[0].set)
    thread.join(10)
    assert not thread.is_alive()
    loop.close()


TEXT = st.text(alphabet=st.sampled_from("ab \n\t\u00e9\u4e2d"), max_size=12)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)
MESSAGE = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "assistant", "system", 5])},
    optional={
        "content": TEXT
        | st.lists(st.fixed_dictionaries({"type": st.just("text"), "text": TEXT}), max_size=2)
        | JSON
    },
)
ANTHROPIC_BODY = st.fixed_dictionaries(
    {"model": st.just("claude-x"), "messages": st.lists(MESSAGE, max_size=3) | JSON},
    optional={"system": TEXT | JSON, "tools": JSON},
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=ANTHROPIC_BODY | JSON)
def test_anthropic_count_of_any_body_is_its_usage_or_a_400(
    threaded: httpx.Client, body: Any
) -> None:
    counted = threaded.post("/v1/messages/count_tokens", json=body)
    assert counted.status_code in (200, 400), counted.text
    if counted.status_code == 400:
        assert counted.json()["type"] == "error"
        assert counted.json()["error"]["type"] == "invalid_request_error"
        return
    answer = threaded.post("/v1/messages", json={**body, "max_tokens": 4})
    assert answer.status_code == 200, answer.text
    assert counted.json() == {"input_tokens": answer.json()["usage"]["input_tokens"]}


GEMINI_BODY = st.fixed_dictionaries(
    {
        "contents": st.lists(
            st.fixed_dictionaries(
                {
                    "role": st.sampled_from(["user", "model"]),
                    "parts": st.lists(
                        st.fixed_dictionaries({"text": TEXT}), min_size=1, max_size=2
                    ),
                }
            ),
            min_size=1,
            max_size=3,
        )
        | JSON
    },
    optional={"systemInstruction": JSON},
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=GEMINI_BODY | JSON, wrapped=st.booleans())
def test_gemini_count_of_any_body_is_its_usage_or_a_400(
    threaded: httpx.Client, body: Any, wrapped: bool
) -> None:
    sent = {"generateContentRequest": body} if wrapped and isinstance(body, dict) else body
    counted = threaded.post("/v1beta/models/gemini-x:countTokens", json=sent)
    assert counted.status_code in (200, 400), counted.text
    if counted.status_code == 400:
        assert counted.json()["error"]["status"] == "INVALID_ARGUMENT"
        return
    answer = threaded.post("/v1beta/models/gemini-x:generateContent", json=body)
    assert answer.status_code == 200, answer.text
    prompt = answer.json()["usageMetadata"]["promptTokenCount"]
    assert counted.json()["totalTokens"] == prompt
