"""Key rotation: re-encrypt every encrypted column with the key ring's primary key.

Runs outside any tenant (a system transaction) on a synchronous connection:
it is an operator's command (``jupyter orchestrator rotate-keys``), not a request.
Rows already under the primary key are left alone, so the command can be
stopped and run again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import Engine, text

from ..db.system import system_transaction_sync
from ..security.crypto import KeyRing

log = logging.getLogger("orchestrator.keys")

#: (table, column, context prefix): the context is ``f"{prefix}:{row id}"``
ENCRYPTED_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("users", "email_encrypted", "users.email"),
    ("users", "display_name_encrypted", "users.display_name"),
    ("integrations", "secret_encrypted", "integrations.secret"),
)


@dataclass
class RotationReport:
    reencrypted: int = 0
    already_current: int = 0

    def __str__(self) -> str:
        return f"{self.reencrypted} values re-encrypted, {self.already_current} already under the primary key"


def reencrypt_all(engine: Engine, ring: KeyRing, batch: int = 500) -> RotationReport:
    """Re-encrypt, in batches of ``batch`` rows per transaction, every value not under ``ring.primary``."""
    report = RotationReport()
    for table, column, prefix in ENCRYPTED_COLUMNS:
        with system_transaction_sync(engine) as conn:
            report.already_current += conn.execute(
                # table and column come from ENCRYPTED_COLUMNS, never from input
                text(f"SELECT count(*) FROM {table} WHERE {column} LIKE :current"),  # nosec B608
                {"current": f"v1.{ring.primary}.%"},
            ).scalar_one()
        # until no value is left under another key: rows locked by a writer are waited for
        while _rotate_batch(engine, ring, table, column, prefix, batch, report):
            pass
    log.info("key rotation finished", extra={"reencrypted": report.reencrypted})
    return report


def remaining(engine: Engine, ring: KeyRing) -> int:
    """How many encrypted values are not (yet) under the primary key."""
    total = 0
    with system_transaction_sync(engine) as conn:
        for table, column, _prefix in ENCRYPTED_COLUMNS:
            query = f"SELECT count(*) FROM {table} WHERE {column} IS NOT NULL AND {column} NOT LIKE :current"  # nosec B608
            total += conn.execute(text(query), {"current": f"v1.{ring.primary}.%"}).scalar_one()
    return total


def _rotate_batch(
    engine: Engine, ring: KeyRing, table: str, column: str, prefix: str, batch: int, report: RotationReport
) -> int:
    current = f"v1.{ring.primary}.%"
    with system_transaction_sync(engine) as conn:
        rows = conn.execute(
            text(
                f"SELECT id, {column} FROM {table} WHERE {column} IS NOT NULL AND {column} NOT LIKE :current "  # nosec B608
                "ORDER BY id LIMIT :batch FOR UPDATE"
            ),
            {"current": current, "batch": batch},
        ).all()
        for row_id, token in rows:
            context = f"{prefix}:{row_id}"
            fresh = ring.encrypt(ring.decrypt(token, context), context)
            update = text(f"UPDATE {table} SET {column} = :v WHERE id = :id")  # nosec B608
            conn.execute(update, {"v": fresh, "id": row_id})
        report.reencrypted += len(rows)
    return len(rows)
