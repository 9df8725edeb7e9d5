# ruff: noqa: F821 - `c` and `load_subconfig` are given to config files by JupyterHub
"""The team mode's own configuration, plus two hub services that are not users, for the tests:
``intruder`` may reach the Orchestrator service (its token must still be refused: it acts for no
user), ``bystander`` may not."""

import os

load_subconfig(os.environ["ORCHESTRATOR_TEST_TEAM_CONFIG"])

c.JupyterHub.services.append({"name": "intruder", "api_token": os.environ["ORCHESTRATOR_TEST_INTRUDER_TOKEN"]})
c.JupyterHub.services.append({"name": "bystander", "api_token": os.environ["ORCHESTRATOR_TEST_BYSTANDER_TOKEN"]})
c.JupyterHub.load_roles.append(
    {"name": "intruder", "scopes": ["access:services!service=orchestrator"], "services": ["intruder"]}
)
