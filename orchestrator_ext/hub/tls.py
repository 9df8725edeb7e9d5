"""JupyterHub's ``internal_ssl`` in the team mode: certificates where their processes can read them,
and two workarounds for JupyterHub 6.1.

With ``c.JupyterHub.internal_ssl`` the hub makes its own certificate authorities (under
``internal_certs_location``, in the hub's private folder) and every connection between the hub, the
proxy, the hub's managed services and users' servers is TLS, both sides showing a certificate those
authorities signed. In the team mode each of those processes runs as a system account of its own, so
each needs its key and certificates somewhere only that account can read:

- :func:`install_certs` puts them there (users' servers: :meth:`.spawner.TeamSpawner.move_certs`;
  services: workaround 1);
- :func:`give_services_their_certs` (workaround 1): JupyterHub never does this for managed services;
- :func:`let_start_service_make_its_client_context` (workaround 2): JupyterHub waits for an https
  service with a server-side TLS context, which cannot connect;
- :func:`hub_client_context`: the hub's own client side, for the questions it asks the API.

JupyterHub has no hook for either workaround: both replace one method of a JupyterHub class, only
when ``internal_ssl`` is on (``hub_config/team.py``), and are written so that an upstream fix makes
them do nothing or nothing harmful; each says how to tell when it can go.
``tests/hub/test_internal_ssl.py`` runs the whole hub with them.
"""

from __future__ import annotations

import asyncio
import functools
import os
import pwd
import shutil
import ssl
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: the hub's authority that signs users' servers' and managed services' certificates
NOTEBOOKS_CA = "notebooks-ca"
#: marks our wrappers, so that loading the configuration again does not wrap them twice
_PATCHED = "_orchestrator_internal_ssl_patch"


def authority_cert(certs_location: str | os.PathLike[str], authority: str = NOTEBOOKS_CA) -> Path:
    """The certificate of one of the hub's internal authorities (certipy's layout: ``<name>/<name>.crt``)."""
    path = Path(certs_location) / authority / f"{authority}.crt"
    if not path.is_file():
        raise FileNotFoundError(f"The hub's internal CA '{authority}' is not at {path}.")
    return path


def _root_folder(path: Path) -> None:
    """``path`` exists, is root's and only root can write in it (mode 0711: accounts pass through to
    their own folder but cannot list the others), so no account can swap what lies in it."""
    path.mkdir(mode=0o711, parents=True, exist_ok=True)
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != 0 or info.st_mode & 0o022:
        raise PermissionError(f"{path} must be a folder of root's that no one else can write in.")


def install_certs(
    paths: Mapping[str, str],
    folder: Path,
    account: str,
    *,
    also_trust: Sequence[Path] = (),
    copies: Mapping[str, Path] | None = None,
) -> dict[str, str]:
    """Move a key and certificate out of the hub's store into ``folder``, readable by ``account`` only.

    ``paths`` is what ``Spawner.create_certs`` returns (``keyfile``, ``certfile``, ``cafile``): the key
    and certificate are moved, the CA bundle copied, with ``also_trust`` (more CA certificates)
    appended to it; ``copies`` are more files to copy in, by name. The answer is the new paths, in the
    same keys.

    Like JupyterHub's ``LocalProcessSpawner.move_certs``, but not in the account's home: a home is
    the account's own, and there a symbolic link (``~/.jupyterhub`` -> ``/etc``) turns root's
    ``chown`` of the certificates' folder into a gift of any folder. Here the folder's parent is
    root's alone, the folder is filled while root owns it and handed to the account last.
    """
    entry = pwd.getpwnam(account)
    _root_folder(folder.parent)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(mode=0o700)
    key = Path(shutil.move(paths["keyfile"], folder / Path(paths["keyfile"]).name))
    cert = Path(shutil.move(paths["certfile"], folder / Path(paths["certfile"]).name))
    ca = folder / Path(paths["cafile"]).name
    ca.write_text("".join(Path(p).read_text() for p in [Path(paths["cafile"]), *also_trust]))
    extra = [folder / name for name in (copies or {})]
    for name, source in (copies or {}).items():
        shutil.copyfile(source, folder / name)
    for path in (key, cert, ca, *extra, folder):  # the folder last: until then, only root can reach in
        path.chmod(0o700 if path == folder else 0o600)
        os.chown(path, entry.pw_uid, entry.pw_gid, follow_symlinks=False)
    return {"keyfile": str(key), "certfile": str(cert), "cafile": str(ca)}


# ---- workaround 1: a managed service's certificates -------------------------------------------------


@dataclass(frozen=True)
class ServiceCerts:
    """Where one managed service's certificates go."""

    #: its own folder; the parent is root's (see :func:`install_certs`)
    folder: Path
    #: also accept users' servers (and so their kernels) as TLS clients, not only the hub and the proxy
    trust_servers: bool = False


#: service name -> where its certificates go (filled by :func:`give_services_their_certs`)
_SERVICE_CERTS: dict[str, ServiceCerts] = {}


def _place_service_certs(spawner: Any, paths: dict[str, str]) -> dict[str, str]:
    place = _SERVICE_CERTS.get(spawner._service_name)
    account = spawner.user.name
    if place is None or not account or pwd.getpwnam(account).pw_uid == 0:
        return paths  # a service running as the hub does (root) reads the hub's store
    if Path(paths["keyfile"]).parent == place.folder:
        return paths  # already there
    also = [authority_cert(spawner.internal_certs_location)] if place.trust_servers else []
    moved = install_certs(paths, place.folder, account, also_trust=also)
    spawner.log.info("internal TLS: %s's certificates are in %s", spawner._service_name, place.folder)
    return moved


