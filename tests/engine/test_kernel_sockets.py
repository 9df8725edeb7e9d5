"""A notebook kernel (the "kernel" engine) starts wherever the runs' folder is, however deep: its ipc sockets are
Unix sockets, whose address takes at most 107 bytes, so a deep ``run_dir`` or ``TMPDIR`` gets them through a
short link (it failed with ZMQError 'File name too long')."""

from __future__ import annotations

from pathlib import Path

from orchestrator_ext.engine.kernels import discard, start_kernel


async def test_a_kernel_starts_under_a_folder_too_deep_for_a_socket_address(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    kernel = await start_kernel("python3", 2048, deep)
    try:
        assert kernel.link is not None
        assert kernel.link.parent == Path("/tmp")
        assert (kernel.link / "w").resolve() == kernel.workdir.resolve()
        reply = await kernel.client.execute_interactive("import os; print(os.getcwd())", timeout=60)
        assert reply["content"]["status"] == "ok"
    finally:
        await discard(kernel)
    assert not kernel.link.exists()
    assert not kernel.workdir.exists()


async def test_a_kernel_in_a_short_folder_needs_no_link(tmp_path: Path) -> None:
    kernel = await start_kernel("python3", 2048, Path("/tmp") if len(str(tmp_path)) > 60 else tmp_path)
    try:
        assert kernel.link is None
    finally:
        await discard(kernel)
