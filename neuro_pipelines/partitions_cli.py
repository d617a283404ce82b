"""``neuro-partitions``: list, add and delete dynamic partition keys in the project's instance.

Dagster has no command for this (dagster-io/dagster#15499), yet ``dagster asset materialize --partition KEY``
only accepts keys that already exist in ``$DAGSTER_HOME``. Typical use::

    neuro-partitions add regions 0 1 2          # or: --range 0:10 (end exclusive)
    dagster asset materialize -m neuro_pipelines.definitions --select region_clips --partition 0
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from deepsif_assets.partitions import REGIONS, region_keys, validate_region_key
from ephys_assets.partitions import RECORDINGS, validate_recording_key
from neuro_core.keys import InvalidPartitionKeyError

VALIDATORS: dict[str, Callable[[str], str]] = {
    RECORDINGS: validate_recording_key,
    REGIONS: validate_region_key,
}


def _parse_range(text: str) -> list[str]:
    try:
        start, end = (int(x) for x in text.split(":"))
    except ValueError:
        raise InvalidPartitionKeyError(f"--range {text!r} must look like START:END (end exclusive)") from None
    return region_keys(start, end)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="neuro-partitions", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (
        ("list", "print the keys of a partition set, one per line"),
        ("add", "add keys (idempotent)"),
        ("delete", "delete keys (a missing key is not an error)"),
    ):
        cmd = sub.add_parser(name, help=help_text)
        cmd.add_argument("partitions", choices=sorted(VALIDATORS), help="partition set")
        if name != "list":
            cmd.add_argument("keys", nargs="*", help="partition keys")
            cmd.add_argument("--range", dest="key_range", help="regions only: START:END, end exclusive")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        keys: list[str] = list(getattr(args, "keys", []) or [])
        if getattr(args, "key_range", None):
            if args.partitions != REGIONS:
                raise InvalidPartitionKeyError("--range applies to the regions partition set only")
            keys += _parse_range(args.key_range)
        for key in keys:
            VALIDATORS[args.partitions](key)
        if args.command != "list" and not keys:
            raise InvalidPartitionKeyError(f"{args.command}: give at least one key (or --range)")
    except InvalidPartitionKeyError as exc:
        print(f"neuro-partitions: error: {exc}", file=sys.stderr)
        return 2

    from neuro_pipelines.instance import ensure_instance

    home = ensure_instance()
    import dagster as dg

    with dg.DagsterInstance.get() as instance:
        if args.command == "add":
            instance.add_dynamic_partitions(args.partitions, keys)
            print(f"added {len(keys)} key(s) to {args.partitions} in {home}")
        elif args.command == "delete":
            for key in keys:
                instance.delete_dynamic_partition(args.partitions, key)
            print(f"deleted {len(keys)} key(s) from {args.partitions} in {home}")
        else:
            for key in instance.get_dynamic_partitions(args.partitions):
                print(key)
    return 0


if __name__ == "__main__":
    sys.exit(main())