def give_services_their_certs(places: Mapping[str, ServiceCerts]) -> None:
    """Workaround 1: each managed service's key and certificates, readable by the service's account.

    JupyterHub 6.1's ``Service.start`` (``jupyterhub/services/service.py``) makes a service's
    certificates with ``self.spawner.create_certs()`` in the hub's private store and hands the
    service those paths, but never calls ``move_certs`` as it does for users' servers: a service
    running as an account of its own (``"user"`` in ``c.JupyterHub.services``) cannot read them and
    cannot start. This gives the service spawner (``_ServiceSpawner``) a ``move_certs`` that moves
    the certificates of the services named in ``places`` (:func:`install_certs`) and leaves the
    others where they are, and makes its ``create_certs`` call it.

    It can go when ``Service.start`` calls the spawner's ``move_certs`` after ``create_certs``
    (then keep only the ``move_certs`` part). Until then an upstream that starts calling it finds
    the files already in place, and the second call changes nothing. Calling this again only
    updates ``places``.
    """
    from jupyterhub.services.service import _ServiceSpawner  # type: ignore[import-untyped]

    _SERVICE_CERTS.update(places)
    original = _ServiceSpawner.create_certs
    if getattr(original, _PATCHED, False):
        return

    async def move_certs(spawner: Any, paths: dict[str, str]) -> dict[str, str]:
        return await asyncio.to_thread(_place_service_certs, spawner, paths)

    @functools.wraps(original)
    async def create_certs(spawner: Any) -> dict[str, str]:
        return await spawner.move_certs(await original(spawner))  # type: ignore[no-any-return]

    setattr(create_certs, _PATCHED, True)
    _ServiceSpawner.move_certs = move_certs
    _ServiceSpawner.create_certs = create_certs


# ---- workaround 2: waiting for an https service -------------------------------------------------------


def let_start_service_make_its_client_context() -> None:
    """Workaround 2: the hub waits for an https managed service with a client-side TLS context.

    JupyterHub 6.1's ``JupyterHub.start()`` (``jupyterhub/app.py``) builds the context of its own
    https *server* (``ssl.Purpose.CLIENT_AUTH``, protocol ``PROTOCOL_TLS_SERVER``) and passes it to
    ``start_service(name, service, ssl_context)``, which uses it to *connect* to each service while
    waiting for it: "Cannot create a client socket with a PROTOCOL_TLS_SERVER context", and the hub
    gives up on the service and exits. Given no context, ``start_service`` builds the right one
    itself (as ``check_services_health`` does). This drops a server-side context on the way in, and
    nothing else.

    It can go when ``JupyterHub.start()`` passes ``start_service`` a client context or none: then
    this wrapper sees no ``PROTOCOL_TLS_SERVER`` context and changes nothing.
    """
    from jupyterhub.app import JupyterHub  # type: ignore[import-untyped]

    original = JupyterHub.start_service
    if getattr(original, _PATCHED, False):
        return

    @functools.wraps(original)
    async def start_service(app: Any, service_name: str, service: Any, ssl_context: Any = None) -> Any:
        if isinstance(ssl_context, ssl.SSLContext) and ssl_context.protocol == ssl.PROTOCOL_TLS_SERVER:
            ssl_context = None
        return await original(app, service_name, service, ssl_context)

    setattr(start_service, _PATCHED, True)
    JupyterHub.start_service = start_service


def enable(places: Mapping[str, ServiceCerts]) -> None:
    """Both workarounds (``hub_config/team.py`` calls this when ``internal_ssl`` is on)."""
    give_services_their_certs(places)
    let_start_service_make_its_client_context()


# ---- the hub's own questions ---------------------------------------------------------------------------


def hub_client_context(settings: Mapping[str, Any]) -> ssl.SSLContext | None:
    """The hub's client side of internal TLS (its own certificate, its CA bundle); None when it is off.

    ``settings`` are the hub's (``spawner.user.settings``): the same files JupyterHub uses to reach
    users' servers. Services check the certificate, so the hub's questions to the API need it.
    """
    if not settings.get("internal_ssl"):
        return None
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=settings["internal_ssl_ca"])
    context.load_cert_chain(settings["internal_ssl_cert"], settings["internal_ssl_key"])
    return context


def server_context(environ: Mapping[str, str]) -> ssl.SSLContext | None:
    """A small https server's side of internal TLS, from what the hub gives its managed services
    (``JUPYTERHUB_SSL_KEYFILE``, ``..._CERTFILE``, ``..._CLIENT_CA``): only clients whose certificate
    the hub's authorities signed get in. None when the hub gave none (internal TLS off)."""
    key, cert = environ.get("JUPYTERHUB_SSL_KEYFILE"), environ.get("JUPYTERHUB_SSL_CERTFILE")
    if not key or not cert:
        return None
    ca = environ.get("JUPYTERHUB_SSL_CLIENT_CA")
    if not ca:  # without it, any certificate the system trusts would do
        raise ValueError("JUPYTERHUB_SSL_KEYFILE is set but not JUPYTERHUB_SSL_CLIENT_CA.")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=ca)
    context.load_cert_chain(cert, key)
    context.verify_mode = ssl.CERT_REQUIRED
    return context
