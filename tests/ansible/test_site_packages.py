"""site.yml installs every role's packages in base's one apt run and turns the roles' own
installs off (one package check on a converged host instead of five). That is only right
while the playbook's lists hold what each role would install itself: a package added to a
role's default and not to site.yml would never be installed."""

from __future__ import annotations

import yaml

from tests.ansible.test_roles import ANSIBLE_DIR


def _play() -> dict:
    return yaml.safe_load((ANSIBLE_DIR / "site.yml").read_text())[0]


def _defaults(role: str) -> dict:
    return yaml.safe_load((ANSIBLE_DIR / "roles" / role / "defaults" / "main.yml").read_text())


def test_the_playbook_installs_what_each_role_it_relieves_would_install():
    play = _play()
    handed_over = set(play["vars"]["__site_role_packages"]) | set(
        play["vars"]["__site_njs_packages"]
    )
    relieved = {
        name: (entry["role"], entry["vars"][name])
        for entry in play["roles"]
        for name in entry.get("vars", {})
        if name.endswith("_packages") and entry["role"] != "base"
    }
    assert relieved, "site.yml no longer relieves any role of its packages"
    for name, (role, value) in relieved.items():
        assert value == [], f"{role}: {name} is handed to base only when empty here"
        missing = set(_defaults(role)[name]) - handed_over
        assert not missing, f"{role}'s {name} default has {missing}, which site.yml never installs"


def test_every_role_package_list_is_relieved():
    """A role that gains a *_packages default is relieved by site.yml too (or checks twice)."""
    relieved = {
        name
        for entry in _play()["roles"]
        for name in entry.get("vars", {})
        if name.endswith("_packages")
    }
    for role in ("runtime", "nginx", "maintenance"):
        own = {name for name in _defaults(role) if name.endswith("_packages")}
        assert own <= relieved, f"{role}: {own - relieved} not handed to base by site.yml"
