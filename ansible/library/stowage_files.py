#!/usr/bin/python
"""Several files, each with its content, owner, group and mode, in one module run.

``ansible.builtin.template`` and ``copy`` take one file and, on a converged host, cost two
module runs each (a ``stat`` of the destination, then ``file`` for its attributes): the
re-run's templates were most of its round trips (docs/benchmarks.md, single host). The
content is rendered on the controller (``lookup('ansible.builtin.template', ...)``) and
compared here; a file whose bytes differ is replaced atomically (a temporary file in the
same directory, renamed over it), and owner, group and mode are set where they differ.

The task is all or nothing, because a failed task notifies no handler: had it left some
files rewritten, the next run would find them matching and never restart what reads them.
So every destination is checked before anything is written, every new content is written
to its temporary file before any is renamed, and a rename or attribute change that fails
part-way puts back the ones made before it (the old file is kept as a hard link until the
end). A destination that is a symbolic link is replaced by a regular file, never followed.
The contents travel as module arguments and come back in the diff: a file that holds a
secret gets a task of its own with ``no_log: true`` (the env file, the secure_link secret).
"""

from __future__ import annotations

import errno
import grp
import os
import pwd
import re
import stat
import tempfile
from dataclasses import dataclass

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: stowage_files
short_description: Ensure several files with their content, owner, group and mode at once
description:
  - Writes each file whose content differs (atomically) and sets owner, group and mode
    where they differ, in one module run (one round trip), with check and diff mode.
  - The contents travel as module arguments and appear in the diff; give a file that holds
    a secret a task of its own with no_log.
options:
  pending:
    description:
      - A marker file on the host that records a restart or reload still owed for these
        files. It is written before the first file is replaced, and the handler that
        restarts removes it once it has succeeded; while it exists, the task reports a
        change. A run killed between a write and its handler, or a failed handler, is
        then made good by the next run, which finds the files already matching.
    type: path
  also_pending:
    description: Record the restart as owed even if no file changes (an earlier task of
      the role changed what the handler applies).
    type: bool
    default: false
  files:
    description: The files.
    type: list
    elements: dict
    required: true
    suboptions:
      dest:
        description: Absolute path of the file; its directory must exist.
        type: path
        required: true
      content:
        description: The whole content, as text (written as UTF-8).
        type: str
        required: true
      owner:
        description: Owning user.
        type: str
        required: true
      group:
        description: Owning group.
        type: str
        required: true
      mode:
        description: Mode as an octal string, such as "0644".
        type: str
        required: true
"""

EXAMPLES = r"""
- name: Schedule the jobs and rotate their logs
  stowage_files:
    files:
      - dest: /etc/cron.d/stowage
        content: "{{ lookup('ansible.builtin.template', 'etc/cron.d/stowage.j2') }}"
        owner: root
        group: root
        mode: "0644"
"""

RETURN = r"""
changed_files:
  description: The files whose content, owner, group or mode changed (or would, in check mode).
  returned: always
  type: list
  elements: str
pending:
  description: Whether a restart or reload is owed (the marker exists after this run).
  returned: always
  type: bool
removed_debris:
  description: Temporary or backup files of a killed earlier run, removed (or that would be).
  returned: always
  type: list
  elements: str
"""

_FILE = {
    "dest": {"type": "path", "required": True},
    "content": {"type": "str", "required": True},
    "owner": {"type": "str", "required": True},
    "group": {"type": "str", "required": True},
    "mode": {"type": "str", "required": True},
}


# tempfile.mkstemp's names with this prefix, and the backups made of them ("….old").
_DEBRIS = re.compile(r"\.stowage-[a-z0-9_]{8}(\.old)?")


class _Failed(Exception):
    """A destination refused before anything was written."""


@dataclass
class _Plan:
    dest: str
    data: bytes
    wanted: tuple[int | None, int | None, int]  # uid, gid, mode; None: unknown yet (check mode)
    exists: bool
    link: str | None  # the target, when the destination is a symbolic link
    old: bytes | None  # the content, when the destination is a regular file
    current: tuple[int, int, int] | None  # and its uid, gid, mode
    inode: tuple[int, int] | None = None  # and its device and inode
    temporary: str | None = None
    backup: str | None = None

    @property
    def rewrite(self) -> bool:
        """A new file when the bytes differ, and when the owner or group does: a file
        handed from one owner to another is written afresh, so that a descriptor the old
        owner still holds open writes to the old inode, never to the new owner's file."""
        if self.old is None or self.old != self.data:
            return True
        return self.current is not None and self.current[:2] != self.wanted[:2]

    @property
    def reattribute(self) -> bool:
        return not self.rewrite and self.current != self.wanted


