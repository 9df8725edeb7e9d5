"""Structured logs with correlation ids, and Prometheus metrics."""
