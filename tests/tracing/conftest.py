"""Fixtures of the tracing tests.

- ``receiver``: an OTLP receiver on the loopback (:class:`tests.otlp_receiver.OtlpReceiver`), for the module.
- ``server``: a real ``jupyter orchestrator`` (embedded PostgreSQL, its worker, the local model) exporting
  its spans to ``receiver`` every 200 ms, for the module (:func:`tests.otlp_receiver.traced_server_fixtures`).

The tests that check our spans against the instrumentations' own, in this process, make their tracer
with :func:`tests.tracing.memory.memory_tracer`.
"""

from __future__ import annotations

from tests.otlp_receiver import traced_server_fixtures

receiver, server = traced_server_fixtures("tracing", local_model=True)
