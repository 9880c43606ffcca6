"""What a client hears when providers refuse (9.8): the provider's own code, param and message
for a request it judged bad; 429 with the longest Retry-After when every candidate is
rate-limiting; the provider's 404; and the allowlisted provider headers on success (9.9).
Against the fake provider port: no HTTP."""

from __future__ import annotations

import json

import pytest
from fakes.provider_port import Answer, json_answer, status_answer

from application.upstream_errors import UpstreamRefusal
from domain.errors import DomainError
from service.support import CREDIT, DUO, SOLO, assert_voided_free, chat, customer, new_request_id


def _error(status: int, code: str | None, message: str, param: str | None = None,
           retry_after: str | None = None) -> Answer:
    body = json.dumps({"error": {"message": message, "type": "invalid_request_error",
                                 "param": param, "code": code}}).encode()
    headers = (("retry-after", retry_after),) if retry_after else ()
    return Answer("status", status=status, body=body, headers=headers)


def _refused(gw, loop, principal, request_id: str, model: str = SOLO) -> DomainError:
    with pytest.raises(DomainError) as raised:
        loop.run_until_complete(gw.inference.chat(request_id, chat(model), principal))
    return raised.value


def test_an_upstream_400_passes_its_code_param_and_message_through_and_charges_nothing(
        gw, port, loop):
    account_id, principal = customer(gw, credit=CREDIT)
    message = "This model's maximum context length is 128000 tokens."
    port.will(_error(400, "context_length_exceeded", message, "messages"))
    request_id = new_request_id()

    error = _refused(gw, loop, principal, request_id, DUO)

    assert isinstance(error, UpstreamRefusal)
    assert (error.status, error.code, error.param, error.message) == \
        (400, "context_length_exceeded", "messages", message)
    assert len(port.received) == 1  # another provider would refuse it too: no failover
    assert_voided_free(gw, account_id, request_id, "rejected")


def test_when_every_candidate_rate_limits_the_client_gets_429_with_the_longest_wait(
        gw, port, loop):
    account_id, principal = customer(gw, credit=CREDIT)
    port.will(_error(429, "rate_limit_exceeded", "slow down", retry_after="7"),
              _error(429, None, "slow down", retry_after="3"))
    request_id = new_request_id()

    error = _refused(gw, loop, principal, request_id, DUO)

    assert isinstance(error, UpstreamRefusal)
    assert (error.status, error.code, error.retry_after) == (429, "rate_limit_exceeded", 7)
    assert [r.provider for r in port.received] == ["alpha", "beta"]
    assert_voided_free(gw, account_id, request_id, "provider_error")


def test_a_rate_limited_provider_fails_over_to_the_next(gw, port, loop):
    _, principal = customer(gw, credit=CREDIT)
    port.will(_error(429, None, "slow down", retry_after="30"), json_answer("ok"))

    response = loop.run_until_complete(gw.inference.chat(new_request_id(), chat(DUO),
                                                         principal))

    assert response.status == 200
    assert response.headers["x-gatewayz-provider"] == "beta"
    assert response.headers["x-gatewayz-attempts"] == "2"


def test_rate_limits_mixed_with_server_errors_are_a_provider_error(gw, port, loop):
    _, principal = customer(gw, credit=CREDIT)
    port.will(_error(429, None, "slow down", retry_after="5"), status_answer(500))

    error = _refused(gw, loop, principal, new_request_id(), DUO)

    assert error.code == "provider_error"
    assert getattr(error, "status", None) is None


def test_when_every_candidate_answers_404_the_provider_code_reaches_the_client(
        gw, port, loop):
    account_id, principal = customer(gw, credit=CREDIT)
    port.will(_error(404, "model_not_found", "The model `chat-1` does not exist."),
              _error(404, "model_not_found", "The model `duo-1` does not exist."))
    request_id = new_request_id()

    error = _refused(gw, loop, principal, request_id, DUO)

    assert isinstance(error, UpstreamRefusal)
    assert (error.status, error.code) == (404, "model_not_found")
    assert error.message == "The model `duo-1` does not exist."
    assert_voided_free(gw, account_id, request_id, "provider_error")


def test_an_unreadable_error_body_still_answers_with_the_status_alone(gw, port, loop):
    _, principal = customer(gw, credit=CREDIT)
    port.will(Answer("status", status=400, body=b"<html>bad</html>"))

    error = _refused(gw, loop, principal, new_request_id())

    assert (error.status, error.code) == (400, "invalid_request")
    assert "<html>" not in error.message


def test_provider_request_ids_pass_renamed_and_other_provider_headers_never(gw, port, loop):
    _, principal = customer(gw, credit=CREDIT)
    answer = json_answer("hi", prompt_tokens=10, completion_tokens=5)
    port.will(Answer(answer.kind, body=answer.body, headers=(
        ("x-request-id", "req_up_1"), ("openai-processing-ms", "12"),
        ("set-cookie", "session=secret"), ("server", "upstream/1.0"))))

    response = loop.run_until_complete(gw.inference.chat(new_request_id(), chat(SOLO),
                                                         principal))

    headers = response.headers
    assert headers["x-upstream-request-id"] == "req_up_1"
    assert headers["x-gatewayz-upstream-request-id"] == "req_up_1"
    assert headers["openai-processing-ms"] == "12"
    assert not {"set-cookie", "server", "x-request-id"} & set(headers)
    # 1 USD/M input, 2 USD/M output on alpha: 10 x 1 + 5 x 2 micros.
    assert headers["x-gatewayz-cost-micros"] == "20"
    assert headers["x-gatewayz-attempts"] == "1"
    assert int(headers["x-gatewayz-overhead-ms"]) >= 0
