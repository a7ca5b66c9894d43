"""The official anthropic SDK against an Isobar node's /v1/messages ingress."""
import anthropic
import pytest


@pytest.fixture(scope="module")
def client(base_url):
    return anthropic.Anthropic(base_url=base_url, api_key="unused", max_retries=0, timeout=30)


MESSAGES = [{"role": "user", "content": "Say hello"}]


def test_messages_to_an_openai_compatible_backend(client):
    message = client.messages.create(model="chat", max_tokens=5, system="Be brief", messages=MESSAGES)
    assert message.type == "message"
    assert message.role == "assistant"
    assert len(message.content[0].text.split()) == 5
    assert message.stop_reason == "max_tokens"
    assert message.usage.output_tokens == 5


def test_streaming_messages_with_named_events(client):
    with client.messages.stream(model="chat", max_tokens=7, messages=MESSAGES) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert len(text.split()) == 7
    assert final.content[0].text == text
    assert final.stop_reason == "max_tokens"
    assert final.usage.output_tokens == 7


def test_streaming_passthrough_to_an_anthropic_backend(client):
    with client.messages.stream(model="claude", max_tokens=4, messages=MESSAGES) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert len(text.split()) == 4
    assert final.model == "claude-emu"
    assert final.usage.output_tokens == 4


def test_errors_in_anthropic_shape(client):
    with pytest.raises(anthropic.NotFoundError) as info:
        client.messages.create(model="nope", max_tokens=5, messages=MESSAGES)
    assert info.value.body["error"]["type"] == "not_found_error"
    with pytest.raises(anthropic.RateLimitError):
        client.messages.create(model="rate-limited", max_tokens=5, messages=MESSAGES)
