"""Source lines of pcs as gdb's ``info line *PC`` finds them (gdb's line tables, rebuilt per compilation unit
from the DWARF line program), and the source text of a line."""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .die import die_attr
from .dwarf import DwarfIndex, line_states


@dataclass(frozen=True, slots=True)
class SourceLine:
    """A source line: ``file`` as the DWARF line table names it (what gdb's ``info line`` shows)."""

    file: str
    line: int


@dataclass(slots=True)
class _LineTable:
    """One compilation unit's line table, per source file as gdb builds it (buildsym's subfiles)."""

    comp_dir: str
    subfiles: list[tuple[str, list[int], list[tuple[int, int, bool]]]]  # (name, pcs, [(pc, line, is_stmt)])


def _file_names(program: Any) -> Callable[[int], str]:
    """A line program's file index -> the file's name as gdb shows it (with its include directory)."""
    version = program.header["version"]
    dirs = [d.decode(errors="replace") for d in program.header["include_directory"]]
    files = program.header["file_entry"]
    names: dict[int, str] = {}

    def file_name(index: int) -> str:
        if index not in names:
            fi = index if version >= 5 else index - 1
            if not 0 <= fi < len(files):
                names[index] = "?"
            else:
                fe = files[fi]
                name = fe.name.decode(errors="replace")
                d = fe.dir_index if version >= 5 else fe.dir_index - 1
                if not name.startswith("/") and 0 <= d < len(dirs):
                    name = f"{dirs[d]}/{name}"
                names[index] = name
        return names[index]

    return file_name


