"""The official openai SDK against an Isobar node: what an app team sees."""
import openai
import pytest
from openai import OpenAI


@pytest.fixture(scope="module")
def client(base_url):
    return OpenAI(base_url=base_url + "/v1", api_key="unused", max_retries=0, timeout=30)


MESSAGES = [{"role": "user", "content": "Say hello"}]


def test_models_list_names_the_topology_models(client):
    ids = sorted(model.id for model in client.models.list())
    assert ids == ["chat", "claude", "locked", "overloaded", "rate-limited"]


def test_chat_non_streaming(client):
    raw = client.chat.completions.with_raw_response.create(model="chat", messages=MESSAGES, max_tokens=5)
    completion = raw.parse()
    assert raw.headers["x-request-id"]
    assert raw.headers["x-isobar-backend"] == "engine"
    assert completion.model == "emu-chat"  # the deployment that served
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage.completion_tokens == 5
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + 5


def test_chat_streaming_without_usage(client):
    chunks = list(client.chat.completions.create(model="chat", messages=MESSAGES, max_tokens=6, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert len(text.split()) == 6
    assert chunks[-1].choices[0].finish_reason == "length"
    # The gateway asked upstream for usage, but this client did not: no usage reaches it.
    assert all(c.usage is None for c in chunks)


def test_chat_streaming_include_usage(client):
    chunks = list(
        client.chat.completions.create(
            model="chat", messages=MESSAGES, max_tokens=4, stream=True, stream_options={"include_usage": True}
        )
    )
    last = chunks[-1]
    assert last.choices == []
    assert last.usage.completion_tokens == 4
    assert sum(1 for c in chunks if c.usage is not None) == 1


def test_text_completions(client):
    completion = client.completions.create(model="chat", prompt="Once upon a time", max_tokens=3)
    assert len(completion.choices[0].text.split()) == 3
    streamed = "".join(c.choices[0].text for c in client.completions.create(
        model="chat", prompt="Once", max_tokens=3, stream=True) if c.choices)
    assert streamed == completion.choices[0].text


def test_embeddings(client):
    result = client.embeddings.create(model="chat", input=["alpha", "beta"])
    assert [d.index for d in result.data] == [0, 1]
    assert all(len(d.embedding) == 16 for d in result.data)
    assert result.data[0].embedding != result.data[1].embedding
    again = client.embeddings.create(model="chat", input="alpha", encoding_format="float")
    assert again.data[0].embedding == pytest.approx(result.data[0].embedding, abs=1e-6)


def test_openai_client_to_anthropic_backend(client):
    completion = client.chat.completions.create(
        model="claude", messages=[{"role": "system", "content": "Be brief"}] + MESSAGES, max_tokens=3
    )
    assert completion.model == "claude-emu"
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage.completion_tokens == 3
    chunks = list(
        client.chat.completions.create(
            model="claude", messages=MESSAGES, max_tokens=3, stream=True, stream_options={"include_usage": True}
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == completion.choices[0].message.content
    assert chunks[-1].usage.completion_tokens == 3


def test_400_bad_request(client):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="chat", messages=MESSAGES, max_tokens=-1)
    assert info.value.status_code == 400
    assert info.value.body["param"] == "max_tokens"


def test_401_from_the_backend(client):
    with pytest.raises(openai.AuthenticationError) as info:
        client.chat.completions.create(model="locked", messages=MESSAGES)
    assert info.value.status_code == 401


def test_404_unknown_model_lists_known_models(client):
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="gpt-nope", messages=MESSAGES)
    assert "gpt-nope" in info.value.message and "chat" in info.value.message
    assert info.value.code == "model_not_found"


def test_413_body_too_large(client):
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "x" * (9 << 20)}])
    assert info.value.status_code == 413


def test_429_rate_limited_keeps_retry_after(client):
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="rate-limited", messages=MESSAGES)
    assert info.value.status_code == 429
    # The provider said 3 s; a pause another test's request started may have run part of it already.
    assert 1 <= int(info.value.response.headers["retry-after"]) <= 3


def test_503_overloaded(client):
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="overloaded", messages=MESSAGES)
    assert info.value.status_code == 503
    assert info.value.response.headers.get("x-request-id")
