"""Fewer page-table entries to copy per fork: a warm server's memory folded into 2 MiB pages.

A fork copies one page-table entry per resident 4 KiB page of the parent's
private memory, and the child tears them all down again when it exits. A fork
server with LangGraph imported holds about 90 MB of it (23,000 entries): on
this kind of machine (a VM) a fork and exit of it cost about 9 ms of CPU,
parent and child together, before the run does anything.

:func:`collapse_private_memory` asks the kernel (``MADV_COLLAPSE``, Linux 6.1+;
synchronous, independent of the system's transparent huge page setting) to
fold the server's private anonymous memory into transparent huge pages, once,
after the imports and before the first fork. A huge page is one entry for
512 pages: the fork copies it in one step and the child's exit drops it in
one. A run that writes to such a page gets only that 4 KiB copied, as before
(the kernel splits the child's mapping of it; the server keeps its huge page).
Measured here (fork server with LangGraph, a fork and ``_exit``): parent
3.6 -> 1.3 ms, child 5.2 -> 2.4 ms; resident memory grew under 1 %.

Where the kernel cannot (older kernels, no THP support, a range it refuses) it
does nothing: the pages stay as they were.
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Iterator

#: ``MADV_COLLAPSE`` (``include/uapi/asm-generic/mman-common.h``, Linux 6.1)
MADV_COLLAPSE = 25
HUGE_PAGE = 2 * 1024 * 1024


def private_ranges(maps: str) -> Iterator[tuple[int, int]]:
    """The 2 MiB-aligned parts of the private, writable, anonymous mappings (the heap and Python's
    arenas) in a ``/proc/<pid>/maps`` text: what a huge page can hold."""
    for line in maps.splitlines():
        fields = line.split()
        if len(fields) < 5 or fields[1] != "rw-p":
            continue
        name = fields[5] if len(fields) > 5 else ""
        if name not in ("", "[heap]"):  # files (their pages are shared, not copied) and stacks
            continue
        start, end = (int(bound, 16) for bound in fields[0].split("-"))
        aligned_start = -(-start // HUGE_PAGE) * HUGE_PAGE
        aligned_end = end // HUGE_PAGE * HUGE_PAGE
        if aligned_end > aligned_start:
            yield aligned_start, aligned_end


def collapse_private_memory() -> int:
    """Fold this process's private anonymous memory into huge pages where the kernel can: the bytes
    folded (0 where it cannot, or off Linux)."""
    if not sys.platform.startswith("linux"):
        return 0
    try:
        with open("/proc/self/maps", encoding="ascii") as maps:
            ranges = list(private_ranges(maps.read()))
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return 0
    madvise = libc.madvise
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    madvise.restype = ctypes.c_int
    folded = 0
    for start, end in ranges:
        if madvise(start, end - start, MADV_COLLAPSE) == 0:
            folded += end - start
    return folded
