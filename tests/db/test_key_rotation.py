"""Key rotation re-encrypts every encrypted value under the new primary key."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine

from orchestrator_ext.db.engine import Database, PoolSettings, alembic_config, sqlalchemy_url
from orchestrator_ext.security.crypto import KeyRing, generate_key
from orchestrator_ext.services.keys import reencrypt_all
from orchestrator_ext.services.scope import Identity, ScopeFactory
from tests.conftest import APP_ROLE, TEST_KEYS, PgCluster, TestDatabase


def _tokens(admin_url: str) -> list[tuple[str, str]]:
    with psycopg.connect(admin_url) as conn:
        rows = conn.execute("SELECT id::text, display_name_encrypted FROM users ORDER BY subject").fetchall()
    return [(r[0], r[1]) for r in rows]


async def test_rotation_reencrypts_with_primary(database: TestDatabase) -> None:
    old_key, new_key = generate_key(), generate_key()
    old = KeyRing.parse(f"old:{old_key}")
    db = Database(database.app_url, PoolSettings(size=1, max_overflow=0))
    scopes = ScopeFactory(db, old)
    for name in ("ann", "bob", "cy"):
        async with scopes.enter(Identity(name, display_name=f"{name.title()} Person")):
            pass
    await db.dispose()
    assert all(token.startswith("v1.old.") for _, token in _tokens(database.admin_url))

    rotated = KeyRing.parse(f"new:{new_key},old:{old_key}")
    engine = create_engine(sqlalchemy_url(database.admin_url))
    report = reencrypt_all(engine, rotated, batch=2)
    again = reencrypt_all(engine, rotated)
    engine.dispose()
    assert report.reencrypted == 3
    assert again.reencrypted == 0
    assert again.already_current == 3
    only_new = KeyRing.parse(f"new:{new_key}")
    names = sorted(only_new.decrypt(token, f"users.display_name:{uid}") for uid, token in _tokens(database.admin_url))
    assert names == ["Ann Person", "Bob Person", "Cy Person"]


def test_cli_migrate_and_rotate_keys(pg_cluster: PgCluster, tmp_path: Path) -> None:
    name = pg_cluster.new_database()
    env = {
        **os.environ,
        "ORCHESTRATOR_DATA_DIR": str(tmp_path),
        "ORCHESTRATOR_DATABASE_URL": pg_cluster.app_url(name),
        "ORCHESTRATOR_DATABASE_ADMIN_URL": pg_cluster.admin_url(name),
    }
    env.pop("ORCHESTRATOR_ENCRYPTION_KEYS", None)
    cmd = [sys.executable, "-m", "jupyter", "orchestrator"]
    migrated = subprocess.run([*cmd, "migrate"], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert migrated.returncode == 0, migrated.stderr
    assert "database migrated to head" in migrated.stdout
    with psycopg.connect(pg_cluster.admin_url(name)) as conn:
        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone() == (head,)
        role = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (APP_ROLE,)).fetchone()
        assert role == (1,)
    rotated = subprocess.run(
        [*cmd, "rotate-keys", "--generate", "--prune"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert rotated.returncode == 0, rotated.stderr
    assert "primary key k2" in rotated.stdout
    keys = json.loads((tmp_path / "keys.json").read_text())["keys"]
    assert keys.startswith("k2:")
    assert "," not in keys


def test_cli_set_tier(pg_cluster: PgCluster, tmp_path: Path) -> None:
    name = pg_cluster.new_database()
    admin = pg_cluster.admin_url(name)
    env = {
        **os.environ,
        "ORCHESTRATOR_DATA_DIR": str(tmp_path),
        "ORCHESTRATOR_DATABASE_URL": pg_cluster.app_url(name),
        "ORCHESTRATOR_DATABASE_ADMIN_URL": admin,
        "ORCHESTRATOR_ENCRYPTION_KEYS": TEST_KEYS,
    }
    cmd = [sys.executable, "-m", "jupyter", "orchestrator", "set-tier"]
    assert subprocess.run([*cmd[:4], "migrate"], env=env, capture_output=True, timeout=120, check=False).returncode == 0
    with psycopg.connect(admin, autocommit=True) as conn:
        org = conn.execute("INSERT INTO organizations (name) VALUES ('lab') RETURNING id").fetchone()[0]  # type: ignore[index]
    moved = subprocess.run(
        [*cmd, f"--org={org}", "--tier=gpu-large"], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert moved.returncode == 0, moved.stderr
    assert "now on tier 'gpu-large'" in moved.stdout
    with psycopg.connect(admin) as conn:
        assert conn.execute("SELECT tier_name FROM organizations WHERE id = %s", (org,)).fetchone() == ("gpu-large",)
    unknown = subprocess.run(
        [*cmd, f"--org={org}", "--tier=platinum"], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert unknown.returncode != 0
    assert "no tier 'platinum'" in unknown.stderr
