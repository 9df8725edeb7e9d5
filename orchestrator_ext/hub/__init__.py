"""Orchestrator behind JupyterHub (the team and cluster modes).

- :mod:`.identity`: the API as a hub service: hub users become orchestrator
  users, services and blocked users are refused, the hub's answers are not
  cached (a removed user loses access at once), and the service's own
  jupyter-server serves the API only (no kernels, terminals or files).
- :mod:`.profiles`: server profiles and the resource tiers that allow them,
  and the hub-side check of a user's tiers (asked of the API as that user).
- :mod:`.spawner`: the team mode's spawner: one system account per hub user.
- :mod:`.native`: NativeAuthenticator with a login page that works on JupyterHub 6.
- :mod:`.dashboard`: the ``dashboard`` hub service (Voila in the user's own server).

:mod:`.identity` and :mod:`.profiles` run in the API and need no JupyterHub;
the others are loaded by the hub (or started by it) and import it.
"""
