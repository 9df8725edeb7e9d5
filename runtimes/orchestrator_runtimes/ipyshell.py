"""IPython in a forked process, speaking the Jupyter messages a kernel would send, over one connection.

The notebook zygote (:mod:`.zygote`) builds one :class:`Shell` before it forks:
ipykernel's own ``ZMQInteractiveShell``, so magics, ``display()``, the display
hook, tracebacks (``error`` messages with ``ename``, ``evalue`` and the coloured
``traceback``), ``!commands`` and payloads are ipykernel's code, not a copy. Only
its transport differs: instead of ZeroMQ sockets, :class:`LineSession` writes each
message as one JSON line on the child's connection, and :class:`OutStream` buffers
``print`` output the way ipykernel's does (flushed before any other message, at the
end of a cell, and when a chunk is older than :data:`FLUSH_INTERVAL`), so that an
executed notebook has the same outputs, split the same way, as with a kernel.

What a run's C code or subprocesses write to file descriptors 1 and 2 is kept in
anonymous in-memory files and appended to the stream at each flush.
"""

from __future__ import annotations

import builtins
import codecs
import getpass
import importlib.util
import io
import json
import os
import sys
import tempfile
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ipykernel._version import __version__ as IPYKERNEL_VERSION
from ipykernel.compiler import XCachingCompiler
from ipykernel.ipkernel import IPythonKernel
from ipykernel.zmqshell import ZMQInteractiveShell
from IPython.core.error import StdinNotImplementedError
from jupyter_client.jsonutil import json_default
from jupyter_client.session import Session
from traitlets.config import Config

#: the most characters one ``stream`` message carries: a cell that prints 50 MB at once sends it in pieces (at
#: most ~6 MiB of JSON each), as the worker takes no line over 16 MiB from a notebook's process
STREAM_CHUNK = 1 << 20

#: ipykernel's flush interval for stdout and stderr, in seconds
FLUSH_INTERVAL = 0.2
#: what a kernel_info reply says about the language (ipykernel's own)
LANGUAGE_INFO: dict[str, Any] = dict(IPythonKernel.language_info)
Write = Callable[[str], object]


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def encode(message: dict[str, Any]) -> str:
    """One protocol line, as a kernel's JSON serialiser would encode its content (bytes, dates, numbers)."""
    return json.dumps(message, default=json_default, allow_nan=False) + "\n"


class LineSession(Session):
    """A jupyter_client session whose ``send`` writes the message as a JSON line (``write`` per child)."""

    write: Write = staticmethod(lambda line: None)

    def send(  # type: ignore[override]
        self, stream: Any, msg_or_type: Any, content: Any = None, parent: Any = None, ident: Any = None, **_: Any
    ) -> dict[str, Any]:
        if isinstance(msg_or_type, dict):
            msg_type, content = msg_or_type["msg_type"], msg_or_type["content"]
        else:
            msg_type = msg_or_type
        flush_streams(except_for=content if msg_type == "stream" else None)
        header = {"msg_type": msg_type, "date": _now()}
        self.write(encode({"msg_type": msg_type, "content": content or {}, "header": header}))
        return {"msg_type": msg_type, "content": content}


class OutStream(io.TextIOBase):
    """``sys.stdout``/``sys.stderr`` of the child: buffered like ipykernel's, sent as ``stream`` messages."""

    def __init__(self, name: str, session: LineSession, fd: int) -> None:
        super().__init__()
        self.name = name
        self.session = session
        self._fd = fd
        self._buffer: list[str] = []
        self._timer: threading.Timer | None = None
        self._lock = threading.RLock()
        self._captured: int | None = None  # what fd ``fd`` is written to (an in-memory file), and how far read
        self._offset = 0

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "UTF-8"

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self._fd

    def writable(self) -> bool:
        return True

    def capture_fd(self) -> None:
        """Send what is written to this stream's file descriptor too (by C code, subprocesses): it goes to an
        anonymous in-memory file (nothing left in any folder, the caller's included), read at each flush."""
        self._captured = os.memfd_create(f"{self.name}-fd")
        os.dup2(self._captured, self._fd)
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def _read_captured(self) -> str:
        chunks = []
        while self._captured is not None and (data := os.pread(self._captured, 1 << 20, self._offset)):
            self._offset += len(data)
            chunks.append(self._decoder.decode(data))
        return "".join(chunks)

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        with self._lock:
            self._buffer.append(text)
            if self._timer is None:  # as ipykernel: sent FLUSH_INTERVAL after the first write of a chunk
                self._timer = threading.Timer(FLUSH_INTERVAL, self.flush)
                self._timer.daemon = True
                self._timer.start()
        return len(text)

    def flush(self) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            written = self._read_captured()
            if written:
                self._buffer.append(written)
            if not self._buffer:
                return
            text, self._buffer = "".join(self._buffer), []
            for start in range(0, len(text), STREAM_CHUNK):  # one message stays far below the worker's line limit
                self.session.send(None, "stream", {"name": self.name, "text": text[start : start + STREAM_CHUNK]})


