"""The models package (``orchestrator_ext/db/models/``, split by topic from one module): importing it, as
Alembic's ``env.py`` does, registers every table, the same tables as before the split, and every name the
code imports from it is still there. (``test_migrations.py`` compares the tables' columns, constraints and
indexes with the migrations.)"""

from __future__ import annotations

import json
import subprocess
import sys

#: ``Base.metadata.tables`` of the single ``models.py`` before the split
TABLES_BEFORE_THE_SPLIT = {
    "agents",
    "audit_events",
    "execution_events",
    "execution_notebooks",
    "integrations",
    "organization_members",
    "organizations",
    "rate_limits",
    "resource_tiers",
    "schedules",
    "users",
    "workflow_executions",
    "workflow_versions",
    "workflows",
}

#: every name imported from ``orchestrator_ext.db.models`` by the code, the migrations and the tests
IMPORTED = {
    "SLUG_PATTERN",
    "TENANT_TABLES",
    "Agent",
    "AuditEvent",
    "Base",
    "ExecutionEvent",
    "ExecutionNotebook",
    "ExecutionStatus",
    "ExecutionTrigger",
    "Framework",
    "Integration",
    "IntegrationKind",
    "MembershipSource",
    "Organization",
    "OrganizationMember",
    "ResourceTier",
    "Schedule",
    "User",
    "Workflow",
    "WorkflowExecution",
    "WorkflowVersion",
}


def test_importing_the_package_alone_registers_every_table_as_before() -> None:
    """In a fresh interpreter, as ``alembic`` loads ``env.py``: only ``Base`` imported, every table known."""
    code = "import json\nfrom orchestrator_ext.db.models import Base\nprint(json.dumps(sorted(Base.metadata.tables)))\n"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert set(json.loads(done.stdout)) == TABLES_BEFORE_THE_SPLIT


def test_every_imported_name_is_exported_and_tenant_tables_are_tables() -> None:
    from orchestrator_ext.db import models

    assert set(models.__all__) >= IMPORTED
    assert all(hasattr(models, name) for name in models.__all__)
    assert set(models.TENANT_TABLES) < set(models.Base.metadata.tables)
    tables = {mapper.class_.__tablename__: mapper.class_ for mapper in models.Base.registry.mappers}
    assert set(tables) == TABLES_BEFORE_THE_SPLIT
    assert all(getattr(models, cls.__name__) is cls for cls in tables.values())  # each class exported
