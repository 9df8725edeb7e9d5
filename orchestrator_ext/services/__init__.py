"""Domain services: rules and transactions, no HTTP.

Handlers, the CLI and (later) the workers call these. Each public method
opens one transaction inside the caller's tenant scope (:mod:`.scope`).
"""
