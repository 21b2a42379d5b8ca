"""Compare two locations object by object, reading every byte.

Every source name is accounted for: a name that cannot be a key is a difference
(``invalid-name``) unless ``--normalize-names nfc`` maps it to a key, which is then compared.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from stowage.backends import Backend
from stowage.backends.base import ObjectInfo, Unlisted
from stowage.migrate.plan import Options, listed_sha256, shown
from stowage.progress import Progress


@dataclass
class Difference:
    key: str
    problem: str  # missing | extra | size | sha256 | invalid-name | collision
    source: str | None = None
    destination: str | None = None


def _source_names(
    source: Backend, options: Options, differences: list[Difference]
) -> dict[str, tuple[str, int]]:
    """key -> (source name, size) for every selected source name that maps to a key."""
    names: dict[str, tuple[str, int]] = {}
    for found in source.scan(""):
        if isinstance(found, Unlisted):
            name = found.name
            if not (options.normalize_names == "nfc" and found.nfc_key):
                if options.selects(shown(name)):
                    differences.append(Difference(shown(name), "invalid-name", found.reason))
                continue
            key = found.nfc_key
        else:
            name = key = found.key
        if not options.selects(key):
            continue
        if key in names:
            differences.append(Difference(key, "collision", shown(name), shown(names[key][0])))
            continue
        names[key] = (name, found.size)
    return names


def verify(source: Backend, destination: Backend, options: Options) -> tuple[list[Difference], int]:
    """(differences, objects compared)."""
    differences: list[Difference] = []
    src = _source_names(source, options, differences)
    dst: dict[str, ObjectInfo] = {i.key: i for i in destination.list("") if options.selects(i.key)}
    differences += [Difference(k, "missing") for k in sorted(src.keys() - dst.keys())]
    differences += [Difference(k, "extra") for k in sorted(dst.keys() - src.keys())]
    both = sorted(src.keys() & dst.keys())
    progress = Progress(len(both), sum(src[k][1] for k in both), quiet=options.quiet)

    def compare(key: str) -> Difference | None:
        name, size = src[key]
        try:
            if size != dst[key].size:
                return Difference(key, "size", str(size), str(dst[key].size))
            a, b = listed_sha256(source, name), destination.sha256(key)
            return None if a == b else Difference(key, "sha256", a, b)
        finally:
            progress.add_bytes(size)
            progress.add_object()

    with ThreadPoolExecutor(max_workers=options.workers) as pool:
        differences += [d for d in pool.map(compare, both) if d is not None]
    progress.close()
    return sorted(differences, key=lambda d: (d.key, d.problem)), len(both)
