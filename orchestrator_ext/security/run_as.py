"""A command run as another system account, by root: the one way the platform drops to an account to
prepare something only that account may touch (the worker's database as the service's account, n8n's
databases as the embedded server's owner)."""

from __future__ import annotations

import pwd
import subprocess  # nosec B404 - our own commands, as another account, no shell
from collections.abc import Mapping, Sequence


def run_as(
    account: pwd.struct_passwd,
    command: Sequence[str],
    timeout: float,
    *,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``command`` as ``account``: its user and group only (none of root's other groups), in ``cwd`` (its
    home unless given), with ``env`` (else this process's), its output captured as text; its exit status is
    the caller's to judge. Raises :class:`subprocess.TimeoutExpired` past ``timeout`` seconds."""
    return subprocess.run(  # noqa: S603  # nosec B603 - our own command, as that account, no shell
        list(command),
        capture_output=True,
        text=True,
        check=False,
        user=account.pw_uid,
        group=account.pw_gid,
        extra_groups=[],
        cwd=account.pw_dir if cwd is None else cwd,
        env=None if env is None else dict(env),
        timeout=timeout,
    )