_STREAMS: list[OutStream] = []


def flush_streams(except_for: Any = None) -> None:
    """Before any message other than a stream's: what was printed goes first (stdout, then stderr)."""
    if except_for is None:
        for stream in _STREAMS:
            stream.flush()


def _no_stdin(prompt: str = "", *args: Any, **kwargs: Any) -> str:
    raise StdinNotImplementedError("raw_input was called, but this frontend does not support input requests.")


def _no_getpass(prompt: str = "", *args: Any, **kwargs: Any) -> str:
    raise StdinNotImplementedError("getpass was called, but this frontend does not support input requests.")


class Shell:
    """ipykernel's shell, built before the fork, and what one child needs to run cells on it."""

    def __init__(self) -> None:
        config = Config()
        # no history database, hence no history-saving thread: the zygote must fork with a single thread
        config.HistoryManager.enabled = False
        self.session = LineSession(key=b"", username="orchestrator")
        self.shell: Any = ZMQInteractiveShell.instance(config=config, kernel=None, compiler_class=XCachingCompiler)
        hooks: tuple[Any, ...] = (self.shell.displayhook, self.shell.display_pub)
        for hook in hooks:
            hook.session = self.session
            hook.pub_socket = None
        self.start_dir = os.getcwd()
        self._warm_up()
        spec = importlib.util.find_spec("ipykernel_launcher")
        self.launcher = spec.origin if spec is not None and spec.origin else "ipykernel_launcher.py"

    def _warm_up(self) -> None:
        """Take the first-cell costs (lazy imports, compiler and formatter caches) before the fork, once for
        every run: a cell that keeps nothing (no history, no execution count, no display), a result formatted,
        a traceback formatted."""
        shell = self.shell
        shell.run_cell("pass", store_history=False, silent=True)
        shell.display_formatter.format(shell)
        try:
            raise ValueError("warm-up")
        except ValueError:
            shell.InteractiveTB.structured_traceback(*sys.exc_info())
        shell._last_traceback = None

    def attach(self, write: Write, workdir: Path) -> None:
        """In the child: messages go to ``write``; output, input and the working directory are the run's."""
        LineSession.write = staticmethod(write)
        tempfile.tempdir = None  # the run's TMPDIR, not the zygote's (the module caches it)
        stdout = OutStream("stdout", self.session, 1)
        stderr = OutStream("stderr", self.session, 2)
        stdout.capture_fd()
        stderr.capture_fd()
        _STREAMS[:] = [stdout, stderr]
        sys.stdout, sys.stderr = stdout, stderr
        builtins.input = _no_stdin  # type: ignore[assignment]
        getpass.getpass = _no_getpass
        # as a kernel's command line (code that parses sys.argv sees what it would under a kernel)
        sys.argv[:] = [self.launcher, "-f", str(workdir / "kernel.json")]
        # as a kernel started in the run's directory: it is on sys.path, where the zygote's was
        sys.path[:] = [str(workdir) if entry == self.start_dir else entry for entry in sys.path]

    def execute(self, code: str, *, silent: bool = False, store_history: bool = True) -> dict[str, Any]:
        """Run one cell as ipykernel's ``do_execute`` does; the execute_reply's content."""
        shell = self.shell
        self.session.send(None, "status", {"execution_state": "busy"})
        if not silent:
            self.session.send(None, "execute_input", {"code": code, "execution_count": shell.execution_count})
        shell._last_traceback = None
        try:
            result = shell.run_cell(code, store_history=store_history, silent=silent)
        finally:
            flush_streams()
        reply: dict[str, Any] = {"status": "ok"}
        if not result.success:
            error = result.error_before_exec or result.error_in_exec
            reply = {
                "status": "error",
                "traceback": shell._last_traceback or [],
                "ename": type(error).__name__,
                "evalue": str(error),
            }
        reply["execution_count"] = shell.execution_count - 1
        reply["user_expressions"] = {}
        reply["payload"] = shell.payload_manager.read_payload()
        shell.payload_manager.clear_payload()
        self.session.send(None, "status", {"execution_state": "idle"})
        return reply

    @staticmethod
    def kernel_info() -> dict[str, Any]:
        """The parts of ipykernel's kernel_info reply a notebook keeps."""
        return {
            "status": "ok",
            "protocol_version": "5.3",
            "implementation": "ipython",
            "implementation_version": IPYKERNEL_VERSION,
            "language_info": LANGUAGE_INFO,
            "banner": "",
        }
