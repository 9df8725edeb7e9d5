# ruff: noqa: F821 - `c` and `load_subconfig` are given to config files by JupyterHub
"""The team mode: ``jupyterhub -f hub_config/jupyterhub_config.py`` (as root).

shared.py: how people log in, admins, roles, the idle culler.
team.py: users' servers as their own system accounts on this machine, the
Orchestrator API and the dashboard as hub services, TLS.

On Kubernetes the official JupyterHub chart writes the hub's configuration
and the chart in helm/ adds kubernetes.py (see docs/deploy/kubernetes.md).
Settings come from the environment: see .env.example.
"""

import os

HERE = os.path.dirname(os.path.abspath(__file__))
# full paths: a bare name would be looked up in the current directory (and silently skipped if absent)
load_subconfig(os.path.join(HERE, "shared.py"))
load_subconfig(os.path.join(HERE, "team.py"))
