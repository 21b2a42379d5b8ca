"""library/stowage_files.py, run by ansible-playbook against this machine (local
connection): several files in one module run, rewritten only when their bytes differ,
replaced whole, and refused with a message naming the file when they cannot be written.

A failed task notifies no handler, so the task is all or nothing: when one file of it
cannot be written, none is changed, and the next run (which can) changes them all and
notifies. The attacks: a destination that is a directory, a full disk, an immutable file
part-way through the renames, a destination that is a symbolic link."""

from __future__ import annotations

import grp
import json
import os
import pwd
import sys
from pathlib import Path

import pytest

from tests.ansible.test_roles import ANSIBLE_DIR, ansible
from tests.helpers import file_attribute, tmpfs

PLAYBOOK = """\
- name: Write files as the roles do
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Write the files
      stowage_files:
        files: "{{ files }}"
      notify: Restart what reads them
  handlers:
    - name: Restart what reads them
      ansible.builtin.file:
        path: "{{ marker }}"
        state: touch
        mode: "0600"
"""


def play(playbook: Path, text: str, extra: dict, *options: str) -> tuple[int, list[dict]]:
    """ansible-playbook of ``text`` against this machine with the library; its return code
    and the tasks it ran (handlers too)."""
    playbook.write_text(text)
    extra = {**extra, "ansible_python_interpreter": sys.executable}
    result = ansible(
        "ansible-playbook",
        "-i",
        "localhost,",
        str(playbook),
        "-e",
        json.dumps(extra),
        *options,
        ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
        ANSIBLE_LIBRARY=str(ANSIBLE_DIR / "library"),
    )
    return result.returncode, json.loads(result.stdout)["plays"][0]["tasks"]


def run(tmp: Path, files: list[dict], *options: str) -> tuple[int, dict]:
    marker = tmp / "handler-ran"
    extra = {"files": files, "marker": str(marker)}
    code, tasks = play(tmp / "playbook.yml", PLAYBOOK, extra, *options)
    outcome = tasks[0]["hosts"]["localhost"]
    outcome["handler_ran"] = marker.exists()
    marker.unlink(missing_ok=True)
    return code, outcome


def spec(path: Path, content: str, mode: str = "0644") -> dict:
    return {
        "dest": str(path),
        "content": content,
        "owner": pwd.getpwuid(os.getuid()).pw_name,
        "group": grp.getgrgid(os.getgid()).gr_name,
        "mode": mode,
    }


def test_files_are_written_once_and_only_a_changed_one_again(tmp_path):
    a, b = tmp_path / "a.conf", tmp_path / "b.conf"
    files = [spec(a, "one\n", "0640"), spec(b, "two\n")]
    code, first = run(tmp_path, files)
    assert code == 0
    assert first["changed"]
    assert first["changed_files"] == [str(a), str(b)]
    assert a.read_text() == "one\n"
    assert oct(a.stat().st_mode & 0o777) == "0o640"
    inode_b = b.stat().st_ino

    code, again = run(tmp_path, files)
    assert code == 0
    assert not again["changed"]
    assert again["changed_files"] == []

    files[0]["content"] = "one, changed\n"
    code, changed = run(tmp_path, files)
    assert changed["changed_files"] == [str(a)]
    assert a.read_text() == "one, changed\n"
    assert b.stat().st_ino == inode_b  # the unchanged file was not rewritten


def test_a_wrong_mode_is_set_without_rewriting_the_file(tmp_path):
    a = tmp_path / "a.conf"
    run(tmp_path, [spec(a, "x\n", "0600")])
    a.chmod(0o666)
    inode = a.stat().st_ino
    code, result = run(tmp_path, [spec(a, "x\n", "0600")])
    assert code == 0
    assert result["changed_files"] == [str(a)]
    assert oct(a.stat().st_mode & 0o777) == "0o600"
    assert a.stat().st_ino == inode


def test_check_mode_shows_the_diff_and_writes_nothing(tmp_path):
    a = tmp_path / "a.conf"
    a.write_text("old\n")
    code, result = run(tmp_path, [spec(a, "new\n")], "--check", "--diff")
    assert code == 0
    assert result["changed_files"] == [str(a)]
    assert result["diff"] == [
        {"before_header": str(a), "after_header": str(a), "before": "old\n", "after": "new\n"}
    ]
    assert a.read_text() == "old\n"


