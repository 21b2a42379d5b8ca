"""library/stowage_files.py as a state machine: runs of the module between an operator's (or
an attacker's) changes to the files, on a real filesystem (a small tmpfs for one of them, so
a big content fills it; chattr +i for a file not even root may replace).

The promises are the invariants:
- a run that succeeds leaves every file a regular file with its content and mode;
- a run that fails leaves every destination exactly as it was (kind, inode, bytes, owner,
  mode) and says which file, and leaves no temporary or backup file;
- nothing is hidden from the handlers: what was last loaded (the content as of the last run
  whose handlers ran) differs from the files only while the next successful run reports a
  change. A half-written failed run broke this (its rewritten files matched on the next run,
  which reported no change and restarted nothing), and so did a run killed between its
  writes and its handlers, until the module recorded the restart owed (`pending`).

The module's main() runs in process, its parameters handed over as ansible-playbook hands
them, so that a run costs milliseconds instead of an ansible-playbook run.
"""

from __future__ import annotations

import contextlib
import grp
import importlib.util
import io
import json
import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ansible.module_utils import basic
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule

from tests.ansible.test_roles import ANSIBLE_DIR
from tests.helpers import tmpfs

pytestmark = pytest.mark.needs_root  # mounts a tmpfs, chattr +i

CONTENTS = ("a\n", "b\n", "c\n", "x" * 300_000)  # the last does not fit on the tmpfs
MODES = ("0644", "0600")
TAMPERED = "tampered\n"  # never a wanted content: a run must always repair it


