#!/usr/bin/env python3
"""Build Unicorn 2.1.4 with chronicorn's patches (``third_party/unicorn``) and install it in place of the wheel's
library, in the Python environment that runs this script.

1. fetch Unicorn's source release from PyPI (``pip download --no-binary``; its SHA-256 is checked);
2. apply ``third_party/unicorn/*.patch`` in order (``patch -p1``);
3. build the RISC-V, Arm and AArch64 targets with cmake (about a minute on two cores);
4. copy ``libunicorn.so.2`` into the installed ``unicorn`` package's ``lib/``; the wheel's own library is kept
   beside it as ``lib/stock/libunicorn.so.2`` (``LIBUNICORN_PATH=<that directory>`` loads it again, and
   ``--restore`` puts it back).

Nothing is done when the installed library already carries these patches (a digest of the patch files is kept in
``lib/chronicorn-patches.sha256``). ``chronicorn`` works with the stock library too, more slowly:
``machine.unicorn_patches`` says which patches the loaded library has.

Usage: ``scripts/build_unicorn.py [--work DIR] [--jobs N] [--force] [--restore]``. Needs cmake, make, a C
compiler and ``patch`` (Debian: ``cmake make gcc patch``).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PATCHES = ROOT / "third_party" / "unicorn"
VERSION = "2.1.4"
SDIST = f"unicorn-{VERSION}.tar.gz"
SDIST_SHA256 = "00567a70e323f749b419cd86bee4f9115beab7ebba32194581c090cbb7c59cff"
ARCHS = "riscv;arm;aarch64"  # the boards chronicorn has
LIBRARY = "libunicorn.so.2"
STAMP = "chronicorn-patches.sha256"


def patch_digest() -> str:
    """SHA-256 over the patch files (names and contents, in order): what an installed build was made from."""
    h = hashlib.sha256(VERSION.encode())
    for patch in sorted(PATCHES.glob("*.patch")):
        h.update(patch.name.encode() + b"\0" + patch.read_bytes())
    return h.hexdigest()


def installed_lib_dir() -> Path:
    """The ``lib/`` directory of the ``unicorn`` package this Python imports (without loading the library)."""
    import importlib.util

    spec = importlib.util.find_spec("unicorn")
    if spec is None or spec.origin is None:
        raise SystemExit(f"unicorn is not installed for {sys.executable} (pip install unicorn=={VERSION})")
    return Path(spec.origin).parent / "lib"


def fetch(work: Path) -> Path:
    """The source release, downloaded once into ``work`` and checked."""
    archive = work / SDIST
    if not archive.exists():
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps", "-d", str(work),
                        f"unicorn=={VERSION}"], check=True)  # fmt: skip
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    if digest != SDIST_SHA256:
        archive.unlink()
        raise SystemExit(f"{SDIST}: SHA-256 {digest}, expected {SDIST_SHA256} (deleted; run again)")
    return archive


def unpack(archive: Path, work: Path) -> Path:
    """A fresh copy of the release's C sources (``src/``), patched."""
    tree = work / f"unicorn-{VERSION}"
    if tree.exists():
        shutil.rmtree(tree)
    with tarfile.open(archive) as tar:
        tar.extractall(work, filter="data")
    src = tree / "src"
    for patch in sorted(PATCHES.glob("*.patch")):
        print(f"build_unicorn: applying {patch.name}", flush=True)
        subprocess.run(["patch", "-s", "-p1", "--forward", "-d", str(src), "-i", str(patch)], check=True)
    return src


def build(src: Path, work: Path, jobs: int) -> Path:
    out = work / "build"
    if out.exists():
        shutil.rmtree(out)
    subprocess.run(["cmake", "-S", str(src), "-B", str(out), "-DCMAKE_BUILD_TYPE=Release", "-DUNICORN_BUILD_TESTS=off",
                    f"-DUNICORN_ARCH={ARCHS}"], check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    subprocess.run(["cmake", "--build", str(out), f"-j{jobs}"], check=True, stdout=subprocess.DEVNULL)
    return out / LIBRARY


def install(built: Path, lib_dir: Path, digest: str) -> None:
    stock = lib_dir / "stock"
    stock.mkdir(exist_ok=True)
    if not (stock / LIBRARY).exists():
        shutil.copy2(lib_dir / LIBRARY, stock / LIBRARY)
    tmp = lib_dir / (LIBRARY + ".new")
    shutil.copy2(built, tmp)
    os.replace(tmp, lib_dir / LIBRARY)  # a running process keeps the library it mapped
    (lib_dir / STAMP).write_text(digest + "\n")


def restore(lib_dir: Path) -> None:
    saved = lib_dir / "stock" / LIBRARY
    if not saved.exists():
        print("build_unicorn: the installed library is the wheel's (nothing to restore)")
        return
    shutil.copy2(saved, lib_dir / (LIBRARY + ".new"))
    os.replace(lib_dir / (LIBRARY + ".new"), lib_dir / LIBRARY)
    (lib_dir / STAMP).unlink(missing_ok=True)
    print(f"build_unicorn: restored the wheel's library in {lib_dir}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path(sys.prefix) / "unicorn-build",
                        help="download and build here (default: in the Python environment, e.g. .venv/unicorn-build)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--force", action="store_true", help="build even if the installed library is up to date")
    parser.add_argument("--restore", action="store_true", help="put the wheel's library back")
    args = parser.parse_args()
    lib_dir = installed_lib_dir()
    if args.restore:
        restore(lib_dir)
        return 0
    digest = patch_digest()
    stamp = lib_dir / STAMP
    if not args.force and stamp.exists() and stamp.read_text().strip() == digest:
        print(f"build_unicorn: {lib_dir / LIBRARY} already carries chronicorn's patches")
        return 0
    for tool in ("cmake", "make", "patch", "cc"):
        if shutil.which(tool) is None:
            raise SystemExit(f"build_unicorn: {tool} is needed (Debian: apt-get install cmake make gcc patch)")
    args.work.mkdir(parents=True, exist_ok=True)
    src = unpack(fetch(args.work), args.work)
    print(f"build_unicorn: building Unicorn {VERSION} ({ARCHS}) in {args.work}", flush=True)
    install(build(src, args.work, args.jobs), lib_dir, digest)
    print(f"build_unicorn: installed {lib_dir / LIBRARY} (the wheel's: {lib_dir / 'stock' / LIBRARY})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