def test_a_file_that_cannot_be_written_is_named_and_the_old_one_kept(tmp_path):
    a = tmp_path / "a.conf"
    a.write_text("old\n")
    unusable = {**spec(a, "new\n"), "owner": "no-such-user-stowage"}
    code, result = run(tmp_path, [unusable])
    assert code == 2
    assert result["failed"]
    assert str(a) in result["msg"]
    assert "Traceback" not in result["msg"]
    assert a.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.conf", "playbook.yml"]

    code, result = run(tmp_path, [spec(tmp_path / "missing/b.conf", "x\n")])
    assert code == 2
    assert "no such directory" in result["msg"]

    code, result = run(tmp_path, [spec(tmp_path, "x\n")])
    assert code == 2
    assert "not a regular file" in result["msg"]


def state(*paths: Path) -> list[tuple]:
    """What a reader of each file sees: kind, inode, bytes, owner, group and mode."""
    seen = []
    for path in paths:
        st = path.lstat()
        body = os.readlink(path) if path.is_symlink() else path.read_bytes()
        seen.append((str(path), st.st_mode, st.st_ino, st.st_uid, st.st_gid, body))
    return seen


def leftovers(*directories: Path) -> list[str]:
    return [p.name for d in directories for p in d.iterdir() if p.name.startswith(".stowage-")]


def test_a_destination_that_is_a_directory_stops_the_task_before_any_file_changes(tmp_path):
    a, blocked = tmp_path / "a.conf", tmp_path / "b.conf"
    a.write_text("old\n")
    blocked.mkdir()
    before = state(a)
    files = [spec(a, "new\n"), spec(blocked, "b\n")]
    code, result = run(tmp_path, files)
    assert code == 2
    assert state(a) == before
    assert not result["changed"]
    assert str(blocked) in result["msg"]
    assert "no file was changed" in result["msg"]

    blocked.rmdir()  # the operator mends it; the next run changes both and notifies
    code, result = run(tmp_path, files)
    assert code == 0
    assert result["changed_files"] == [str(a), str(blocked)]
    assert result["handler_ran"]


@pytest.fixture
def tiny_disk(tmp_path):
    with tmpfs(tmp_path / "tiny", "64k") as root:
        yield root


@pytest.mark.needs_root  # mounts a tmpfs
def test_a_full_disk_part_way_changes_no_file(tmp_path, tiny_disk):
    a, b = tmp_path / "a.conf", tiny_disk / "b.conf"
    a.write_text("old\n")
    before = state(a)
    code, result = run(tmp_path, [spec(a, "new\n"), spec(b, "x" * 96 * 1024)])
    assert code == 2
    assert str(b) in result["msg"]
    assert "no space left" in result["msg"].lower()
    assert not result["changed"]
    assert state(a) == before
    assert not b.exists()
    assert leftovers(tmp_path, tiny_disk) == []


@pytest.fixture
def immutable(tmp_path):
    """A file that not even root may replace (chattr +i)."""
    path = tmp_path / "immutable.conf"
    path.write_text("fixed\n")
    with file_attribute(path, "i"):
        yield path


@pytest.mark.needs_root  # chattr +i
def test_a_rename_that_fails_part_way_puts_back_the_files_before_it(tmp_path, immutable):
    new, replaced, moded = tmp_path / "new.conf", tmp_path / "a.conf", tmp_path / "m.conf"
    replaced.write_text("old\n")
    moded.write_text("same\n")
    moded.chmod(0o666)
    before = state(replaced, moded)
    files = [
        spec(new, "created\n"),
        spec(replaced, "new\n"),
        spec(moded, "same\n", "0600"),
        spec(immutable, "changed\n"),
    ]
    code, result = run(tmp_path, files)
    assert code == 2
    assert state(replaced, moded) == before  # the very same inodes, bytes and modes
    assert not new.exists()
    assert not result["changed"]
    assert str(immutable) in result["msg"]
    assert "no file was changed" in result["msg"]
    for path in (new, replaced, moded):
        assert str(path) in result["msg"]  # named as put back
    assert immutable.read_text() == "fixed\n"
    assert leftovers(tmp_path) == []


def test_a_destination_that_is_a_symbolic_link_is_replaced_never_followed(tmp_path):
    target, link = tmp_path / "target", tmp_path / "link.conf"
    target.write_text("same\n")
    target.chmod(0o644)
    link.symlink_to(target)
    before = state(target)

    code, preview = run(tmp_path, [spec(link, "same\n", "0600")], "--check", "--diff")
    assert preview["changed_files"] == [str(link)]
    assert "symbolic link" in preview["diff"][0]["before_header"]
    assert link.is_symlink()

    code, result = run(tmp_path, [spec(link, "same\n", "0600")])
    assert code == 0
    assert result["changed_files"] == [str(link)]
    assert not link.is_symlink()
    assert oct(link.stat().st_mode & 0o777) == "0o600"
    assert state(target) == before  # the link's target kept its bytes and its mode

    code, again = run(tmp_path, [spec(link, "same\n", "0600")])
    assert not again["changed"]


