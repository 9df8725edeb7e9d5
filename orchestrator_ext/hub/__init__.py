"""Orchestrator behind JupyterHub (the team and cluster modes).

- :mod:`.identity`: the API as a hub service: hub users become orchestrator
  users, services and blocked users are refused, the hub's answers are not
  cached (a removed user loses access at once), and the service's own
  jupyter-server serves the API only (no kernels, terminals or files).
- :mod:`.profiles`: server profiles and the resource tiers that allow them,
  and the hub-side check of a user's tiers (asked of the API as that user).
- :mod:`.spawner`: the team mode's spawner: one system account per hub user.

Nothing here imports JupyterHub at module level except :mod:`.spawner`, which
only the hub loads.
"""
