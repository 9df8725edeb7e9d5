"""A small closed-loop HTTP/1.1 load generator (keep-alive, N connections), run in its own process.

``python bench/loadgen.py '<json scenario>'`` prints one JSON object: requests,
errors, requests per second and latency percentiles. It speaks just enough
HTTP/1.1 for a tornado server on 127.0.0.1 (Content-Length or chunked
bodies), so the client costs little next to the server it measures.

Scenario fields: ``host``, ``port``, ``method``, ``path``, ``headers`` (dict),
``body`` (a string in which ``{n}`` becomes a number unique within the run),
``expect`` (status code), ``concurrency``, ``warmup_s``, ``duration_s``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Scenario:
    host: str
    port: int
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None
    expect: int = 200
    concurrency: int = 8
    warmup_s: float = 2.0
    duration_s: float = 8.0


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str = ""
    warmup_requests: int = 0


def build_request(scenario: Scenario, number: int) -> bytes:
    body = scenario.body.replace("{n}", str(number)).encode() if scenario.body is not None else b""
    lines = [f"{scenario.method} {scenario.path} HTTP/1.1", f"Host: {scenario.host}:{scenario.port}"]
    lines += [f"{name}: {value}" for name, value in scenario.headers.items()]
    if body or scenario.method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """Status, body, and whether the server keeps the connection open."""
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("connection closed by the server")
    status = int(status_line.split(b" ", 2)[1])
    length, chunked, keep_alive = 0, False, True
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "transfer-encoding" and "chunked" in value:
            chunked = True
        elif name == "connection" and value == "close":
            keep_alive = False
    if not chunked:
        return status, await reader.readexactly(length), keep_alive
    parts: list[bytes] = []
    while True:
        size = int((await reader.readline()).split(b";")[0], 16)
        if size == 0:
            await reader.readline()
            return status, b"".join(parts), keep_alive
        parts.append(await reader.readexactly(size))
        await reader.readline()


async def connection_loop(
    scenario: Scenario, numbers: itertools.count[int], measure_from: float, stop_at: float, tally: Tally
) -> None:
    reader, writer = await asyncio.open_connection(scenario.host, scenario.port)
    try:
        while True:
            started = time.perf_counter()
            if started >= stop_at:
                return
            writer.write(build_request(scenario, next(numbers)))
            status, body, keep_alive = await read_response(reader)
            elapsed = time.perf_counter() - started
            if status != scenario.expect:
                tally.errors += 1
                tally.first_error = tally.first_error or f"{status} {body[:300]!r}"
            elif started >= measure_from:
                tally.latencies.append(elapsed)
            else:
                tally.warmup_requests += 1
            if not keep_alive:
                writer.close()
                reader, writer = await asyncio.open_connection(scenario.host, scenario.port)
    finally:
        writer.close()


def percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


async def run(scenario: Scenario) -> dict[str, Any]:
    tally = Tally()
    numbers = itertools.count(1)
    start = time.perf_counter()
    measure_from = start + scenario.warmup_s
    stop_at = measure_from + scenario.duration_s
    await asyncio.gather(
        *(connection_loop(scenario, numbers, measure_from, stop_at, tally) for _ in range(scenario.concurrency))
    )
    measured_s = max(time.perf_counter() - measure_from, 1e-9)
    latencies = sorted(tally.latencies)
    return {
        "requests": len(latencies),
        "warmup_requests": tally.warmup_requests,
        "errors": tally.errors,
        "first_error": tally.first_error,
        "seconds": round(measured_s, 3),
        "rps": round(len(latencies) / measured_s, 1),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 3),
        "p90_ms": round(percentile(latencies, 0.90) * 1000, 3),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 3),
        "mean_ms": round((sum(latencies) / len(latencies) if latencies else float("nan")) * 1000, 3),
        "max_ms": round((latencies[-1] if latencies else float("nan")) * 1000, 3),
    }


def main(argv: list[str]) -> None:
    scenario = Scenario(**json.loads(argv[1]))
    try:
        import uvloop
    except ImportError:
        result = asyncio.run(run(scenario))
    else:
        result = uvloop.run(run(scenario))
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv)
