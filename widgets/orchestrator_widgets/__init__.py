"""Orchestrator's widgets for JupyterLab, Notebook 7 and Voila (anywidget): builder, execution view, dashboard.

::

    from orchestrator_widgets import Admin, Builder, Dashboard, ExecutionView

    Builder()                          # draw a new workflow (a LangGraph agent unless framework= says otherwise)
    Builder(workflow_id="...")         # edit a saved one: its newest version
    ExecutionView("execution id")      # watch a run, answer a human approval
    Dashboard()                        # your personal organization's runs, live, with charts and controls
    Dashboard("Team")                  # another of yours, by name or id
    Admin()                            # its members and roles, tier and limits, integrations, schedules

They call the API through :class:`orchestrator_ext.client.Client` (found from
the environment, or pass ``client=``): nothing in the browser holds a token.
"""

from .admin import Admin
from .builder import Builder
from .dashboard import Dashboard
from .execution import ExecutionView

__all__ = ["Admin", "Builder", "Dashboard", "ExecutionView"]