def test_what_a_killed_run_left_is_removed_by_the_next(tmp_path):
    a = tmp_path / "a.conf"
    left = [tmp_path / ".stowage-k1_x9abc", tmp_path / ".stowage-k1_x9abc.old"]
    for path in left:
        path.write_text("an old or half-written copy\n")
    mine = tmp_path / ".stowage-notes.txt"  # not a name the module makes
    mine.write_text("kept\n")

    code, preview = run(tmp_path, [spec(a, "x\n")], "--check")
    assert sorted(preview["removed_debris"]) == sorted(map(str, left))
    assert all(path.exists() for path in left)

    code, result = run(tmp_path, [spec(a, "x\n")])
    assert code == 0
    assert sorted(result["removed_debris"]) == sorted(map(str, left))
    assert not any(path.exists() for path in left)
    assert mine.read_text() == "kept\n"
    code, again = run(tmp_path, [spec(a, "x\n")])
    assert not again["changed"]


OWED = """\
- name: Write a file whose reader must restart
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Write the file
      stowage_files:
        pending: "{{ marker }}"
        files: "{{ files }}"
      notify: Restart the reader
  handlers:
    - name: Restart the reader  # fails until the operator mends what broke it
      ansible.builtin.command: test -e {{ mended }}
      changed_when: true
    - name: Forget the owed restart
      ansible.builtin.file:
        path: "{{ marker }}"
        state: absent
      listen: Restart the reader
"""


def test_a_restart_that_failed_is_owed_until_one_succeeds(tmp_path):
    """Review F1/F2: a handler that failed (or a run killed before its handlers) after the
    files were written; the next run finds the files matching and must still restart."""
    playbook, marker, mended = tmp_path / "owed.yml", tmp_path / "owed" / "marker", tmp_path / "ok"
    conf = tmp_path / "reader.conf"

    def converge() -> tuple[int, list]:
        extra = {"files": [spec(conf, "new\n")], "marker": str(marker), "mended": str(mended)}
        return play(playbook, OWED, extra)

    code, tasks = converge()
    assert code == 2  # the restart failed
    assert conf.read_text() == "new\n"
    assert marker.exists()

    code, tasks = converge()  # not mended yet: still owed, still tried
    assert code == 2
    assert tasks[0]["hosts"]["localhost"]["changed"]
    assert tasks[0]["hosts"]["localhost"]["changed_files"] == []
    assert marker.exists()

    mended.touch()
    code, tasks = converge()
    assert code == 0
    assert [t["task"]["name"] for t in tasks] == [
        "Write the file",
        "Restart the reader",
        "Forget the owed restart",
    ]
    assert not marker.exists()

    code, tasks = converge()
    assert code == 0
    assert not tasks[0]["hosts"]["localhost"]["changed"]
    assert [t["task"]["name"] for t in tasks] == ["Write the file"]


def test_a_directory_that_is_a_symbolic_link_is_not_followed(tmp_path):
    """Review F3: /etc/nginx/njs planted as a symlink to a directory of the attacker's
    choice; the file is not written there, and nothing else is written either."""
    victim, linked = tmp_path / "victim", tmp_path / "njs"
    victim.mkdir()
    linked.symlink_to(victim)
    a = tmp_path / "a.conf"
    code, result = run(tmp_path, [spec(a, "x\n"), spec(linked / "stowage_img.js", "js\n")])
    assert code == 2
    assert "symbolic link" in result["msg"]
    assert list(victim.iterdir()) == []
    assert not a.exists()


@pytest.fixture
def append_only(tmp_path):
    directory = tmp_path / "append-only"
    directory.mkdir()
    (directory / "a.conf").write_text("old\n")
    with file_attribute(directory, "a"):
        yield directory


@pytest.mark.needs_root  # chattr +a
def test_a_directory_that_allows_no_rename_is_a_clear_error(tmp_path, append_only):
    """Review F7: in a chattr +a directory the rename fails and so does the removal of the
    temporary file; the message names the destination and what was left, no traceback."""
    a = append_only / "a.conf"
    code, result = run(tmp_path, [spec(a, "new\n")])
    assert code == 2
    assert result["msg"].startswith(f"{a}: Operation not permitted; no file was changed")
    assert "could not remove" in result["msg"]
    assert "Traceback" not in result.get("module_stderr", "")
    assert a.read_text() == "old\n"


