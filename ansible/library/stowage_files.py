#!/usr/bin/python
"""Several files, each with its content, owner, group and mode, in one module run.

``ansible.builtin.template`` and ``copy`` take one file and, on a converged host, cost two
module runs each (a ``stat`` of the destination, then ``file`` for its attributes): the
re-run's templates were most of its round trips (docs/benchmarks.md, single host). The
content is rendered on the controller (``lookup('ansible.builtin.template', ...)``) and
compared here; a file whose bytes differ is replaced atomically (a temporary file in the
same directory, renamed over it), and owner, group and mode are set where they differ.
The contents travel as module arguments and come back in the diff: a file that holds a
secret gets a task of its own with ``no_log: true`` (the env file, the secure_link secret).
"""

from __future__ import annotations

import grp
import os
import pwd
import tempfile

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
"""

_FILE = {
    "dest": {"type": "path", "required": True},
    "content": {"type": "str", "required": True},
    "owner": {"type": "str", "required": True},
    "group": {"type": "str", "required": True},
    "mode": {"type": "str", "required": True},
}


def _current(module: AnsibleModule, dest: str) -> bytes | None:
    if os.path.lexists(dest) and not os.path.isfile(dest):
        module.fail_json(msg=f"{dest} exists and is not a regular file")
    if not os.path.isdir(os.path.dirname(dest)):
        module.fail_json(msg=f"{os.path.dirname(dest)}: no such directory for {dest}")
    try:
        with open(dest, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def _replace(module: AnsibleModule, item: dict, data: bytes) -> None:
    """The new file appears whole, with its final owner, group and mode, or not at all."""
    dest = item["dest"]
    try:
        uid, gid = pwd.getpwnam(item["owner"]).pw_uid, grp.getgrnam(item["group"]).gr_gid
        mode = int(item["mode"], 8)
    except (KeyError, ValueError) as exc:
        module.fail_json(msg=f"{dest}: owner, group or mode not usable ({exc})")
    fd, temporary = tempfile.mkstemp(dir=os.path.dirname(dest), prefix=".stowage-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            os.fchown(handle.fileno(), uid, gid)
            os.fchmod(handle.fileno(), mode)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, dest)
    except OSError as exc:
        module.fail_json(msg=f"{dest}: {exc.strerror}")
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def _diff(dest: str, before: bytes | None, after: bytes) -> dict:
    return {
        "before_header": dest,
        "after_header": dest,
        "before": "" if before is None else before.decode("utf-8", "replace"),
        "after": after.decode("utf-8"),
    }


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "files": {"type": "list", "elements": "dict", "required": True, "options": _FILE}
        },
        supports_check_mode=True,
    )
    changed_files, diffs = [], []
    for item in module.params["files"]:
        dest = item["dest"]
        data = item["content"].encode("utf-8")
        before = _current(module, dest)
        changed = before != data
        if changed:
            diffs.append(_diff(dest, before, data))
            if module.check_mode:
                changed_files.append(dest)
                continue
            _replace(module, item, data)
        attributes = module.load_file_common_arguments({**item, "path": dest})
        if module.set_fs_attributes_if_different(attributes, changed):
            changed_files.append(dest)
    module.exit_json(changed=bool(changed_files), changed_files=changed_files, diff=diffs)


if __name__ == "__main__":
    main()