def _plan(item: dict, check_mode: bool) -> _Plan:
    dest = item["dest"]
    if os.path.islink(os.path.dirname(dest)):
        raise _Failed(f"{os.path.dirname(dest)} is a symbolic link; not followed")
    if not os.path.isdir(os.path.dirname(dest)):
        raise _Failed(f"{os.path.dirname(dest)}: no such directory for {dest}")
    try:
        mode = int(item["mode"], 8)
    except ValueError:
        raise _Failed(f"{dest}: mode {item['mode']!r} is not an octal number") from None
    if not 0 <= mode <= 0o7777:
        raise _Failed(f"{dest}: mode {item['mode']!r} is out of range")
    try:
        uid: int | None = pwd.getpwnam(item["owner"]).pw_uid
        gid: int | None = grp.getgrnam(item["group"]).gr_gid
    except KeyError as exc:
        if not check_mode:  # a check run may precede the task that creates the user
            raise _Failed(f"{dest}: owner or group not found ({exc})") from None
        uid = gid = None
    try:
        before: os.stat_result | None = os.lstat(dest)
    except FileNotFoundError:
        before = None
    data, wanted = item["content"].encode("utf-8"), (uid, gid, mode)
    if before is None:
        return _Plan(dest, data, wanted, False, None, None, None)
    if stat.S_ISLNK(before.st_mode):
        return _Plan(dest, data, wanted, True, os.readlink(dest), None, None)
    if not stat.S_ISREG(before.st_mode):
        raise _Failed(f"{dest} exists and is not a regular file")
    with os.fdopen(os.open(dest, os.O_RDONLY | os.O_NOFOLLOW), "rb") as handle:
        old = handle.read()
    return _Plan(
        dest, data, wanted, True, None, old, _attributes(before), (before.st_dev, before.st_ino)
    )


def _write_temporary(plan: _Plan) -> None:
    """The new content on disk, with its final owner and mode, beside the destination."""
    uid, gid, mode = plan.wanted
    fd, plan.temporary = tempfile.mkstemp(dir=os.path.dirname(plan.dest), prefix=".stowage-")
    with os.fdopen(fd, "wb") as handle:
        handle.write(plan.data)
        os.fchown(handle.fileno(), uid, gid)
        os.fchmod(handle.fileno(), mode)
        handle.flush()
        os.fsync(handle.fileno())


def _commit(plan: _Plan) -> None:
    if plan.rewrite:
        if plan.exists:
            plan.backup = f"{plan.temporary}.old"
            os.link(plan.dest, plan.backup, follow_symlinks=False)
        os.replace(plan.temporary, plan.dest)
    else:
        _set_attributes(plan, plan.wanted)


def _undo(plan: _Plan) -> None:
    if plan.rewrite and plan.backup is not None:
        os.replace(plan.backup, plan.dest)
    elif plan.rewrite:
        os.unlink(plan.dest)
    elif plan.current is not None and _attributes(os.lstat(plan.dest)) != plan.current:
        _set_attributes(plan, plan.current)


