"""The plumbing every fake upstream shares: an aiohttp app run by its own loop in a thread.

Also the request recording, the behaviour script queue, the cancellation list and the
waits on them, so FakeOpenAI and FakeAnthropic only add their endpoints.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]
    json: Any | None
    received_at: float


@dataclass(frozen=True)
class _Call:
    """What the recording middleware learnt about a request, for the handler."""

    index: int
    generation: int
    body: Any


# RequestKey only exists in newer aiohttp, which warns about plain string keys.
_CALL: Any = web.RequestKey("fake_call", _Call) if hasattr(web, "RequestKey") else "fake_call"


class _Progress:
    """Mutable stream bookkeeping, so the cancellation handler sees how far we got."""

    __slots__ = ("chunks", "tokens", "finished")

    def __init__(self) -> None:
        self.chunks = 0
        self.tokens = 0
        self.finished = False


class _BackgroundServer:
    """An aiohttp app on 127.0.0.1 run by its own loop in a daemon thread.

    Holds what every fake shares: the recorded requests, the behaviour script, the
    cancellations and the waits on them. Subclasses build the app and set ``default``.
    """

    default: Any

    def __init__(self, *, name: str) -> None:
        self.name = name
        self.requests: list[ReceivedRequest] = []
        self.cancellations: list[Any] = []
        self._script: deque[Any] = deque()
        self._lock = threading.Lock()
        # Bumped by reset() so a stream left over from an earlier test cannot log a
        # cancellation into the next test's list.
        self._generation = 0
        self._port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    def __repr__(self) -> str:
        where = self.base_url if self._port is not None else "stopped"
        return f"{type(self).__name__}(name={self.name!r}, {where})"

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _make_app(self) -> web.Application:
        raise NotImplementedError

    def start(self) -> Any:
        if self._thread is not None:
            return self
        # Binding here, not in the thread, means the port is known and in use before
        # start() returns, so there is no race with anything else picking ports.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            try:
                loop.run_until_complete(self._serve(sock))
            except BaseException as exc:  # handed to start()'s caller to raise
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        label = type(self).__name__
        thread = threading.Thread(target=run, name=f"{label}-{self.name}", daemon=True)
        thread.start()
        ready.wait()
        if failure:
            sock.close()
            thread.join()
            raise RuntimeError(f"{label} failed to start") from failure[0]
        self._thread = thread
        self._port = port
        return self

    async def _serve(self, sock: socket.socket) -> None:
        # handler_cancellation makes a client disconnect interrupt a handler that is
        # sleeping, so cancellations are seen at once rather than on the next write.
        runner = web.AppRunner(self._make_app(), handler_cancellation=True, access_log=None,
                               shutdown_timeout=0.5)
        await runner.setup()
        await web.SockSite(runner, sock).start()
        self._runner = runner

    def stop(self) -> None:
        thread, loop, runner = self._thread, self._loop, self._runner
        if thread is None or loop is None:
            return
        if runner is not None:
            asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        self._thread = self._loop = self._runner = None
        self._port = None

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def script(self, *behaviours: Any) -> None:
        """Queue behaviours, one consumed per generating request; appends to queued ones."""
        with self._lock:
            self._script.extend(behaviours)

    def _reset_settings(self) -> None:
        """Restore ``default`` and the like; called under the lock."""

    def reset(self) -> None:
        """Forget requests, cancellations and the script; restore the default settings."""
        with self._lock:
            self._generation += 1
            self.requests.clear()
            self.cancellations.clear()
            self._script.clear()
            self._reset_settings()

    def wait_for_requests(self, count: int = 1, timeout: float = 2.0) -> list[ReceivedRequest]:
        self._wait(lambda: len(self.requests) >= count, timeout, f"{count} request(s)")
        with self._lock:
            return list(self.requests)

    def wait_for_cancellations(self, count: int = 1, timeout: float = 2.0) -> list[Any]:
        self._wait(lambda: len(self.cancellations) >= count, timeout, f"{count} cancellation(s)")
        with self._lock:
            return list(self.cancellations)

    def _wait(self, done: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{type(self).__name__}: no {what} within {timeout}s")
            time.sleep(0.005)

    def _next_behaviour(self) -> Any:
        with self._lock:
            return self._script.popleft() if self._script else self.default

    def _requests_to(self, path: str) -> list[ReceivedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    async def _remember(self, request: web.Request) -> Any:
        """Record the request and tag it for its handler; returns the decoded JSON body."""
        received_at = time.monotonic()
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        record = ReceivedRequest(
            method=request.method,
            path=request.path,
            headers={k.lower(): v for k, v in request.headers.items()},
            json=body,
            received_at=received_at,
        )
        with self._lock:
            self.requests.append(record)
            request[_CALL] = _Call(len(self.requests) - 1, self._generation, body)
        return body

    def _add_cancellation(self, request: web.Request, make: Callable[[int], Any]) -> None:
        with self._lock:
            if request[_CALL].generation != self._generation:
                return
            self.cancellations.append(make(request[_CALL].index))

    @staticmethod
    def _drop(request: web.Request, progress: _Progress) -> web.StreamResponse:
        # The drop is ours, not the client's, so it must not be logged as a cancellation.
        progress.finished = True
        # close() rather than abort(): close flushes what was already written, so the
        # client really receives the first N chunks before the connection dies.
        if request.transport is not None:
            request.transport.close()
        return web.Response(status=499)
