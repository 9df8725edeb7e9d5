"""n8n managed by the platform: install it, serve it headless, provision it, proxy its editor.

- :mod:`.install`: ``jupyter orchestrator n8n install`` puts a pinned n8n and the Node it
  needs (both from the npm registry) under ``$(jupyter --data-dir)/orchestrator/n8n``;
- :mod:`.process`: starts n8n bound to the loopback, telemetry and update checks off, and
  stops it (it dies with its parent);
- :mod:`.provision`: its owner and API key, made without a person, and the n8n integration
  that hands the key (encrypted) to runs;
- :mod:`.instances`, :mod:`.team`: organizations' instances started on demand (by the server, or under
  JupyterHub by ``jupyter orchestrator n8n instances``), each under an account of its own;
- :mod:`.attach`: n8n's databases made as the account that owns the embedded PostgreSQL (root beside the
  hub's service);
- :mod:`.cli`: the ``jupyter orchestrator n8n`` commands.

The runtime that runs n8n workflows lives in ``orchestrator_runtimes.n8n``.
"""
