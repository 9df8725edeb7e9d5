"""Orchestrator's widgets for JupyterLab, Notebook 7 and Voila (anywidget): the builder, the execution view."""
