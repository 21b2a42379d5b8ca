"""library/stowage_files.py, run by ansible-playbook against this machine (local
connection): several files in one module run, rewritten only when their bytes differ,
replaced whole, and refused with a message naming the file when they cannot be written."""

from __future__ import annotations

import grp
import json
import os
import pwd
import sys
from pathlib import Path

from tests.ansible.test_roles import ANSIBLE_DIR, ansible

PLAYBOOK = """\
- name: Write files as the roles do
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Write the files
      stowage_files:
        files: "{{ files }}"
      register: result
"""


def run(tmp: Path, files: list[dict], *options: str) -> tuple[int, dict]:
    playbook = tmp / "playbook.yml"
    playbook.write_text(PLAYBOOK)
    extra = {"files": files, "ansible_python_interpreter": sys.executable}
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
    outcome = json.loads(result.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
    return result.returncode, outcome


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
