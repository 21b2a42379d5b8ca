#!/usr/bin/python
"""Several directories, each with its owner, group and mode, in one module run.

``ansible.builtin.file`` takes one path, so a loop over N directories is N round trips to
the host on every run of the playbook; on a converged host those checks were the re-run's
slowest tasks (docs/benchmarks.md, single host). Each directory is created when missing
(parents as ``file`` creates them) and its owner, group and mode set when they differ.

A directory is reached component by component from ``/`` and changed through a descriptor,
never through its path: a symbolic link is followed only where nobody but root could have
made it (in a directory only root may write to), so a service user that replaces a media
prefix by a link cannot have root chown or chmod the link's target, not even in a race.
"""

from __future__ import annotations

import grp
import os
import pwd
import stat

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: stowage_directories
short_description: Ensure several directories with their owner, group and mode at once
description:
  - Creates each directory that is missing and sets owner, group and mode where they differ,
    in one module run (one round trip), with check and diff mode.
options:
  directories:
    description: The directories.
    type: list
    elements: dict
    required: true
    suboptions:
      path:
        description: Absolute path of the directory.
        type: path
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
        description: Mode as an octal string, such as "2770".
        type: str
        required: true
      remove_symlinks:
        description: Remove the symbolic links directly inside it (a log directory whose
          files root opens by name, planted there while another user could write to it).
        type: bool
        default: false
"""

EXAMPLES = r"""
- name: Create the media root and a prefix
  stowage_directories:
    directories:
      - {path: /srv/stowage, owner: root, group: stowage, mode: "2770"}
      - {path: /srv/stowage/images, owner: root, group: stowage, mode: "2770"}
"""

RETURN = r"""
created:
  description: The directories that did not exist.
  returned: always
  type: list
  elements: str
removed_links:
  description: The symbolic links removed (remove_symlinks).
  returned: always
  type: list
  elements: str
"""

_DIRECTORY = {
    "path": {"type": "path", "required": True},
    "owner": {"type": "str", "required": True},
    "group": {"type": "str", "required": True},
    "mode": {"type": "str", "required": True},
    "remove_symlinks": {"type": "bool", "default": False},
}

_DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY


class _Refused(Exception):
    pass


def _root_only(fd: int) -> bool:
    """Whether only root may add or rename entries in the directory ``fd``."""
    status = os.fstat(fd)
    group_writes = status.st_mode & stat.S_IWGRP and status.st_gid != 0
    return status.st_uid == 0 and not group_writes and not status.st_mode & stat.S_IWOTH


def _open(path: str, create: bool) -> tuple[int, bool]:
    """A descriptor of the directory ``path`` and whether it was created (with its missing
    parents); a link is followed only in a directory root alone may write to."""
    fd, created = os.open("/", _DIRECTORY_FLAGS), False
    parts = [part for part in path.split("/") if part]
    try:
        for index, name in enumerate(parts):
            here = "/" + "/".join(parts[: index + 1])
            try:
                status = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                if not create:
                    raise
                os.mkdir(name, dir_fd=fd)
                created, status = True, os.stat(name, dir_fd=fd, follow_symlinks=False)
            flags = _DIRECTORY_FLAGS | os.O_NOFOLLOW
            if stat.S_ISLNK(status.st_mode):
                if index == len(parts) - 1 or not _root_only(fd):
                    raise _Refused(f"{here} is a symbolic link; not followed, nothing changed")
                flags = _DIRECTORY_FLAGS
            elif not stat.S_ISDIR(status.st_mode):
                raise _Refused(f"{here} exists and is not a directory")
            inner = os.open(name, flags, dir_fd=fd)
            os.close(fd)
            fd = inner
        return fd, created
    except BaseException:
        os.close(fd)
        raise


def _ensure(directory: dict, check_mode: bool) -> tuple[bool, bool, list[str]]:
    """(changed, created, links removed) for one directory."""
    path, mode = directory["path"], int(directory["mode"], 8)
    try:
        uid = pwd.getpwnam(directory["owner"]).pw_uid
        gid = grp.getgrnam(directory["group"]).gr_gid
    except KeyError as exc:
        if not check_mode:  # a check run may precede the task that creates the user
            raise _Refused(f"{path}: owner or group not found ({exc})") from None
        uid = gid = -1
    try:
        fd, created = _open(path, create=not check_mode)
    except FileNotFoundError:
        return True, True, []  # check mode: it would be created
    try:
        now = os.fstat(fd)
        changed = created or (now.st_uid, now.st_gid, stat.S_IMODE(now.st_mode)) != (uid, gid, mode)
        if changed and not check_mode:
            os.fchown(fd, uid, gid)
            os.fchmod(fd, mode)
        links = []
        if directory["remove_symlinks"]:
            with os.scandir(fd) as entries:
                links = [entry.name for entry in entries if entry.is_symlink()]
            for name in links if not check_mode else ():
                os.unlink(name, dir_fd=fd)
        return changed or bool(links), created, [f"{path}/{name}" for name in links]
    finally:
        os.close(fd)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "directories": {
                "type": "list",
                "elements": "dict",
                "required": True,
                "options": _DIRECTORY,
            }
        },
        supports_check_mode=True,
    )
    changed, created, removed = False, [], []
    for directory in module.params["directories"]:
        try:
            one_changed, one_created, links = _ensure(directory, module.check_mode)
        except _Refused as exc:
            module.fail_json(msg=str(exc), changed=changed, created=created)
        except ValueError:
            module.fail_json(msg=f"{directory['path']}: mode {directory['mode']!r} is not octal")
        except OSError as exc:
            where = exc.filename or directory["path"]
            module.fail_json(msg=f"{where}: {exc.strerror}", changed=changed, created=created)
        changed = changed or one_changed
        created += [directory["path"]] if one_created else []
        removed += links
    module.exit_json(changed=changed, created=created, removed_links=removed)


if __name__ == "__main__":
    main()