class LineTables:
    """pc -> source line, and source line -> text, for one ELF."""

    def __init__(self, index: DwarfIndex, elf_path: Path, source_dirs: Sequence[Path]) -> None:
        self._index = index
        self._elf_path = elf_path
        self.source_dirs = tuple(source_dirs)
        self._tables: dict[int, _LineTable] = {}
        self._cache: dict[int, SourceLine | None] = {}
        self._file_dirs: dict[str, str] = {}  # subfile name -> its CU's comp_dir
        self._source_cache: dict[Path, list[str] | None] = {}

    def line_at(self, pc: int) -> SourceLine | None:
        """The source line of ``pc`` as gdb's ``info line *PC`` finds it (find_pc_line over the CU's files)."""
        if pc in self._cache:
            return self._cache[pc]
        result = self._find_line(pc)
        if len(self._cache) < 1 << 16:
            self._cache[pc] = result
        return result

    def _find_line(self, pc: int) -> SourceLine | None:
        if not self._index.has_dwarf:
            return None
        cu_index = self._index.cu_index_at(pc)
        if cu_index is None or self._index.program(cu_index) is None:
            return None
        table = self._line_table(cu_index)
        best: tuple[int, int, str] | None = None  # (pc, line, file)
        for name, pcs, entries in table.subfiles:
            k = bisect.bisect_right(pcs, pc)
            if k == 0:
                continue
            prev = k - 1
            entry_pc, line, is_stmt = entries[prev]
            if not line or (best is not None and entry_pc <= best[0]):
                continue
            if not is_stmt:  # gdb: back up over entries at the same address to one that is a statement
                tmp = prev
                while tmp > 0 and entries[tmp - 1][0] == entry_pc and entries[tmp - 1][1] and not entries[tmp][2]:
                    tmp -= 1
                if entries[tmp][2]:
                    prev = tmp
                    line = entries[tmp][1]
            best = (entry_pc, line, name)
        return SourceLine(best[2], best[1]) if best is not None else None

    def _line_table(self, cu_index: int) -> _LineTable:
        """A CU's line table as gdb's DWARF reader records it (lnp_state_machine::record_line and
        buildsym's record_line), one sorted table per source file."""
        table = self._tables.get(cu_index)
        if table is not None:
            return table
        top = self._index.cus[cu_index].get_top_DIE()
        comp_dir = (die_attr(top, "DW_AT_comp_dir") or b"").decode(errors="replace")
        cu_low = die_attr(top, "DW_AT_low_pc") or 0
        program = self._index.program(cu_index)
        file_name = _file_names(program)

        subfiles: dict[str, list[tuple[int, int, bool]]] = {}

        def record(sub: str | None, line: int, addr: int, is_stmt: bool) -> None:
            if sub is None:
                return
            vec = subfiles.setdefault(sub, [])
            if line == 0:  # an end marker deletes the entries at its address
                last_line = None
                while vec:
                    last_line = vec[-1][1]
                    if vec[-1][0] != addr:
                        break
                    vec.pop()
                if last_line is None or last_line == 0:
                    return
            vec.append((addr, line, is_stmt))

        last_subfile: str | None = None
        last_line = 0
        last_address: int | None = None
        stmt_at_address = False
        seen_line, nonzero_disc = None, False
        skipping = False
        new_sequence = True
        for st in line_states(program):
            if new_sequence:
                last_subfile, last_line, last_address, stmt_at_address = None, 0, None, False
                skipping = st.address == 0 and cu_low > 0  # gdb ignores sequences of GC'd code (PR 12528)
                new_sequence = False
                if program.header["file_entry"]:
                    subfiles.setdefault(file_name(st.file), [])
            if st.line != seen_line:
                nonzero_disc = st.discriminator != 0
                seen_line = st.line
            else:
                nonzero_disc |= st.discriminator != 0
            end = st.end_sequence
            if not skipping and (getattr(st, "op_index", 0) == 0 or end):
                sub = file_name(st.file)
                file_changed = last_subfile != sub
                ignore = (file_changed and not end and last_address == st.address and not st.is_stmt
                          and stmt_at_address) or (not end and st.line == 0)  # fmt: skip
                if (file_changed and not ignore) or end:
                    record(last_subfile, 0, st.address, True)
                if not end and not ignore:
                    if file_changed or st.line != last_line or not nonzero_disc:
                        record(sub, st.line, st.address, bool(st.is_stmt))
                    last_subfile, last_line = sub, st.line
            if last_address != st.address:
                stmt_at_address, last_address = False, st.address
            stmt_at_address |= bool(st.is_stmt)
            if end:
                new_sequence = True
        ordered = list(subfiles.items())
        ordered = ordered[:1] + ordered[:0:-1]  # gdb: the primary file first, then the others newest first
        out = []
        for name, vec in ordered:
            vec.sort(key=lambda e: (e[0], e[1] != 0))
            out.append((name, [e[0] for e in vec], vec))
            self._file_dirs.setdefault(name, comp_dir)
        table = _LineTable(comp_dir, out)
        self._tables[cu_index] = table
        return table

    def source_path(self, where: SourceLine) -> Path | None:
        """The source file of ``where`` on this machine: ``source_dirs``, the compilation directory, then the
        ELF's directory and up to three above it (guests are built with paths relative to their tree)."""
        name = Path(where.file)
        if name.is_absolute():
            return name if name.is_file() else None
        comp_dir = Path(self._file_dirs.get(where.file, ""))
        elf_dirs = [self._elf_path.resolve().parent, *self._elf_path.resolve().parents[:3]]
        dirs = [*self.source_dirs]
        if comp_dir.is_absolute():
            dirs.append(comp_dir)
        dirs += elf_dirs
        for d in dirs:
            for candidate in (d / name, d / name.name):
                if candidate.is_file():
                    return candidate
        return None

    def source_text(self, where: SourceLine) -> str | None:
        """The text of that source line (without its newline), None if the file or line is missing."""
        path = self.source_path(where)
        if path is None:
            return None
        if path not in self._source_cache:
            try:
                self._source_cache[path] = path.read_text(errors="replace").splitlines()
            except OSError:
                self._source_cache[path] = None
        lines = self._source_cache[path]
        if lines is None or not 0 < where.line <= len(lines):
            return None
        return lines[where.line - 1]
