"""Encryption at rest and role-based permissions."""
