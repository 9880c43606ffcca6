"""Proves FakeOpenAI's models, embeddings and legacy completions, routing and lifecycle."""

from __future__ import annotations

import httpx
import openai
import pytest
from fakes.openai_upstream import Behaviour, FakeOpenAI

USER = [{"role": "user", "content": "hello there world"}]




def test_models_list(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    fake.models = ["gpt-4o-mini", "gpt-4o"]
    models = list(client.models.list())
    assert [m.id for m in models] == ["gpt-4o-mini", "gpt-4o"]
    assert all(m.object == "model" and m.owned_by == "fake" for m in models)
    assert client.models.retrieve("gpt-4o").id == "gpt-4o"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("nope")


def test_unknown_path_is_an_openai_shaped_404(fake: FakeOpenAI) -> None:
    response = httpx.get(f"{fake.base_url}/nope")
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert fake.requests[0].path == "/v1/nope"


def test_reset_forgets_everything(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    fake.script(Behaviour(content="queued"), Behaviour(content="queued"))
    fake.default = Behaviour(content="changed")
    client.chat.completions.create(model="m", messages=USER)
    fake.reset()
    assert fake.requests == [] and fake.cancellations == []
    answer = client.chat.completions.create(model="m", messages=USER).choices[0].message.content
    assert answer == "Echo: hello there world"


def test_start_is_idempotent_and_stop_frees_the_port() -> None:
    fake = FakeOpenAI(name="lifecycle")
    assert fake.start() is fake.start()
    url = fake.base_url
    assert httpx.get(f"{url}/models").status_code == 200
    fake.stop()
    fake.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/models")


def test_embeddings_are_deterministic_in_float_and_base64(fake: FakeOpenAI,
                                                          client: openai.OpenAI) -> None:
    floats = client.embeddings.create(model="text-embedding-3-small", input=["a b", "c"],
                                      encoding_format="float")
    assert [d.index for d in floats.data] == [0, 1]
    assert all(len(d.embedding) == 8 and all(-1 <= x < 1 for x in d.embedding)
               for d in floats.data)
    assert floats.data[0].embedding != floats.data[1].embedding
    assert (floats.usage.prompt_tokens, floats.usage.total_tokens) == (3, 3)
    # The SDK asks for base64 by default and decodes it: the same numbers come back.
    decoded = client.embeddings.create(model="text-embedding-3-small", input=["a b", "c"])
    assert [d.embedding for d in decoded.data] == [d.embedding for d in floats.data]
    assert fake.embedding_requests()[1].json["encoding_format"] == "base64"
    short = client.embeddings.create(model="m", input="a b", dimensions=3,
                                     encoding_format="float")
    assert short.data[0].embedding == floats.data[0].embedding[:3]
    tokens = client.embeddings.create(model="m", input=[[1, 2, 3]], encoding_format="float")
    assert tokens.usage.prompt_tokens == 3
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model="m", input="")


def test_legacy_completions_echo_each_prompt(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    completion = client.completions.create(model="gpt-3.5-turbo-instruct",
                                           prompt=["say hi", "say bye"])
    assert completion.object == "text_completion"
    assert [(c.index, c.text, c.finish_reason) for c in completion.choices] == [
        (0, "Echo: say hi", "stop"), (1, "Echo: say bye", "stop")]
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (4, 6)
    # max_tokens defaults to 16 on this endpoint, as on the real one.
    long = client.completions.create(model="m", prompt=" ".join(["w"] * 20))
    assert long.choices[0].finish_reason == "length"
    assert len(long.choices[0].text.split()) == 16

    chunks = list(client.completions.create(model="m", prompt="one two", stream=True,
                                            stream_options={"include_usage": True}))
    assert all(c.object == "text_completion" for c in chunks)
    assert "".join(c.choices[0].text for c in chunks if c.choices) == "Echo: one two"
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 3
    assert fake.completion_requests()[-1].json["stream"] is True


def test_scripted_errors_apply_to_embeddings_and_completions(
    fake: FakeOpenAI, client: openai.OpenAI
) -> None:
    fake.script(Behaviour(status=503), Behaviour(status=500))
    with pytest.raises(openai.InternalServerError):
        client.embeddings.create(model="m", input="x")
    with pytest.raises(openai.InternalServerError):
        client.completions.create(model="m", prompt="x")
