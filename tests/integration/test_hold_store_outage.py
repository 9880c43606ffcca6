"""An unreachable Redis hold store refuses billed inference with a retryable 503 (never a
500, never an unchecked provider call), and records nothing."""

from __future__ import annotations

from pathlib import Path

from conftest import PEPPER, ServedGateway

from entrypoints.bootstrap import Gateway, Settings
from tests.e2e.support import positions


def test_inference_answers_503_and_calls_no_provider_when_redis_is_unreachable(
        tmp_path: Path, fake_openai):
    # Port 1 on loopback: a real connection attempt that is refused at once.
    gateway = Gateway(Settings(data_dir=tmp_path / "data", key_pepper=PEPPER,
                               master_key=bytes(range(32)), redis_url="redis://127.0.0.1:1/0"))
    gateway.start()
    served = ServedGateway(gateway)
    try:
        served.register_provider("fakeup", fake_openai.base_url)
        served.set_price("acme/chat-1", "fakeup")
        account = served.open_account(credit_micros=1_000_000)
        key = served.issue_key(account)["key"]
        before = positions(served)

        response = served.http.post(
            "/v1/chat/completions", headers={"Authorization": f"Bearer {key}"},
            json={"model": "acme/chat-1", "messages": [{"role": "user", "content": "hi"}]})

        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] == "service_unavailable"
        assert response.headers["retry-after"] == "1"
        assert fake_openai.chat_requests() == []
        assert positions(served) == before
    finally:
        served.close()
        gateway.close()
