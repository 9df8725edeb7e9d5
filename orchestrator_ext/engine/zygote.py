"""The worker's side of the notebook zygote: a warm python3 interpreter per organization, a fork per run.

:class:`Zygote` starts ``python -m orchestrator_runtimes.zygote`` as the
organization's account (the run environment, the open-files cap and the
parent-death signal of :mod:`.isolation`, exactly as a kernel is started; the
memory limit is the worker's watch over each run's processes, not the zygote's),
keeps the other end of its control socket (a socket pair: there is no socket
file, so nothing but the worker can ask for a fork), and waits until it has
IPython imported and its shell built. :meth:`Zygote.fork` sends it one end of a
new socket pair: the zygote forks a child on it, which moves into a fresh directory of the run's account and
answers with its pid; the :class:`ZygoteKernel` returned then runs cells on it
(:mod:`.zygote_client`) and kills its process group when the run is cancelled,
times out or ends (what the run started elsewhere dies with it:
:mod:`orchestrator_runtimes.containment`). Whatever a child sends that is not
a message (a run's code can write to its own connection) ends that run only. A zygote serves one organization only (see
:class:`.kernels.KernelPool`), and dies with its worker, its children with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import subprocess  # nosec B404 - a fixed interpreter and module, no shell
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .accounts import RunAccount
from .isolation import child_setup, new_workdir, remove_workdir, run_environment
from .sweep import WATCH

log = logging.getLogger("orchestrator.engine")
#: the thread zygotes are started from. A parent-death signal fires when the *thread* that started the
#: process ends, not the process: so not an event loop's default executor (shut down with its loop), but
#: this one, which lives as long as the process. It only starts them (``Popen``); their readiness is waited
#: for by the caller, so that one organization's slow start does not hold up another's
_SPAWNER = ThreadPoolExecutor(1, thread_name_prefix="zygote-start")
READY_TIMEOUT = 60.0
#: the longest line a run's child may send (one output message): the worker keeps at most
#: ``max_output_bytes`` (2 MiB by default) of a run's outputs, with room for JSON's escaping and base64.
#: A run's code can write to its own connection: a longer line ends the run (:class:`ZygoteGone`). A longer
#: output (a large image, a Plotly figure with its data) is replaced by the child with a note naming its
#: size and this limit, less :data:`LINE_MARGIN` (:mod:`orchestrator_runtimes.oversized`): the run goes on
MAX_LINE = 16 * 1024 * 1024
LINE_MARGIN = 1024


class ZygoteGone(RuntimeError):
    """The zygote or a child forked from it is not there (it did not start, or died)."""


class ZygoteKernel:
    """One run's kernel: a child forked from the zygote, spoken to over its connection.

    It has what the notebook runner uses of a jupyter_client kernel: ``name``, ``workdir``,
    ``kill_now``, and a ``client`` with ``execute`` and ``kernel_info`` (itself)."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        workdir: Path,
        name: str,
        done: Callable[[], None] = lambda: None,
        *,
        owned: bool = True,
    ) -> None:
        self.reader, self.writer = reader, writer
        self.workdir = workdir
        self.owned = owned  # the run's own directory, removed with it
        self.name = name
        self.pid: int | None = None
        self._done: Callable[[], None] | None = done

    @property
    def client(self) -> ZygoteKernel:
        return self

    async def request(self, request: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """Send one request; yield the child's messages, the last one ``{"reply": ...}``."""
        self.writer.write(json.dumps(request).encode() + b"\n")
        await self.writer.drain()
        while True:
            try:
                line = await self.reader.readline()
            except ValueError as exc:  # longer than the stream's limit
                raise ZygoteGone(f"the notebook's process sent a message over {MAX_LINE >> 20} MiB") from exc
            if not line:
                raise ZygoteGone("the notebook's process ended")
            message = _message(line)
            yield message
            if "reply" in message:
                return

    async def _reply(self, request: dict[str, Any], timeout: float | None) -> dict[str, Any]:  # noqa: ASYNC109
        async def last() -> dict[str, Any]:
            async for message in self.request(request):
                if "reply" in message:
                    return {"content": message["reply"]}
            raise ZygoteGone("no reply")  # pragma: no cover - request() ends with a reply or raises

        return await asyncio.wait_for(last(), timeout)

    async def execute(
        self,
        code: str,
        *,
        silent: bool = False,
        store_history: bool = True,
        reply: bool = True,
        timeout: float = 10,  # noqa: ASYNC109 - jupyter_client's signature
    ) -> dict[str, Any]:
        """Run ``code`` and return its execute_reply (as jupyter_client's ``execute(reply=True)``)."""
        return await self._reply({"execute": {"code": code, "silent": silent, "store_history": store_history}}, timeout)

    async def kernel_info(self, *, reply: bool = True, timeout: float = 5) -> dict[str, Any]:  # noqa: ASYNC109
        return await self._reply({"kernel_info": {}}, timeout)

    def kill_now(self) -> None:
        """SIGKILL the child's process group (it runs in its own session): for cancel, timeout and the end."""
        if self.pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)

    async def discard(self) -> None:
        self.kill_now()
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()
        if self.owned:
            remove_workdir(self.workdir)
        if self._done is not None:
            self._done()
            self._done = None


