"""run_as: a command as another system account, with that account's user and group only (root's other groups
dropped), in its home unless told, with the environment given; needs root, as its callers do."""

from __future__ import annotations

import os
import pwd
import subprocess

import pytest

from orchestrator_ext.security.run_as import run_as

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="runs a command as another account: needs root")


def test_a_command_runs_as_the_account_and_only_its_group() -> None:
    daemon = pwd.getpwnam("daemon")  # Debian's, its home /usr/sbin: one that exists
    environment = {"PATH": "/usr/bin:/bin", "MARK": "given"}
    done = run_as(daemon, ["sh", "-c", 'id -u; id -g; id -G; pwd; echo "$MARK"'], timeout=30, env=environment)
    assert done.returncode == 0, done.stderr
    uid, gid, groups, cwd, mark = done.stdout.splitlines()
    assert (int(uid), int(gid)) == (daemon.pw_uid, daemon.pw_gid)
    assert groups.split() == [str(daemon.pw_gid)]  # none of root's supplementary groups
    assert cwd == os.path.realpath(daemon.pw_dir)  # its home, not ours
    assert mark == "given"


def test_its_folder_its_failure_and_its_time_limit_are_the_callers() -> None:
    nobody = pwd.getpwnam("nobody")
    done = run_as(nobody, ["sh", "-c", "pwd; echo said >&2; exit 3"], timeout=30, cwd="/")
    assert (done.returncode, done.stdout.strip(), done.stderr.strip()) == (3, "/", "said")
    with pytest.raises(subprocess.TimeoutExpired):
        run_as(nobody, ["sleep", "5"], timeout=0.5, cwd="/")
