"""`gatewayz serve` as a newcomer runs it: a real process on a bare data directory (10.1)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai
import pytest

GATEWAYZ = str(Path(sys.executable).parent / "gatewayz")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    for name in ("DATABASE_URL", "REDIS_URL", "GATEWAYZ_KEY_PEPPER", "GATEWAYZ_MASTER_KEY"):
        env.pop(name, None)
    return env


def _serve(data_dir: Path, port: int) -> subprocess.Popen:
    return subprocess.Popen([GATEWAYZ, "serve", "--data-dir", str(data_dir), "--port", str(port)],
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_healthy(url: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read()
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError("gatewayz serve did not become healthy")


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "gatewayz-data"


def test_a_bare_data_directory_serves_the_echo_model_to_the_sdk_and_survives_a_restart(
        data_dir):
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    demo = subprocess.run([GATEWAYZ, "admin", "demo-key", "--data-dir", str(data_dir),
                           "--base-url", url], env=_env(), capture_output=True, text=True,
                          check=True).stdout
    key = next(word for word in demo.split() if word.startswith("gw_test_"))
    assert f"{url}/v1/chat/completions" in demo and "OpenAI(base_url=" in demo
    assert oct(data_dir.stat().st_mode & 0o777) == "0o700"
    assert oct((data_dir / "key-pepper").stat().st_mode & 0o777) == "0o600"

    server = _serve(data_dir, port)
    try:
        _wait_healthy(url, server)
        client = openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0)
        reply = client.chat.completions.create(
            model="gatewayz/echo", messages=[{"role": "user", "content": "hello there"}])
        assert reply.choices[0].message.content == "hello there"

        second = _serve(data_dir, _free_port())
        assert second.wait(timeout=20) != 0
        assert "refusing to start" in second.stderr.read()
    finally:
        _stop(server)

    restarted = _serve(data_dir, port)
    try:
        _wait_healthy(url, restarted)
        client = openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0)
        again = client.chat.completions.create(
            model="gatewayz/echo", messages=[{"role": "user", "content": "still here"}])
        assert again.choices[0].message.content == "still here"
        keys = httpx.get(url + "/v1/keys", headers={"Authorization": f"Bearer {key}"}).json()
        assert [k["last4"] for k in keys["data"]] == [key[-4:]]
    finally:
        _stop(restarted)
    verify = subprocess.run([GATEWAYZ, "replay", "--verify", "--data-dir", str(data_dir)],
                            env=_env(), capture_output=True, text=True)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "all read models match" in verify.stdout


def test_serve_exits_non_zero_when_database_url_points_nowhere(data_dir):
    env = _env() | {"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
                    "GATEWAYZ_KEY_PEPPER": "p" * 32, "GATEWAYZ_MASTER_KEY": "00" * 32}
    result = subprocess.run([GATEWAYZ, "serve", "--data-dir", str(data_dir), "--port",
                             str(_free_port())], env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode != 0
    assert "cannot start" in result.stderr