class Zygote:
    """``python -m orchestrator_runtimes.zygote`` as ``account`` (None: the worker's own), started on first
    use and again when it died. Its start is synchronous (a thread for the worker), so that papermill's
    own, synchronous engine (:mod:`.zygote_client`) shares it."""

    def __init__(
        self,
        python: str,
        memory_mib: int,
        workdir_root: Path | None,
        account: RunAccount | None = None,
        *,
        max_line: int = MAX_LINE,
    ) -> None:
        self.python, self.memory_mib, self.workdir_root, self.account = python, memory_mib, workdir_root, account
        #: the longest line a child may send (:data:`MAX_LINE`)
        self.max_line = max_line
        self.process: subprocess.Popen[bytes] | None = None
        #: the worker's end of the zygote's control socket
        self.channel: socket.socket | None = None
        #: the worker's own folder for the zygote (its log)
        self.control: Path | None = None
        self.home: Path | None = None
        #: children forked and not yet discarded (they die with the zygote)
        self.in_flight = 0
        self._up = False  # it said it is ready (imports done, shell built)
        self._spare: ZygoteKernel | None = None  # a child forked ahead for the next run
        self._forking_ahead = False
        self._lock = threading.Lock()

    def ready(self) -> bool:
        """Whether a run forked now starts at once: the zygote is up, its imports done (no waiting)."""
        return self._up and self.process is not None and self.process.poll() is None

    def ensure_sync(self) -> None:
        """Start the zygote (and wait until it is ready) unless it is running; from any thread (only its
        ``Popen`` happens on the long-lived starting thread, the wait for its readiness on this one)."""
        if not self.ready():
            with self._lock:
                if not self.ready():
                    self._stop()
                    _SPAWNER.submit(self._spawn).result()
                    self._await_ready()

    async def ensure(self) -> None:
        if not self.ready():
            await asyncio.to_thread(self.ensure_sync)

    def _spawn(self) -> None:
        self.control = new_workdir(self.workdir_root, "zygote-")
        self.home = new_workdir(self.workdir_root, "zygotehome-", self.account)
        as_account = self.account.popen_kwargs() if self.account is not None else {}
        self.channel, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        with theirs, open(self.control / "zygote.log", "wb") as errors:
            self.process = subprocess.Popen(  # noqa: S603  # nosec B603 - the operator's interpreter, our module
                [self.python, "-m", "orchestrator_runtimes.zygote", f"--fd={theirs.fileno()}"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=errors,
                cwd=self.home,
                env=run_environment(self.home),
                preexec_fn=child_setup,
                start_new_session=True,
                pass_fds=(theirs.fileno(),),
                **as_account,
            )
        WATCH.server(self.process.pid, self.account, self.workdir_root)  # its runs' strays die with it (sweep.py)

    def _await_ready(self) -> None:
        self._up = self._wait_ready()
        if self.control is None:  # pragma: no cover - _spawn made it
            raise ZygoteGone("the notebook zygote was not started")
        if not self._up:
            why = (self.control / "zygote.log").read_text(errors="replace")[-2000:]
            self._stop()
            raise ZygoteGone(f"the notebook zygote did not start: {why}")
        who = f" as {self.account.name or self.account.uid}" if self.account is not None else ""
        log.info("notebook zygote ready%s", who)

    def _wait_ready(self) -> bool:
        process = self.process
        if process is None or process.stdout is None:
            return False
        timer = threading.Timer(READY_TIMEOUT, process.kill)
        timer.start()
        try:
            line = process.stdout.readline()
        finally:
            timer.cancel()
        with contextlib.suppress(ValueError):
            return bool(json.loads(line) == {"ready": True})
        return False

    async def fork(self, name: str, caller: Path | None = None) -> ZygoteKernel:
        """A fresh child for one run, in a fresh directory of the run's account, its pid known: the one
        forked ahead when there is one (:meth:`fork_ahead`), else one forked now. With ``caller``, in that
        directory instead, with this process's environment (papermill used directly)."""
        spare, self._spare = self._spare, None
        if spare is not None and caller is None and _alive(spare.pid):
            self.in_flight += 1
            spare.name, spare._done = name, self._done
            return spare
        if spare is not None:
            await spare.discard()
        return await self._fork_now(name, caller)

    async def fork_ahead(self) -> None:
        """Fork the next run's child now (its directory made, its limits set, its pid known), so that the
        next run starts on it at once; it waits, untouched, until a run of this organization takes it."""
        if self._spare is not None or self._forking_ahead:
            return
        self._forking_ahead = True
        try:
            spare = await self._fork_now("python3", None)
            self.in_flight -= 1  # not a run yet: it does not keep the zygote from being closed
            spare._done = None
            if self._spare is None and self.ready():
                self._spare = spare
            else:
                await spare.discard()
        finally:
            self._forking_ahead = False

    async def _fork_now(self, name: str, caller: Path | None) -> ZygoteKernel:
        for attempt in (1, 2):
            await self.ensure()
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                with theirs:
                    self._send(theirs)
            except OSError:  # the zygote died since
                ours.close()
                if attempt == 2:
                    raise
                await asyncio.to_thread(self.close_sync)
                continue
            reader, writer = await asyncio.open_unix_connection(sock=ours, limit=self.max_line)
            self.in_flight += 1
            workdir = caller or new_workdir(self.workdir_root, "run-", self.account)
            kernel = ZygoteKernel(reader, writer, workdir, name, self._done, owned=caller is None)
            # the child replaces an output longer than its line may be by a note (orchestrator_runtimes.oversized)
            process: dict[str, Any] = {"workdir": str(workdir), "max_message": self.max_line - LINE_MARGIN}
            if caller is not None:
                process["environ"] = dict(os.environ)
            try:
                await _handshake(kernel, process)
            except BaseException:
                await kernel.discard()
                raise
            return kernel
        raise ZygoteGone("the zygote cannot be reached")  # pragma: no cover - the loop returns or raises

    def _send(self, conn: socket.socket) -> None:
        if self.channel is None:
            raise ZygoteGone("the zygote is not started")
        socket.send_fds(self.channel, [b"r"], [conn.fileno()])

    def _done(self) -> None:
        self.in_flight -= 1

    def _stop(self) -> None:
        self._up = False
        if self.channel is not None:
            self.channel.close()  # the zygote stops when it sees its control socket closed
            self.channel = None
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)
            with contextlib.suppress(Exception):
                self.process.wait(5)
            for stream in (self.process.stdout,):
                if stream is not None:
                    stream.close()
            self.process = None
        for folder in (self.home, self.control):
            if folder is not None:
                remove_workdir(folder)
        self.home = self.control = None

    def close_sync(self) -> None:
        with self._lock:
            self._stop()

    async def close(self) -> None:
        spare, self._spare = self._spare, None
        if spare is not None:
            await spare.discard()
        await asyncio.to_thread(self.close_sync)


