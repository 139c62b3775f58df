"""`python -m oven.memory mem -- COMMAND ...`: the memory harness without the rest of the CLI."""

import argparse

from ._harness import add_parser


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m oven.memory")
    sub = parser.add_subparsers(dest="subcommand", required=True)
    add_parser(sub)
    args = parser.parse_args()
    code: int = args.func(args)
    return code


raise SystemExit(main())
