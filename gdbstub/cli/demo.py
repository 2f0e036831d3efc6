"""``chronicorn demo``: the bug hunt on the example firmware, with the real gdb."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--arch", choices=["rv32", "rv64"], default="rv32", help="which build of the example")


def run(args: argparse.Namespace) -> int:
    from ..demo import run_demo

    return run_demo(args.arch)
