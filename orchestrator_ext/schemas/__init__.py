"""Pydantic models: the one source of request and response shapes and of the OpenAPI document.

Named by verb, like jupyter-scheduler's models: ``CreateAgent``,
``DescribeAgent``, ``ListAgentsQuery``, ``ListAgentsResponse``.
"""
