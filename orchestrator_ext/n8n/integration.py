"""The managed n8n as an organization integration: its URL in ``config``, its API key encrypted.

Runs receive an integration's secret only through the worker, which decrypts
it for the run that names it: the key is never on disk in clear. The row is
written with the operator's (system) connection, as ``set-tier`` writes, and
bound to its own id like every integration secret.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy import Engine, text

from ..db.system import system_transaction_sync
from ..security.crypto import KeyRing, KeyRingError
from ..services.integrations import secret_context

INTEGRATION_NAME = "n8n"


def find_org(engine: Engine, org: str, owner: str) -> uuid.UUID:
    """The organization named by ``org`` (an id or a slug), else ``owner``'s personal organization."""
    with system_transaction_sync(engine) as conn:
        if org:
            try:
                row = conn.execute(text("SELECT id FROM organizations WHERE id = :o"), {"o": uuid.UUID(org)}).first()
            except ValueError:
                row = conn.execute(text("SELECT id FROM organizations WHERE slug = :s"), {"s": org}).first()
            if row is None:
                raise SystemExit(f"no organization with id or slug '{org}'")
            return uuid.UUID(str(row[0]))
        row = conn.execute(
            text("SELECT o.id FROM organizations o JOIN users u ON u.id = o.personal_for_user_id WHERE u.subject = :s"),
            {"s": owner},
        ).first()
        if row is None:
            raise SystemExit(
                f"'{owner}' has no personal organization yet (it is made on their first request): "
                "open the server once, or pass --org"
            )
        return uuid.UUID(str(row[0]))


def editor_context(integration_id: uuid.UUID, base_url: str) -> str:
    """What the editor's login is sealed with: it opens only on its own row and for the URL it was made for (an
    integration pointed elsewhere cannot have the service send the instance's owner password there)."""
    return f"integrations.n8n-editor:{integration_id}:{base_url}"


def save(
    engine: Engine,
    keyring: KeyRing,
    org_id: uuid.UUID,
    base_url: str,
    api_key: str,
    managed: str | None = None,
    editor: tuple[str, str, str] | None = None,
) -> uuid.UUID:
    """Create or update the organization's ``n8n`` integration with this URL and key; its id. ``managed``: the
    instance's name, where the platform starts it on demand (:mod:`.instances`). ``editor``: the path n8n's
    editor is served under by the hub's service, and the owner's e-mail and password the service logs in with
    (handlers/n8n_editor.py), kept sealed in ``config.editor`` (never returned in clear)."""
    with system_transaction_sync(engine) as conn:
        row = conn.execute(
            text("SELECT id, kind FROM integrations WHERE org_id = :o AND lower(name) = :n"),
            {"o": org_id, "n": INTEGRATION_NAME},
        ).first()
        if row is not None and row.kind != "n8n":
            raise SystemExit(f"the organization's integration '{INTEGRATION_NAME}' is a {row.kind} integration")
        integration_id = uuid.UUID(str(row.id)) if row is not None else uuid.uuid4()
        config = json.dumps(
            {
                "base_url": base_url,
                **({"managed": managed} if managed else {}),
                **({"editor": _sealed_editor(keyring, integration_id, base_url, editor)} if editor else {}),
            }
        )
        sealed = keyring.encrypt(api_key, secret_context(integration_id))
        if row is None:
            conn.execute(
                text(
                    "INSERT INTO integrations (id, org_id, kind, name, config, secret_encrypted) "
                    "VALUES (:i, :o, 'n8n', :n, CAST(:c AS jsonb), :s)"
                ),
                {"i": integration_id, "o": org_id, "n": INTEGRATION_NAME, "c": config, "s": sealed},
            )
        else:
            conn.execute(
                text(
                    "UPDATE integrations SET config = CAST(:c AS jsonb), secret_encrypted = :s, "
                    "updated_at = clock_timestamp() WHERE id = :i"
                ),
                {"i": integration_id, "c": config, "s": sealed},
            )
    return integration_id


def reserve(engine: Engine, org_id: uuid.UUID, base_url: str, managed: str) -> None:
    """Before an instance the platform manages first starts: its ``n8n`` integration with its URL and no key yet,
    so that a run claimed meanwhile is handed it and waits for the key (:mod:`.pending`) rather than failing
    with "no n8n integration". Nothing where the organization has one already."""
    config = json.dumps({"base_url": base_url, "managed": managed})
    with system_transaction_sync(engine) as conn:
        found = conn.execute(
            text("SELECT 1 FROM integrations WHERE org_id = :o AND lower(name) = :n"),
            {"o": org_id, "n": INTEGRATION_NAME},
        ).first()
        if found is None:
            conn.execute(
                text(
                    "INSERT INTO integrations (id, org_id, kind, name, config) "
                    "VALUES (:i, :o, 'n8n', :n, CAST(:c AS jsonb))"
                ),
                {"i": uuid.uuid4(), "o": org_id, "n": INTEGRATION_NAME, "c": config},
            )


def _sealed_editor(
    keyring: KeyRing, integration_id: uuid.UUID, base_url: str, editor: tuple[str, str, str]
) -> dict[str, str]:
    path, email, password = editor
    login = json.dumps({"email": email, "password": password})
    return {"path": path, "login": keyring.encrypt(login, editor_context(integration_id, base_url))}


def editor_login(keyring: KeyRing, integration_id: uuid.UUID, config: dict[str, Any]) -> tuple[str, str, str] | None:
    """The editor of the instance an ``n8n`` integration names, where ``serve`` registered one: (its path, the
    owner's e-mail, password); None otherwise, or where the integration's URL changed since."""
    editor = config.get("editor")
    if not isinstance(editor, dict) or not editor.get("login") or not editor.get("path"):
        return None
    try:
        login = json.loads(keyring.decrypt(str(editor["login"]), editor_context(integration_id, config["base_url"])))
    except (KeyRingError, KeyError, ValueError):  # sealed for another URL, or with a key no longer held
        return None
    return str(editor["path"]), str(login["email"]), str(login["password"])


def stored(engine: Engine, keyring: KeyRing, org_id: uuid.UUID) -> tuple[str, str] | None:
    """The organization's ``n8n`` integration as saved: (base URL, API key), or None."""
    with system_transaction_sync(engine) as conn:
        row = conn.execute(
            text(
                "SELECT id, config, secret_encrypted FROM integrations "
                "WHERE org_id = :o AND lower(name) = :n AND kind = 'n8n'"
            ),
            {"o": org_id, "n": INTEGRATION_NAME},
        ).first()
    if row is None or not row.secret_encrypted:
        return None
    key = keyring.decrypt(row.secret_encrypted, secret_context(uuid.UUID(str(row.id))))
    return str((row.config or {}).get("base_url") or ""), key