def _alive(pid: int | None) -> bool:
    """Whether process ``pid`` still exists (a child of another account's: signal 0 is then refused)."""
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def _handshake(kernel: ZygoteKernel, process: dict[str, Any]) -> None:
    kernel.writer.write(json.dumps(process).encode() + b"\n")
    await kernel.writer.drain()
    try:
        line = await asyncio.wait_for(kernel.reader.readline(), READY_TIMEOUT)
    except ValueError as exc:
        raise ZygoteGone("the notebook's process sent an overlong first line") from exc
    if not line:
        raise ZygoteGone("the notebook's process ended before it started")
    pid = _message(line, first=True).get("pid")
    if not isinstance(pid, int):
        raise ZygoteGone("the notebook's process did not say its pid")
    kernel.pid = pid


def _message(line: bytes, *, first: bool = False) -> dict[str, Any]:
    """One message of a run's child: a JSON object, its last one ``{"reply": {...}}``, the others Jupyter
    messages (a ``msg_type`` and a ``content``). Anything else (the run's code can write to its own
    connection) ends the run: :class:`ZygoteGone`, never an error of the worker's. The ``first`` one says
    the child's pid instead."""
    try:
        message = json.loads(line)
    except ValueError as exc:
        raise ZygoteGone(f"the notebook's process sent a line that is not JSON: {line[:80]!r}") from exc
    if not isinstance(message, dict):
        raise ZygoteGone(f"the notebook's process sent a message that is not an object: {line[:80]!r}")
    if "reply" in message and not isinstance(message["reply"], dict):
        raise ZygoteGone("the notebook's process sent a reply that is not an object")
    if first:
        return message
    if "reply" not in message and not (
        isinstance(message.get("msg_type"), str) and isinstance(message.get("content"), dict)
    ):
        raise ZygoteGone(f"the notebook's process sent a message without msg_type and content: {line[:80]!r}")
    return message
