"""``neuro-partitions``: list, add and delete dynamic partition keys in the project's Dagster instance.

Dagster has no command for this (dagster-io/dagster#15499), yet ``dagster asset materialize --partition KEY``
and ``dagster job launch`` only accept keys that already exist in the instance.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from deepsif_assets.partitions import REGIONS, region_keys, validate_region_key
from ephys_assets.partitions import RECORDINGS
from neuro_core.keys import InvalidPartitionKeyError, validate_key

PROG = "neuro-partitions"
VALIDATORS: dict[str, Callable[[str], str]] = {
    RECORDINGS: lambda key: validate_key(key, RECORDINGS),
    REGIONS: validate_region_key,
}
EPILOG = """\
examples:
  neuro-partitions add regions 0 1 2
  neuro-partitions add regions --range 0:10        # end exclusive: regions 0..9
  neuro-partitions list regions
  dagster job launch -w workspace.yaml -j deepsif_region_job --tags '{"dagster/partition": "0"}'
  neuro-partitions delete regions 2

exit codes: 0 done, 2 bad input (nothing changed)
"""


def _parse_range(text: str) -> list[str]:
    try:
        start, end = (int(x) for x in text.split(":"))
    except ValueError:
        raise InvalidPartitionKeyError(f"--range {text!r} must look like START:END (end exclusive)") from None
    return region_keys(start, end)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="List, add and delete dynamic partition keys (regions, recordings) in the Dagster instance "
        "at $DAGSTER_HOME (default: the project's .dagster_home).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EPILOG,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (
        ("list", "print the keys of a partition set, one per line"),
        ("add", "add keys (keys already present are left as they are)"),
        ("delete", "delete keys (keys that do not exist are reported)"),
    ):
        cmd = sub.add_parser(name, help=help_text, description=help_text)
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
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2

    import dagster as dg

    from neuro_pipelines.instance import ensure_instance

    home = ensure_instance()
    with dg.DagsterInstance.get() as instance:
        existing = set(instance.get_dynamic_partitions(args.partitions))
        if args.command == "add":
            new = [k for k in dict.fromkeys(keys) if k not in existing]
            instance.add_dynamic_partitions(args.partitions, new)
            print(f"added {len(new)} key(s) to {args.partitions} in {home} ({len(keys) - len(new)} already present)")
        elif args.command == "delete":
            present = [k for k in dict.fromkeys(keys) if k in existing]
            for key in present:
                instance.delete_dynamic_partition(args.partitions, key)
            missing = [k for k in dict.fromkeys(keys) if k not in existing]
            print(f"deleted {len(present)} key(s) from {args.partitions} in {home}")
            if missing:
                print(f"not found (nothing to delete): {' '.join(missing)}")
        else:
            for key in instance.get_dynamic_partitions(args.partitions):
                print(key)
    return 0


if __name__ == "__main__":
    sys.exit(main())
