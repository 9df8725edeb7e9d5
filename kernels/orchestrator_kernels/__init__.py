"""Orchestrator's framework kernels and the ``%orchestrator`` IPython magics."""
