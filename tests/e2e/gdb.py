"""Drive the real gdb-multiarch through pygdbmi against a real ``chronicorn serve`` (test harness)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pygdbmi.gdbcontroller import GdbController

from tests.conftest import GUESTS, ROOT

GDB = "gdb-multiarch"
Record = dict[str, Any]


def require_gdb() -> None:
    if shutil.which(GDB) is None:
        pytest.skip("gdb-multiarch not installed")


class ServerProcess:
    """``chronicorn serve GUEST --port 0`` (or ``replay FILE``); the port is read from its first line (no sleeping)."""

    def __init__(
        self, guest: Path, *extra: str, stdin: int | None = subprocess.DEVNULL, command: str = "serve"
    ) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gdbstub.cli", command, str(guest), "--port", "0", *extra],
            stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
        )  # fmt: skip
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode()
        if not line.startswith("listening on "):
            self.proc.kill()
            raise RuntimeError(f"server did not start: {line!r} {self.proc.stderr.read().decode()}")  # type: ignore[union-attr]
        self.port = int(line.rsplit(":", 1)[1])

    def stop(self) -> tuple[bytes, bytes]:
        self.proc.terminate()
        try:
            out, err = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
        return out, err


@dataclass
class Gdb:
    """One gdb-multiarch over MI; ``wait_stopped`` returns the ``*stopped`` record's payload."""

    elf: Path
    controller: GdbController = field(init=False)
    output: str = ""

    def __post_init__(self) -> None:
        self.controller = GdbController(
            command=[GDB, "--nx", "--quiet", "--interpreter=mi3", str(self.elf)],
            time_to_check_for_additional_output_sec=0.01,  # pygdbmi otherwise lingers 0.2 s per read
        )
        self.mi("-gdb-set confirm off")
        self.mi("-gdb-set mi-async on")  # so -exec-interrupt works while the target runs
        self.mi(f"-environment-directory {GUESTS}")

    def mi(self, command: str, timeout: float = 20) -> list[Record]:
        """Send an MI command; return the records up to its result (error results raise)."""
        records = self.controller.write(command, timeout_sec=timeout, raise_error_on_timeout=False)
        deadline = time.monotonic() + timeout
        while not any(r["type"] == "result" for r in records) and time.monotonic() < deadline:
            records += self.controller.get_gdb_response(timeout_sec=0.5, raise_error_on_timeout=False)
        result = next((r for r in records if r["type"] == "result"), None)
        if result is None:
            raise TimeoutError(f"no result for {command!r}: {records}")
        if result["message"] == "error":
            raise GdbError(result["payload"].get("msg", str(result)))
        self._pending = [r for r in records if r["type"] == "notify" and r["message"] == "stopped"]
        self._collect(records)
        return records

    def _collect(self, records: list[Record]) -> None:
        self.output += "".join(r["payload"] for r in records if r["type"] in ("console", "target") and r["payload"])

    def console(self, command: str) -> str:
        """A CLI command's console output (and target output: monitor replies)."""
        records = self.mi(f'-interpreter-exec console "{command}"')
        return "".join(r["payload"] for r in records if r["type"] in ("console", "target"))

    def wait_stopped(self, timeout: float = 60) -> Record:
        stopped = getattr(self, "_pending", [])
        deadline = time.monotonic() + timeout
        while not stopped and time.monotonic() < deadline:
            records = self.controller.get_gdb_response(timeout_sec=0.5, raise_error_on_timeout=False)
            self._collect(records)
            stopped = [r for r in records if r["type"] == "notify" and r["message"] == "stopped"]
        self._pending = []
        if not stopped:
            raise TimeoutError("the target did not stop")
        return stopped[-1]["payload"]

    def run(self, command: str, timeout: float = 60) -> Record:
        """An execution command (-exec-continue, -exec-step...) up to its ``*stopped``.

        ``self.output`` then holds the console and target output seen meanwhile.
        """
        self.output = ""
        self.mi(command)
        return self.wait_stopped(timeout)

    def connect(self, port: int) -> Record:
        self.mi(f"-target-select remote 127.0.0.1:{port}")
        return self.frame()

    def frame(self) -> Record:
        return self.mi("-stack-info-frame")[-1]["payload"]["frame"]

    def evaluate(self, expression: str) -> str:
        records = self.mi(f'-data-evaluate-expression "{expression}"')
        return next(r for r in records if r["type"] == "result")["payload"]["value"]

    def registers(self, numbers: range = range(33)) -> dict[str, int]:
        """Register values by name (default: x0-x31 and pc, gdb's numbers 0-32)."""
        names = self._result("-data-list-register-names")["register-names"]
        listed = " ".join(str(n) for n in numbers)
        values = self._result(f"-data-list-register-values x {listed}")["register-values"]
        return {names[int(v["number"])]: int(v["value"], 16) for v in values}

    def _result(self, command: str) -> Record:
        return next(r for r in self.mi(command) if r["type"] == "result")["payload"]

    def close(self) -> None:
        self.controller.exit()


class GdbError(Exception):
    """gdb answered ^error."""
