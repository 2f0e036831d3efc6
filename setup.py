"""Build the tiny native helper (machine/native/icount.c, pages.c, watch.c).

It is a plain shared library loaded with ctypes (no Python C API), built as an
extension so that `pip install` compiles it with the package. If it cannot be
built, installation still succeeds and chronicorn falls back to pure Python.
"""

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class OptionalBuildExt(build_ext):
    """Treat a failed native build as a warning: the Python fallback takes over."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 - any compiler failure
            self.warn(f"native icount helper not built ({exc}); using the Python fallback")

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001
            self.warn(f"native icount helper not built ({exc}); using the Python fallback")

    def get_export_symbols(self, ext: Extension) -> list[str]:
        return ext.export_symbols  # a ctypes library, not a Python module: no PyInit_


setup(
    ext_modules=[
        Extension(
            "machine._icount_native",
            sources=["machine/native/icount.c", "machine/native/pages.c", "machine/native/watch.c"],
            extra_compile_args=["-O3", "-Wall", "-Wextra"],
        )
    ],
    cmdclass={"build_ext": OptionalBuildExt},
)