DIRECTORIES = """\
- name: Create directories as the roles do
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Create the directories
      stowage_directories:
        directories: "{{ directories }}"
"""


def test_a_directory_replaced_by_a_symbolic_link_is_refused_and_its_target_untouched(tmp_path):
    """Review F6: the service user swaps a media prefix (a directory it may rename in the
    2770 root) for a symlink to a directory of root's; owner and mode must not land there."""
    playbook, victim, prefix = tmp_path / "dirs.yml", tmp_path / "etc-stowage", tmp_path / "videos"
    victim.mkdir(mode=0o750)
    victim.chmod(0o750)
    prefix.symlink_to(victim)
    user = pwd.getpwuid(os.getuid()).pw_name
    group = grp.getgrgid(os.getgid()).gr_name
    directories = [{"path": str(prefix), "owner": user, "group": group, "mode": "2770"}]
    code, tasks = play(playbook, DIRECTORIES, {"directories": directories})
    outcome = tasks[0]["hosts"]["localhost"]
    assert code == 2
    assert f"{prefix} is a symbolic link" in outcome["msg"]
    assert oct(victim.stat().st_mode & 0o7777) == "0o750"


def directories_play(tmp_path: Path, *directories: dict) -> dict:
    user = pwd.getpwuid(os.getuid()).pw_name
    group = grp.getgrgid(os.getgid()).gr_name
    wanted = [{"owner": user, "group": group, "mode": "0750", **d} for d in directories]
    code, tasks = play(tmp_path / "dirs.yml", DIRECTORIES, {"directories": wanted})
    return {"code": code, **tasks[0]["hosts"]["localhost"]}


@pytest.mark.needs_root  # a directory of another group
def test_a_link_is_followed_only_where_nobody_but_root_could_have_made_it(tmp_path):
    """Review 2 (race): stowage_directories walks the path from / and changes the directory
    through a descriptor, so a media prefix swapped for a link, even between a check and
    the chmod, never hands root's chmod to the link's target. A link in a directory only
    root may write to (an operator's /srv -> /data) is followed."""
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "by-root").symlink_to(real)
    result = directories_play(tmp_path, {"path": str(tmp_path / "by-root" / "media")})
    assert result["code"] == 0, result
    assert (real / "media").is_dir()

    shared = tmp_path / "shared"  # a storage root the service group may write to
    shared.mkdir()
    os.chown(shared, 0, grp.getgrnam("nogroup").gr_gid)
    shared.chmod(0o2775)
    victim = tmp_path / "victim"
    victim.mkdir(mode=0o700)
    (shared / "planted").symlink_to(victim)
    result = directories_play(tmp_path, {"path": str(shared / "planted" / "sub")})
    assert result["code"] == 2
    assert f"{shared / 'planted'} is a symbolic link" in result["msg"]
    assert list(victim.iterdir()) == []


def test_the_symlinks_planted_in_a_log_directory_are_removed(tmp_path):
    """Review 2 (upgrade): links the service user planted in /var/log/stowage while it was
    theirs; the directory becomes root's and the links go, their targets untouched."""
    logs, target = tmp_path / "logs", tmp_path / "cron-d-file"
    logs.mkdir()
    (logs / "stowage.log").write_text("kept\n")
    target.write_text("root's\n")
    (logs / "disk-check.log").symlink_to(target)
    result = directories_play(tmp_path, {"path": str(logs), "remove_symlinks": True})
    assert result["code"] == 0, result
    assert result["removed_links"] == [str(logs / "disk-check.log")]
    assert sorted(p.name for p in logs.iterdir()) == ["stowage.log"]
    assert target.read_text() == "root's\n"
    again = directories_play(tmp_path, {"path": str(logs), "remove_symlinks": True})
    assert not again["changed"]


@pytest.mark.needs_root  # chown to another user
def test_a_file_handed_to_a_new_owner_is_a_new_file(tmp_path):
    """Review 4 F1: an env file the service user owned (before an upgrade) and holds open
    for appending; re-owned in place, its descriptor would keep writing to root's file."""
    env = tmp_path / "stowage.env"
    env.write_text("KEY=value\n")
    os.chown(env, pwd.getpwnam("nobody").pw_uid, grp.getgrnam("nogroup").gr_gid)
    with open(env, "a") as held:
        code, result = run(tmp_path, [spec(env, "KEY=value\n", "0640")])
        assert code == 0
        assert result["changed_files"] == [str(env)]
        held.write("PLANTED=1\n")
    assert env.read_text() == "KEY=value\n"
    assert env.stat().st_uid == os.getuid()
