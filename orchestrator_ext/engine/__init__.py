"""The execution engine: the queue in PostgreSQL, workers, warm kernels and runners, the scheduler.

A run's life: ``queue`` (claim, lease, heartbeat, idempotent completion),
``worker`` (slots, cancellation, timeouts, retries), ``kernels`` and
``notebooks`` (papermill on a warm, never-reused kernel), ``runners``
(framework runtimes in warm child processes), ``scheduler`` and ``cron``
(schedules fired exactly once). See docs/executions.md.
"""
