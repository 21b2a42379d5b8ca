#!/usr/bin/python
"""Several directories, each with its owner, group and mode, in one module run.

``ansible.builtin.file`` takes one path, so a loop over N directories is N round trips to
the host on every run of the playbook; on a converged host those checks were the re-run's
slowest tasks (docs/benchmarks.md, single host). Each directory is created when missing
(parents as ``file`` creates them) and its owner, group and mode set when they differ.
"""

from __future__ import annotations

import os

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
"""

_DIRECTORY = {
    "path": {"type": "path", "required": True},
    "owner": {"type": "str", "required": True},
    "group": {"type": "str", "required": True},
    "mode": {"type": "str", "required": True},
}


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
    changed, created = False, []
    for directory in module.params["directories"]:
        path = directory["path"]
        if os.path.islink(path):  # owner and mode would land on whatever it points to
            module.fail_json(msg=f"{path} is a symbolic link; not followed, nothing changed")
        if os.path.lexists(path) and not os.path.isdir(path):
            module.fail_json(msg=f"{path} exists and is not a directory")
        if not os.path.isdir(path):
            created.append(path)
            changed = True
            if module.check_mode:
                continue
            os.makedirs(path)
        attributes = module.load_file_common_arguments({**directory, "path": path})
        changed = module.set_fs_attributes_if_different(attributes, changed)
    module.exit_json(changed=changed, created=created)


if __name__ == "__main__":
    main()
