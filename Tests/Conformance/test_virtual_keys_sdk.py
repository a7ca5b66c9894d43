"""The official openai and anthropic SDKs against a node with virtual keys: the error classes, codes and
rate-limit headers an app team's client sees (issue 7)."""
import anthropic
import openai
import pytest
from openai import OpenAI

from conftest import KEYS

MESSAGES = [{"role": "user", "content": "Say hello"}]


def client(keyed_url, secret):
    return OpenAI(base_url=keyed_url + "/v1", api_key=secret, max_retries=0, timeout=30)


def test_a_wrong_key_is_an_authentication_error(keyed_url):
    with pytest.raises(openai.AuthenticationError) as caught:
        client(keyed_url, "sk-not-a-key").chat.completions.create(model="chat", messages=MESSAGES, max_tokens=2)
    assert caught.value.status_code == 401
    assert caught.value.code == "invalid_api_key"
    assert caught.value.response.headers["www-authenticate"].lower().startswith("bearer")
    with pytest.raises(anthropic.AuthenticationError):
        anthropic.Anthropic(base_url=keyed_url, api_key="sk-not-a-key", max_retries=0).messages.create(
            model="claude", max_tokens=2, messages=MESSAGES)


def test_a_key_sees_and_calls_only_its_models(keyed_url):
    chat_only = client(keyed_url, KEYS["CONFORMANCE_CHAT_ONLY"])
    assert [model.id for model in chat_only.models.list()] == ["chat"]
    with pytest.raises(openai.PermissionDeniedError) as caught:
        chat_only.chat.completions.create(model="claude", messages=MESSAGES, max_tokens=2)
    assert caught.value.code == "model_not_allowed"
    # The anthropic SDK sends its key as x-api-key.
    message = anthropic.Anthropic(base_url=keyed_url, api_key=KEYS["CONFORMANCE_APP"], max_retries=0).messages.create(
        model="claude", max_tokens=3, messages=MESSAGES)
    assert message.usage.output_tokens == 3


def test_over_its_rpm_a_key_gets_a_rate_limit_error_with_retry_after(keyed_url):
    app = client(keyed_url, KEYS["CONFORMANCE_APP"])
    remaining = []
    with pytest.raises(openai.RateLimitError) as caught:
        for _ in range(4):  # 3 a minute; the claude call above may have used one
            raw = app.chat.completions.with_raw_response.create(model="chat", messages=MESSAGES, max_tokens=2)
            assert raw.headers["x-ratelimit-limit-requests"] == "3"
            remaining.append(int(raw.headers["x-ratelimit-remaining-requests"]))
    assert remaining == sorted(remaining, reverse=True) and remaining[-1] == 0
    error = caught.value
    assert error.status_code == 429 and error.code == "rate_limit_exceeded"
    assert 1 <= int(error.response.headers["retry-after"]) <= 61
    assert error.response.headers["x-ratelimit-remaining-requests"] == "0"


def test_a_spent_budget_is_a_rate_limit_error_with_its_own_code(keyed_url):
    thrifty = client(keyed_url, KEYS["CONFORMANCE_THRIFTY"])
    # A dollar a token: the first answer spends the 10 USD budget.
    thrifty.chat.completions.create(model="chat", messages=MESSAGES, max_tokens=8)
    with pytest.raises(openai.RateLimitError) as caught:
        thrifty.chat.completions.create(model="chat", messages=MESSAGES, max_tokens=8)
    assert caught.value.code == "budget_exceeded"
    # Until the UTC day ends.
    assert 0 < int(caught.value.response.headers["retry-after"]) <= 86_400
