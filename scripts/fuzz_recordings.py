"""A fork server that runs ``python -m MODULE ARGS...`` many times fast (for the recording-damage tests).

tests/integration/test_recording_damage.py runs the ``chronicorn`` command thousands of times on damaged
recordings. A fresh interpreter spends ~0.25 s importing unicorn, capstone and chronicorn before it looks at
the file; this server pays that once: it imports the modules named by ``--preload`` (best effort: a module
that fails to import is simply not preloaded), then for each request forks a child that does what
``python -m MODULE ARGS...`` does (``runpy`` with ``run_name="__main__"``, ``sys.path[0]`` the working
directory) and exits the way the interpreter exits: an uncaught exception prints its traceback and exits 1,
``SystemExit`` gives the exit code, a signal kills the child for real (see :func:`_exit` for the one
shortcut: no module teardown). Each child runs in its own session
with its own resource limits, stdout on /dev/null and stderr to a file; the server kills it (SIGKILL, whole
process group) when it outlives its timeout.

Protocol: one JSON request per line on stdin, ``{"args": [...], "stderr": PATH, "timeout": SECONDS,
"limits": {"AS": BYTES, ...}}``; one JSON answer per line on stdout, ``{"status": N, "hung": BOOL,
"seconds": S, "peak_rss_kib": K}`` where ``status`` is the exit code, or minus the signal number
(``subprocess``'s convention), and ``peak_rss_kib`` the child's peak resident memory.
The first line the server writes is ``{"ready": true, "preloaded": [...]}``. Linux only (``pidfd_open``).

Usage: ``python scripts/fuzz_recordings.py --module gdbstub.cli --preload gdbstub.cli.*,replay.*``
(run from the repository root: like ``python -m``, children import from the working directory).
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import gc
import importlib
import json
import os
import pkgutil
import resource
import runpy
import select
import signal
import sys
import threading
import time


def _preload(names: list[str]) -> list[str]:
    """Import what can be imported (``package.*``: its submodules too, except ``__main__``)."""
    loaded = []
    for name in names:
        package = name.removesuffix(".*")
        try:
            module = importlib.import_module(package)
            submodules = [] if package == name else pkgutil.iter_modules(getattr(module, "__path__", []))
            for info in submodules:
                if info.name != "__main__":
                    importlib.import_module(f"{package}.{info.name}")
                    loaded.append(f"{package}.{info.name}")
        except Exception:  # noqa: BLE001 - the child will import it again and report what goes wrong
            continue
        loaded.append(package)
    return loaded


def _child(module: str, request: dict[str, object], protocol_fds: tuple[int, int]) -> None:
    """In the forked child: become ``python -m module args``; never returns."""
    for fd in protocol_fds:
        os.close(fd)
    os.setsid()
    err = os.open(str(request["stderr"]), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(err, 2)
    os.close(err)
    out = os.open(os.devnull, os.O_WRONLY)
    os.dup2(out, 1)
    os.close(out)
    for name, value in dict(request.get("limits") or {}).items():  # type: ignore[call-overload]
        resource.setrlimit(getattr(resource, f"RLIMIT_{name}"), (int(value), int(value)))
    sys.argv = [module, *(str(arg) for arg in request["args"])]  # type: ignore[attr-defined]
    if not hasattr(sys.modules.get(module), "__path__"):  # a package runs its __main__, never preloaded
        sys.modules.pop(module, None)  # ``python -m`` starts with the module not imported (runpy warns otherwise)
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
        status = 0
    except SystemExit as exc:
        status = _exit_status(exc.code)
    except BaseException:  # noqa: BLE001 - what the interpreter does with an uncaught exception
        sys.excepthook(*sys.exc_info())  # type: ignore[arg-type]
        status = 1
    _exit(status)


def _exit_status(code: object) -> int:
    """The process status the interpreter makes of ``SystemExit(code)``."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def _exit(status: int) -> None:
    """Leave as the interpreter does, without tearing the modules down (~0.1 s of copy-on-write a run).

    What the interpreter does before that teardown is done: waiting for threads (if any is left, the real
    shutdown runs), atexit handlers, flushing stdout and stderr, collecting garbage (finalizers run and
    report "Exception ignored" as usual). Finalizers of objects still reachable from modules at exit are
    the difference.
    """
    main = threading.main_thread()
    if any(thread.is_alive() and not thread.daemon for thread in threading.enumerate() if thread is not main):
        raise SystemExit(status)
    atexit._run_exitfuncs()
    gc.collect()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 - as the interpreter: report, exit 120
            status = 120
    os._exit(status)


def _wait(pid: int, timeout: float) -> tuple[int, bool, int]:
    """The child's status (``-signal`` if killed by one), whether it was killed for time, its peak RSS in KiB."""
    pidfd = os.pidfd_open(pid)
    try:
        ready, _, _ = select.select([pidfd], [], [], timeout)
    finally:
        os.close(pidfd)
    hung = not ready
    if hung:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    _, status, usage = os.wait4(pid, 0)
    return os.waitstatus_to_exitcode(status), hung, usage.ru_maxrss


def serve(module: str, preload: list[str]) -> None:
    protocol_in, protocol_out = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.close(null)
    sys.path[0] = os.getcwd()  # as under ``python -m``: imports come from the working directory
    loaded = _preload(preload)
    gc.freeze()  # the children's collections skip (and so do not copy) everything imported here
    os.write(protocol_out, (json.dumps({"ready": True, "preloaded": loaded}) + "\n").encode())
    pending = b""
    while True:
        while b"\n" not in pending:
            more = os.read(protocol_in, 65536)
            if not more:
                return
            pending += more
        line, pending = pending.split(b"\n", 1)
        request = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        started = time.monotonic()
        pid = os.fork()
        if pid == 0:
            _child(module, request, (protocol_in, protocol_out))
        status, hung, peak_kib = _wait(pid, float(request["timeout"]))
        seconds = round(time.monotonic() - started, 3)
        answer = {"status": status, "hung": hung, "seconds": seconds, "peak_rss_kib": peak_kib}
        os.write(protocol_out, (json.dumps(answer) + "\n").encode())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--module", required=True, help="what each request runs, as python -m MODULE")
    parser.add_argument("--preload", default="", help="comma-separated modules to import up front (pkg.*: and "
                        "its submodules)")  # fmt: skip
    args = parser.parse_args()
    serve(args.module, [name for name in args.preload.split(",") if name])


if __name__ == "__main__":
    main()
