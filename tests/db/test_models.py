"""The models package (``orchestrator_ext/db/models/``, split by topic from one module): importing it, as
Alembic's ``env.py`` does, registers every table, the same tables as before the split, and every name the
code imports from it is still there. (``test_migrations.py`` compares the tables' columns, constraints and
indexes with the migrations.)"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

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

ROOT = Path(__file__).resolve().parents[2]
MODELS = "orchestrator_ext.db.models"


def imported_from_models() -> set[str]:
    """Every name the code, the migrations, the tests and the benchmarks import from the package (absolute or
    relative imports), read from their source; not the package's own modules importing one another."""
    found: set[str] = set()
    own = ROOT / "orchestrator_ext" / "db" / "models"
    for path in [*ROOT.glob("orchestrator_ext/**/*.py"), *ROOT.glob("tests/**/*.py"), *ROOT.glob("bench/*.py")]:
        if own in path.parents:
            continue
        package = list(path.relative_to(ROOT).with_suffix("").parts)
        package = package if path.name == "__init__.py" else package[:-1]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.ImportFrom):
                continue
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *(node.module or "").split(".")]).strip(".")
            if module == MODELS or module.startswith(MODELS + "."):
                found |= {alias.name for alias in node.names}
    return found


def test_importing_the_package_alone_registers_every_table_as_before() -> None:
    """In a fresh interpreter, as ``alembic`` loads ``env.py``: only ``Base`` imported, every table known."""
    code = "import json\nfrom orchestrator_ext.db.models import Base\nprint(json.dumps(sorted(Base.metadata.tables)))\n"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert set(json.loads(done.stdout)) == TABLES_BEFORE_THE_SPLIT


def test_every_imported_name_is_exported_and_tenant_tables_are_tables() -> None:
    from orchestrator_ext.db import models

    imported = imported_from_models()
    assert len(imported) >= 15  # the scan finds the imports (Base, Agent, Organization, ...)
    assert set(models.__all__) >= imported
    assert all(hasattr(models, name) for name in models.__all__)
    assert set(models.TENANT_TABLES) < set(models.Base.metadata.tables)
    tables = {mapper.class_.__tablename__: mapper.class_ for mapper in models.Base.registry.mappers}
    assert set(tables) == TABLES_BEFORE_THE_SPLIT
    assert all(getattr(models, cls.__name__) is cls for cls in tables.values())  # each class exported
