"""Where the time goes, from py-spy's raw stacks (``bench.migrate --profile DIR``): the share
of the busy samples (worker threads waiting for work left out) under each function.

Usage: .venv/bin/python -m bench.profile_summary DIR/s3-to-local.txt [--top 30]
"""

from __future__ import annotations

import argparse
import collections


def summary(path: str, top: int) -> None:
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    busy = 0
    with open(path) as raw:
        for line in raw:
            stack, _, count = line.rstrip().rpartition(" ")
            frames = [
                f.split(" (")[0] + " " + f.rsplit("/", 1)[-1].rstrip(")") for f in stack.split(";")
            ]
            if any("_worker" in f for f in frames) and not any(
                "_WorkItem.run" in f for f in frames
            ):
                continue  # an idle pool thread
            n = int(count)
            busy += n
            for frame in set(frames):
                inclusive[frame] += n
            own[frames[-1]] += n
    print(f"{busy} busy samples\n\ninclusive:")
    for frame, n in inclusive.most_common(top):
        print(f"{100 * n / busy:5.1f} %  {frame}")
    print("\nown (innermost frame):")
    for frame, n in own.most_common(top // 2):
        print(f"{100 * n / busy:5.1f} %  {frame}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("path")
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    summary(args.path, args.top)


if __name__ == "__main__":
    main()