def _set_attributes(plan: _Plan, attributes: tuple) -> None:
    """On the very file planned for, never through a link or a file swapped in since."""
    fd = os.open(plan.dest, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        now = os.fstat(fd)
        if (now.st_dev, now.st_ino) != plan.inode:
            raise OSError(errno.ESTALE, "replaced by another file during the run", plan.dest)
        uid, gid, mode = attributes
        os.fchown(fd, uid, gid)
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


def _attributes(status: os.stat_result) -> tuple[int, int, int]:
    return status.st_uid, status.st_gid, stat.S_IMODE(status.st_mode)


def _discard(plans: list[_Plan]) -> str:
    """Removes this run's temporary and backup files; names those it could not (a
    directory that allows no removal, chattr +a)."""
    left = []
    for path in [p.temporary for p in plans] + [p.backup for p in plans]:
        if path is not None and os.path.lexists(path):
            try:
                os.unlink(path)
            except OSError:
                left.append(path)
    return f" (could not remove {', '.join(left)})" if left else ""


def _apply(module: AnsibleModule, plans: list[_Plan], pending: str | None) -> None:
    """Write every new content first, then record the restart owed, then rename them all;
    a failure changes nothing."""
    try:
        for plan in plans:
            if plan.rewrite:
                _write_temporary(plan)
    except OSError as exc:
        module.fail_json(msg=f"{plan.dest}: {exc.strerror}; no file was changed{_discard(plans)}")
    marked = pending is not None and not os.path.lexists(pending)
    if marked:
        try:
            _mark(pending)
        except OSError as exc:
            where = exc.filename or pending  # the directory, when it is what is wrong
            module.fail_json(msg=f"{where}: {exc.strerror}; no file was changed{_discard(plans)}")
    done: list[_Plan] = []
    try:
        for plan in plans:
            _commit(plan)
            done.append(plan)
    except OSError as exc:
        _put_back(module, plans, (done, plan, exc), pending, marked)
    left = _discard(plans)
    if left:
        module.warn(f"every file was written{left}")


def _put_back(module, plans: list[_Plan], failure: tuple, pending: str | None, marked: bool):
    """Undo the renames and attribute changes made before ``failure`` (done, the plan that
    failed, its error), in reverse, and fail saying what is as it was."""
    done, failed, exc = failure
    kept = []
    # An attribute change may have made its chown before its chmod failed.
    for undone in reversed(done + ([] if failed.rewrite else [failed])):
        try:
            _undo(undone)
        except OSError:
            kept.append(undone.dest)
    left = _discard(plans)
    if kept:
        module.fail_json(
            msg=f"{failed.dest}: {exc.strerror}; these were changed and could not be put back"
            + (" (their restart is owed to the next run)" if pending else "")
            + f": {', '.join(kept)}{left}",
            changed=True,
            changed_files=kept,
        )
    if marked:
        os.unlink(pending)
    back = f" (put back: {', '.join(p.dest for p in done)})" if done else ""
    module.fail_json(msg=f"{failed.dest}: {exc.strerror}; no file was changed{back}{left}")


def _mark(path: str) -> None:
    """The marker, durable before any file it stands for is replaced."""
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    fsync_dir = os.open(os.path.dirname(path), os.O_RDONLY)
    try:
        os.fsync(fsync_dir)
    finally:
        os.close(fsync_dir)


def _diff(plan: _Plan) -> dict:
    before = "" if plan.old is None else plan.old.decode("utf-8", "replace")
    header = plan.dest if plan.link is None else f"{plan.dest} (a symbolic link to {plan.link})"
    return {
        "before_header": header,
        "after_header": plan.dest,
        "before": before,
        "after": plan.data.decode("utf-8"),
    }


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "files": {"type": "list", "elements": "dict", "required": True, "options": _FILE},
            "pending": {"type": "path"},
            "also_pending": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    try:
        plans = [_plan(item, module.check_mode) for item in module.params["files"]]
    except _Failed as exc:
        module.fail_json(msg=f"{exc}; no file was changed")
    except OSError as exc:
        module.fail_json(msg=f"{exc.filename}: {exc.strerror}; no file was changed")
    changes = [p for p in plans if p.rewrite or p.reattribute]
    debris = _debris({os.path.dirname(p.dest) for p in plans})
    pending = module.params["pending"]
    owes = bool(changes) or module.params["also_pending"]
    owed = pending is not None and (owes or os.path.lexists(pending))
    if not module.check_mode:
        try:
            for path in debris:
                os.unlink(path)
        except OSError as exc:
            module.fail_json(msg=f"{exc.filename} (left by a killed run): {exc.strerror}")
        _apply(module, changes, pending if owes else None)
    module.exit_json(
        changed=bool(changes or debris or owed),
        changed_files=[p.dest for p in changes],
        pending=owed,
        removed_debris=debris,
        diff=[_diff(p) for p in changes if p.rewrite],
    )


def _debris(directories: set[str]) -> list[str]:
    """Temporary and backup files a killed run left beside its destinations: a reader that
    takes every file of its directory would read an old or half-written copy of a config."""
    found = []
    for directory in sorted(directories):
        with os.scandir(directory) as entries:
            found += [
                e.path
                for e in entries
                if _DEBRIS.fullmatch(e.name) and not e.is_dir(follow_symlinks=False)
            ]
    return sorted(found)


if __name__ == "__main__":
    main()
