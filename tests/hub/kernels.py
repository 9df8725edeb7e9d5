"""Run code in a kernel of a user's notebook server, as JupyterLab does (REST to start it, the
kernel's websocket to execute): what the code sees is what a user's own notebook sees."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.websocket import websocket_connect

T = TypeVar("T")


def run_async(start: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to its end in a thread of its own: Playwright's sync API (the browser tests)
    leaves its event loop running in the main thread, where ``asyncio.run`` is refused."""

    async def main() -> T:
        return await start()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, main()).result()


@dataclass
class Result:
    stdout: str = ""
    error: str = ""
    traceback: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.error


def _message(code: str) -> dict[str, Any]:
    msg_id = uuid.uuid4().hex
    return {
        "header": {
            "msg_id": msg_id,
            "msg_type": "execute_request",
            "username": "",
            "session": msg_id,
            "version": "5.3",
            "date": "",
        },
        "parent_header": {},
        "metadata": {},
        "content": {
            "code": code,
            "silent": False,
            "store_history": False,
            "user_expressions": {},
            "allow_stdin": False,
            "stop_on_error": True,
        },
        "buffers": [],
        "channel": "shell",
    }


class Kernel:
    """One kernel of a user's server, driven over its websocket with a token that may reach the server."""

    def __init__(self, server_url: str, token: str) -> None:
        self.server_url = server_url.rstrip("/")
        self.token = token
        self.kernel_id = ""
        self._ws: Any = None

    async def start(self) -> Kernel:
        client = AsyncHTTPClient()
        response = await client.fetch(
            HTTPRequest(
                f"{self.server_url}/api/kernels",
                method="POST",
                body="{}",
                headers={"Authorization": f"token {self.token}"},
                request_timeout=60,
            )
        )
        self.kernel_id = json.loads(response.body)["id"]
        ws_url = self.server_url.replace("http", "ws", 1) + f"/api/kernels/{self.kernel_id}/channels"
        self._ws = await websocket_connect(HTTPRequest(ws_url, headers={"Authorization": f"token {self.token}"}))
        return self

    async def run(self, code: str, seconds: float = 60.0) -> Result:
        message = _message(code)
        await self._ws.write_message(json.dumps(message))
        result = Result()
        async with asyncio.timeout(seconds):
            while True:
                raw = await self._ws.read_message()
                if raw is None:
                    raise ConnectionError("the kernel's websocket closed")
                reply = json.loads(raw)
                if reply.get("parent_header", {}).get("msg_id") != message["header"]["msg_id"]:
                    continue
                kind, content = reply["msg_type"], reply["content"]
                if kind == "stream" and content.get("name") == "stdout":
                    result.stdout += content["text"]
                elif kind == "error":
                    result.error = f"{content['ename']}: {content['evalue']}"
                    result.traceback = content.get("traceback", [])
                elif kind == "status" and content.get("execution_state") == "idle":
                    return result

    async def close(self) -> None:
        if self._ws is not None:
            self._ws.close()
        if self.kernel_id:
            await AsyncHTTPClient().fetch(
                HTTPRequest(
                    f"{self.server_url}/api/kernels/{self.kernel_id}",
                    method="DELETE",
                    headers={"Authorization": f"token {self.token}"},
                ),
                raise_error=False,
            )
