"""A worker's folder for its runs is its own: in personal mode the default base under the temporary
directory (``orchestrator-runs-<euid>``) may have been made first by another local account, or be a link
it planted; the worker then never puts its runs' folders (a fork server's socket among them) there, and
its sweep of dead workers' folders never follows a link."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from orchestrator_ext.engine.accounts import WORKER_FOLDER, RunAccountsError, sweep_orphans, worker_folder

NOBODY = 65534
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="another account's folder is made with chown, as root")


@pytest.fixture
def tmpdir_(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The temporary directory the default base goes in (as ``$TMPDIR`` would choose it)."""
    temp = tmp_path / "tmp"
    temp.mkdir(mode=0o1777)
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    return temp


def _default_base(temp: Path) -> Path:
    return temp / f"orchestrator-runs-{os.geteuid()}"


def _is_own_private(folder: Path) -> bool:
    info = folder.lstat()
    return not folder.is_symlink() and info.st_uid == os.geteuid() and info.st_mode & 0o077 == 0


@as_root
def test_a_default_base_another_account_made_first_is_not_used(tmpdir_: Path) -> None:
    planted = _default_base(tmpdir_)
    planted.mkdir(mode=0o777)
    os.chown(planted, NOBODY, NOBODY)
    folder = worker_folder(None, shared=False)
    assert planted not in folder.parents
    assert _is_own_private(folder.parent)
    assert _is_own_private(folder)
    assert list(planted.iterdir()) == []


def test_a_default_base_that_is_a_link_is_not_followed(tmpdir_: Path, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.mkdir()
    _default_base(tmpdir_).symlink_to(target)
    folder = worker_folder(None, shared=False)
    assert target not in folder.resolve().parents
    assert _is_own_private(folder.parent)
    assert list(target.iterdir()) == []


def test_a_configured_root_that_is_a_link_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.mkdir()
    (tmp_path / "runs").symlink_to(target)
    with pytest.raises(RunAccountsError, match="a link or another account's folder"):
        worker_folder(tmp_path / "runs", shared=False)


def test_the_sweep_of_dead_workers_folders_follows_no_link(tmp_path: Path) -> None:
    base = tmp_path / "runs"
    base.mkdir(mode=0o700)
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious").write_text("kept")
    (base / f"{WORKER_FOLDER}999999999-1").symlink_to(victim)  # no such process: looks like a dead worker's
    dead = base / f"{WORKER_FOLDER}999999998-1"
    dead.mkdir()
    assert sweep_orphans(base) == [dead]
    assert (victim / "precious").read_text() == "kept"