def _load_module():
    spec = importlib.util.spec_from_file_location(
        "stowage_files_under_test", ANSIBLE_DIR / "library" / "stowage_files.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


MODULE = _load_module()


def run_module(files: list[dict], check_mode: bool = False, pending: str | None = None) -> dict:
    """The module's whole main(), with the parameters handed over as ansible-playbook hands
    them (AnsibleModule reads and validates them); the JSON result it prints."""
    arguments = {
        "ANSIBLE_MODULE_ARGS": {
            "files": files,
            "pending": pending,
            "_ansible_check_mode": check_mode,
        }
    }
    basic._ANSIBLE_ARGS = json.dumps(arguments).encode()
    basic._ANSIBLE_PROFILE = "legacy"
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            MODULE.main()
    except SystemExit:
        pass
    finally:
        basic._ANSIBLE_ARGS = basic._ANSIBLE_PROFILE = None
    result = json.loads(printed.getvalue())
    result.setdefault("changed", False)
    return result


def snapshot(path: Path) -> tuple | None:
    try:
        st_ = path.lstat()
    except FileNotFoundError:
        return None
    if path.is_symlink():
        body: object = os.readlink(path)
    elif path.is_dir():
        body = sorted(p.name for p in path.iterdir())
    else:
        body = path.read_bytes()
    return (st_.st_mode, st_.st_ino, st_.st_uid, st_.st_gid, body)


class FilesMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.root = Path(os.environ["STOWAGE_STATE_ROOT"])
        for child in self.root.iterdir():
            if child.name == "tiny":
                continue
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
        for child in (self.root / "tiny").iterdir():
            child.unlink() if not child.is_dir() else shutil.rmtree(child)
        (self.root / "etc").mkdir()
        self.paths = [self.root / "etc" / "one.conf", self.root / "etc" / "two.conf"]
        self.paths.append(self.root / "tiny" / "three.conf")
        self.marker = self.root / "owed" / "restart"  # the module's `pending`
        self.wanted = [("a\n", "0644")] * 3
        self.loaded: list[bytes | None] | None = None  # what the "service" last read
        self.immutable: set[int] = set()
        self.blocked: set[int] = set()

    def teardown(self) -> None:
        for index in self.immutable:
            subprocess.run(["chattr", "-i", str(self.paths[index])], check=True)

    def spec(self) -> list[dict]:
        user = pwd.getpwuid(os.getuid()).pw_name
        group = grp.getgrgid(os.getgid()).gr_name
        return [
            {"dest": str(p), "content": c, "owner": user, "group": group, "mode": m}
            for p, (c, m) in zip(self.paths, self.wanted, strict=True)
        ]

    def on_disk(self) -> list[bytes | None]:
        return [p.read_bytes() if p.is_file() and not p.is_symlink() else None for p in self.paths]

    @rule(
        index=st.integers(0, 2),
        content=st.sampled_from(CONTENTS),
        mode=st.sampled_from(MODES),
        check=st.sampled_from((False, False, False, True)),
    )
    def converge(self, index: int, content: str, mode: str, check: bool) -> None:
        """A run after a change to the role: one file wanted with another content or mode."""
        self.wanted[index] = (content, mode)
        self.run(check)

    @rule()
    def converge_again(self) -> None:
        """The operator's re-run."""
        self.run(check=False)

    @rule(index=st.integers(0, 2), content=st.sampled_from(CONTENTS))
    def converge_killed_before_its_handlers(self, index: int, content: str) -> None:
        """A run whose module finished but whose handlers never ran (the controller killed,
        or a handler failed): what it wrote is owed a restart."""
        self.wanted[index] = (content, self.wanted[index][1])
        self.run(check=False, handlers=False)

    def run(self, check: bool, handlers: bool = True) -> None:
        before = [snapshot(p) for p in [*self.paths, self.marker]]
        result = run_module(self.spec(), check_mode=check, pending=str(self.marker))
        leftovers = [
            p.name
            for d in (self.root / "etc", self.root / "tiny")
            for p in d.iterdir()
            if p.name.startswith(".stowage-")
        ]
        assert leftovers == []
        if check or result.get("failed"):
            assert [snapshot(p) for p in [*self.paths, self.marker]] == before, result
            assert not (result.get("failed") and result["changed"]), result
            if result.get("failed"):
                assert any(str(p) in result["msg"] for p in self.paths), result
                assert "Traceback" not in result["msg"]
            return
        for path, (content_, mode_) in zip(self.paths, self.wanted, strict=True):
            assert not path.is_symlink()
            assert path.read_bytes() == content_.encode()
            assert oct(path.stat().st_mode & 0o7777) == oct(int(mode_, 8))
        assert result["pending"] == self.marker.exists()
        if not handlers:
            return
        if result["changed"]:
            self.loaded = self.on_disk()  # the handler restarts what reads them,
            self.marker.unlink(missing_ok=True)  # then forgets the owed restart
        else:
            assert self.loaded == self.on_disk(), "a change hidden from the handlers"

    @rule(index=st.integers(0, 2))
    def tamper_content(self, index: int) -> None:
        path = self.paths[index]
        if index in self.immutable or index in self.blocked:
            return
        path.write_text(TAMPERED)

    @rule(index=st.integers(0, 2), mode=st.sampled_from((0o666, 0o600, 0o640)))
    def tamper_mode(self, index: int, mode: int) -> None:
        path = self.paths[index]
        if path.is_file() and not path.is_symlink() and index not in self.immutable:
            path.chmod(mode)

    @rule(index=st.integers(0, 1))
    def link_to_a_copy(self, index: int) -> None:
        """A symlink to a file of the same content (a foothold redirecting a config path)."""
        path = self.paths[index]
        if not path.is_file() or path.is_symlink() or index in self.immutable:
            return
        target = self.root / f"target-{index}"
        target.write_bytes(path.read_bytes())
        path.unlink()
        path.symlink_to(target)

    @rule(index=st.integers(0, 2))
    def block_with_a_directory(self, index: int) -> None:
        path = self.paths[index]
        if index in self.immutable or index in self.blocked:
            return
        if path.is_symlink() or path.exists():
            path.unlink()
        path.mkdir()
        self.blocked.add(index)

    @precondition(lambda self: self.blocked)
    @rule(data=st.data())
    def unblock(self, data) -> None:
        index = data.draw(st.sampled_from(sorted(self.blocked)))
        self.paths[index].rmdir()
        self.blocked.discard(index)

    @rule(index=st.integers(0, 1))
    def toggle_immutable(self, index: int) -> None:
        path = self.paths[index]
        if index in self.immutable:
            subprocess.run(["chattr", "-i", str(path)], check=True)
            self.immutable.discard(index)
        elif path.is_file() and not path.is_symlink():
            subprocess.run(["chattr", "+i", str(path)], check=True)
            self.immutable.add(index)


FilesMachine.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=30,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@pytest.fixture
def state_root(tmp_path, monkeypatch):
    with tmpfs(tmp_path / "tiny", "128k"):
        monkeypatch.setenv("STOWAGE_STATE_ROOT", str(tmp_path))
        yield tmp_path


def test_runs_between_changes_keep_their_promises(state_root):
    FilesMachine.TestCase("runTest").runTest()


def test_a_file_swapped_for_a_symlink_mid_run_is_never_followed(tmp_path, monkeypatch):
    """Review F4: one file needs rewriting, another only a new mode; while the run writes the
    first one's temporary file, the second is swapped for a symlink to a victim. chmod on
    the path would follow it; the module changes the file it planned for or nothing."""
    rewritten, moded, victim = tmp_path / "cron", tmp_path / "logrotate", tmp_path / "victim"
    rewritten.write_text("old\n")
    moded.write_text("same\n")
    moded.chmod(0o600)
    victim.write_text("secret\n")
    victim.chmod(0o600)
    write = MODULE._write_temporary

    def write_then_swap(plan) -> None:
        write(plan)
        moded.unlink()
        moded.symlink_to(victim)

    monkeypatch.setattr(MODULE, "_write_temporary", write_then_swap)
    user = pwd.getpwuid(os.getuid()).pw_name
    group = grp.getgrgid(os.getgid()).gr_name
    files = [
        {"dest": str(rewritten), "content": "new\n", "owner": user, "group": group, "mode": "0644"},
        {"dest": str(moded), "content": "same\n", "owner": user, "group": group, "mode": "0644"},
    ]
    result = run_module(files)
    assert result.get("failed"), result
    assert oct(victim.stat().st_mode & 0o7777) == "0o600"
    assert victim.read_text() == "secret\n"
    assert rewritten.read_text() == "old\n"  # put back
    assert str(moded) in result["msg"]
