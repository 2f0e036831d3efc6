"""replay/symbols/: every answer cross-checked with gdb-multiarch on the same ELF.

One gdb process per ELF (module-scoped and cached) answers every question the tests ask of that ELF: a gdb
Python script runs the commands and returns their text. What is compared comes from the ELF itself: the
variables gdb lists (``info variables``), every member and element reachable from them, addresses across the
allocated sections, every other halfword of the code. Values are compared on bytes placed in a gdb value of
the expression's own type (``gdb.Value(bytes, type)``, printed with ``print``), so random and edge-case bytes
are printed by both.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import struct
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from replay.symbols import CType, Location, SourceLine, SymbolError, Symbols
from tests.conftest import ROOT, require_tool

GDB = "gdb-multiarch"
RISCV = ROOT / "tests" / "guests" / "riscv" / "build"
ELFS = {
    "cmdint-rv32": ROOT / "gdbstub" / "demo" / "firmware" / "rv32" / "cmdint.elf",
    "cmdint-rv64": ROOT / "gdbstub" / "demo" / "firmware" / "rv64" / "cmdint.elf",
    "stray-rv32": RISCV / "rv32" / "stray.elf",
    "isrbug-rv64": RISCV / "rv64" / "isrbug.elf",
    "cmdbug-aarch64": ROOT / "tests" / "guests" / "aarch64" / "build" / "cmdbug.elf",
    "cmdbug-cortexm": ROOT / "tests" / "guests" / "cortexm" / "build" / "cmdbug.elf",
}
CC = "riscv64-unknown-elf-gcc"
OBJCOPY = "riscv64-unknown-elf-objcopy"

# A guest written for the type coverage the committed guests lack (enums, floats, unions, bit-fields, function
# pointers, qualifiers, multi-dimensional and long arrays, anonymous members); built by the test.
TYPES_C = r"""
#include <stdint.h>
#include <stdbool.h>
enum color { RED, GREEN = 5, BLUE = -2 };
enum flags { F_A = 1, F_B = 2, F_C = 8 };
enum multi { M_ONE = 1, M_THREE = 3 };
typedef enum { T_X = 1, T_Y = 2 } tenum_t;
struct bits { unsigned a : 3; int b : 5; unsigned c : 12; bool d : 1; enum flags e : 4; };
union number { uint32_t u; float f; uint8_t bytes[4]; };
struct inner { int16_t x; char tag; };
struct outer {
    struct inner in[2];
    union { int32_t anon_i; uint16_t anon_h[2]; };
    struct { uint8_t p, q; };
    const char *label;
    struct outer *next;
    void (*handler)(int);
    int (*table[2])(void);
    double d;
    float f;
    long double ld;
    bool ok;
    signed char sc;
    unsigned char uc;
    int8_t i8;
    uint64_t u64;
    int64_t i64;
    short sh;
    unsigned short ush;
    long l;
    unsigned long ul;
    long long ll;
    unsigned long long ull;
    enum color color;
    enum flags flags;
    enum multi multi;
    tenum_t te;
    struct bits bits;
    union number num;
    int matrix[2][3];
    char text[24];
    char *const cp;
    volatile uint32_t *const volatile vp;
    const volatile int cvi;
    uint8_t raw[40];
};
typedef struct outer outer_t;
typedef char *str_t;
struct opaque;
struct holder { int n; struct opaque *o; struct holder *self; };
static void handler(int x) { (void)x; }
static int one(void) { return 1; }
outer_t other;
struct outer g = { .in = {{1, 'a'}, {-2, 'b'}}, .anon_i = 7, .p = 3, .label = "label", .next = &other,
                   .handler = handler, .table = {one, 0}, .d = 1.1, .f = 2.5f, .ld = 3.25L, .ok = true,
                   .sc = -5, .color = BLUE, .flags = F_A | F_C, .bits = {5, -3, 100, 1, F_B},
                   .text = "text", .cp = (char *)0 };
static int big[250] = { 1, 2, 3 };
char longtext[260] = "long";
str_t name = "hello";
char greeting[] = "hi\n\t\"quoted\" 'x' \\ \001\177";
const char *names[3] = { "a", "bb", 0 };
struct holder holders[2] = { { 1, 0, &holders[1] }, { 2, 0, 0 } };
double dd[3] = { 0.1, -0.0, 1e300 };
float ff[2] = { 1.1f, -3.0f };
long double lds[2] = { 0.1L, -2.0L };
bool flags_on[4] = { true, false, true, true };
enum color colors[3] = { RED, GREEN, BLUE };
int main(void) { static int calls; int local = 3; calls += local; handler(calls); return one() + calls; }
void _start(void) { main(); for (;;) {} }
"""

# A guest with inlined functions (built -O2 by the test): inlined into inlined ones, in lexical blocks, in loops,
# one inlined at one call and called out of line at another (through a pointer).
INLINE_C = r"""
#include <stdint.h>
volatile uint32_t sink[8];
uint32_t table[16];
#define INLINE static inline __attribute__((always_inline))
INLINE void leaf(uint32_t i, uint32_t v) { sink[i & 7] = v; table[i & 15] += v; }
INLINE void middle(uint32_t i) { for (uint32_t k = 0; k < i; k++) { uint32_t t = k * 3; leaf(k, t); } }
INLINE void outer(uint32_t i) { middle(i); leaf(i, i + 1); }
static void both(uint32_t i) { sink[1] = i * 7; sink[2] = i; }
__attribute__((noinline)) void caller(uint32_t n) {
    outer(n);
    if (n > 2) { uint32_t b = n * 5; leaf(b, n); }
    both(n);
}
void (*volatile both_ptr)(uint32_t) = both;
int main(void) { caller(sink[0]); both_ptr(3); middle(sink[3]); return 0; }
void _start(void) { main(); for (;;) {} }
"""


# -- gdb ---------------------------------------------------------------------------------------------------------
GDB_SCRIPT = r"""
import gdb, json
commands = json.load(open(COMMANDS))  # COMMANDS and RESULTS are set by run_gdb
out = []
for c in commands:
    try:
        if c.startswith("@value "):  # @value HEX EXPR: print the bytes as a value of EXPR's type
            _, data, expr = c.split(" ", 2)
            gdb.set_convenience_variable("v", gdb.Value(bytes.fromhex(data), gdb.parse_and_eval(expr).type))
            c = "print $v"
        elif c.startswith("@frames "):  # per halfword of [START, END): what a frame there shows
            start, end = (int(x, 0) for x in c.split()[1:])
            rows = []
            for pc in range(start, end, 2):
                block = gdb.block_for_pc(pc)
                while block is not None and block.function is None:  # up to the innermost (inlined) function
                    block = block.superblock
                sal = gdb.find_pc_line(pc)
                rows.append([block.function.name if block else None, sal.symtab.filename if sal.symtab else None,
                             sal.line])
            out.append(json.dumps(rows))
            continue
        elif c.startswith("@params "):  # the formal parameters of a function, from its block
            fn = gdb.lookup_static_symbol(c[8:]) or gdb.lookup_global_symbol(c[8:])
            block = gdb.block_for_pc(int(fn.value().address))
            while block.function is None or block.function.name != c[8:]:  # not a block inlined there
                block = block.superblock
            out.append(json.dumps([s.name for s in block if s.is_argument]))
            continue
        out.append(gdb.execute(c, to_string=True))
    except Exception as e:  # gdb.error, or a lookup that found nothing
        out.append("ERROR: " + str(e))
json.dump(out, open(RESULTS, "w"))
"""


def run_gdb(elf: Path, commands: list[str], work: Path) -> dict[str, str]:
    """The text gdb prints for each command (``$N = `` removed), run in one batch gdb on ``elf``."""
    require_tool(shutil.which(GDB), f"{GDB} not installed")
    work.mkdir(parents=True, exist_ok=True)
    cmds, results, script = work / "commands.json", work / "results.json", work / "script.py"
    cmds.write_text(json.dumps(commands))
    script.write_text(f"COMMANDS = {str(cmds)!r}\nRESULTS = {str(results)!r}\n" + GDB_SCRIPT)
    env = {**os.environ, "LC_ALL": "C"}  # gdb's host charset: bytes past 0x7f are escaped, as format() does
    proc = subprocess.run([GDB, "-batch", "-nx", "-ex", "set width 0", "-ex", "set pagination off",
                           "-ex", f"source {script}", str(elf)],
                          capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
    assert results.exists(), proc.stderr
    answers = json.loads(results.read_text())
    return {c: re.sub(r"^\$\d+ = ", "", a).rstrip("\n") for c, a in zip(commands, answers, strict=True)}


def elf_memory(path: Path) -> Callable[[int, int], bytes]:
    """Reads the ELF's initial memory by section address, as gdb does without a process (.bss: zeros)."""
    with path.open("rb") as f:
        elf = ELFFile(f)
        sections = [(s["sh_addr"], s.data() if s["sh_type"] != "SHT_NOBITS" else bytes(s["sh_size"]))
                    for s in elf.iter_sections() if s["sh_flags"] & 2 and s["sh_size"]]  # fmt: skip

    def read(addr: int, size: int) -> bytes:
        for start, data in sections:
            if start <= addr and addr + size <= start + len(data):
                return data[addr - start : addr - start + size]
        raise OSError(f"Cannot access memory at address {addr:#x}")

    return read


def allocated_sections(path: Path) -> list[tuple[str, int, int, bool]]:
    """(name, start, size, code) of the ELF's allocated sections."""
    with path.open("rb") as f:
        return [(s.name, s["sh_addr"], s["sh_size"], bool(s["sh_flags"] & 4))
                for s in ELFFile(f).iter_sections() if s["sh_flags"] & 2 and s["sh_size"]]  # fmt: skip


def symbol_sizes(path: Path) -> dict[str, int]:
    """st_size of the ELF's named symbols."""
    with path.open("rb") as f:
        symtab = ELFFile(f).get_section_by_name(".symtab")
        return {sym.name: sym["st_size"] for sym in symtab.iter_symbols() if sym.name and sym["st_size"]}


# -- what to ask -------------------------------------------------------------------------------------------------
def gdb_variables(listing: str) -> set[str]:
    """Names of the variables with debug info that ``info variables`` lists (a declaration may span lines)."""
    names, decl = set(), ""
    for line in listing.split("\nNon-debugging symbols:")[0].splitlines():
        m = re.match(r"^\d+:\s+(.*)$", line)
        if m:
            decl = m.group(1)
        elif decl:
            decl += " " + line.strip()
        if decl.endswith(";") and decl.count("{") == decl.count("}"):
            text = re.sub(r"\[[^]]*\]", "", decl[:-1])  # int big[250] -> int big
            text = re.sub(r"\(\* ?(?:(?:const|volatile) )*(\w+)\)\(.*\)$", r"\1", text)  # void (*fp)(int) -> fp
            names.add(re.findall(r"(\w+)\)?$", text.strip())[-1])
            decl = ""
    return names


def expressions(symbols: Symbols, roots: list[str], depth: int = 3) -> Iterator[str]:
    """The roots and every member and element below them (first, last and one past the last element)."""
    for root in roots:
        yield from _below(symbols, root, symbols.locate(root).type, depth)


def _below(symbols: Symbols, expr: str, ctype: CType | None, depth: int) -> Iterator[str]:
    yield expr
    if ctype is None or depth == 0:
        return
    if ctype.kind in ("struct", "union"):
        for f in ctype.fields:
            if f.bit_size:
                continue
            if f.name:
                yield from _below(symbols, f"{expr}.{f.name}", f.type, depth - 1)
            else:  # an anonymous member: its members are the struct's
                for sub in f.type.fields:
                    if sub.name and not sub.bit_size:
                        yield from _below(symbols, f"{expr}.{sub.name}", sub.type, depth - 1)
    elif ctype.kind == "array" and ctype.count:
        indexes = sorted({0, ctype.count - 1})
        for i in indexes:
            yield from _below(symbols, f"{expr}[{i}]", ctype.element, depth - 1)
        yield f"{expr}[{ctype.count}]"  # past the end: gdb allows it


PALETTE = (0, 0, 1, 0x20, 0x41, 0x41, 0x61, 0x22, 0x27, 0x5C, 0x0A, 0x1B, 0x7F, 0x80, 0xFF)


def runs(rng: random.Random, size: int) -> bytes:
    """Bytes in runs of a few values: repeats, strings, escapes and NULs."""
    out = bytearray()
    while len(out) < size:
        out += bytes([rng.choice(PALETTE)]) * rng.choice((1, 1, 2, 3, 9, 10, 11, 12, 30))
    return bytes(out[:size])


def patterns(ctype: CType, rng: random.Random, pointers: list[int]) -> list[bytes]:
    """Bytes to format as a value of ``ctype``: edge cases of its kind and random ones."""
    size = ctype.size
    out = [bytes(size), b"\xff" * size, rng.randbytes(size), runs(rng, size), runs(rng, size)]
    if ctype.kind == "pointer":
        out += [addr.to_bytes(size, "little") for addr in rng.sample(pointers, min(4, len(pointers)))]
    elif ctype.kind == "float":
        specials = {4: ("<f", (1.1, -0.0, float("inf"), 1e-40, 3.4e38)),
                    8: ("<d", (1.1, -0.0, float("-inf"), 5e-324, 1e300, 0.1)),
                    16: (None, ())}[size]  # fmt: skip
        if specials[0]:
            out += [struct.pack(specials[0], v) for v in specials[1]]
        nan = bytearray(rng.randbytes(size))
        nan[-1] |= 0x7F
        nan[-2] |= 0xF0 if size == 8 else 0x80  # exponent all ones: a NaN (or inf) with a random mantissa
        out += [bytes(nan), bytes(size - 2) + (b"\xff\x7f" if size == 16 else b"\xf0\x7f" if size == 8 else b"")]
    elif ctype.kind == "enum":
        values = [v for _, v in ctype.enumerators]
        out += [(v & ((1 << (8 * size)) - 1)).to_bytes(size, "little") for v in values + [sum(values), 3, 16, 7]]
    elif ctype.kind == "array" and ctype.element is not None and ctype.element.size > 1:
        element = ctype.element.size
        values = [rng.randbytes(element), bytes(element), b"\x01" + bytes(element - 1)]
        pattern = bytearray()
        while len(pattern) < size:
            pattern += rng.choice(values) * rng.choice((1, 3, 10, 11, 12))
        out.append(bytes(pattern[:size]))
    return [p for p in out if len(p) == size]


@dataclass
class Oracle:
    """An ELF, our Symbols for it, and gdb's answers to every question the tests ask about it."""

    path: Path
    symbols: Symbols
    memory: Callable[[int, int], bytes]
    roots: list[str]
    exprs: list[str]
    values: list[tuple[str, bytes]]
    pcs: list[int]
    addrs: list[int]
    functions: list[str]
    gdb: dict[str, str]


def build_oracle(path: Path, work: Path, extra: tuple[str, ...] = ()) -> Oracle:
    """Our Symbols for ``path`` and gdb's answers to every question asked of it (one gdb run)."""
    symbols = Symbols.from_elf(path)
    memory = elf_memory(path)
    reader = memory if extra else None  # expressions through pointers read the ELF's initial data
    roots = symbols.variables()
    exprs = list(dict.fromkeys([*expressions(symbols, roots), *extra]))
    rng = random.Random(f"{path.name}-{path.stat().st_size}")
    sections = allocated_sections(path)
    addrs = []
    for _, start, size, _ in sections:
        step = max(4, size // 100 // 4 * 4)
        addrs += list(range(start, start + size + 8, step)) + [start + size - 1]
    addrs += [0, 0x10, 0x1000_0000]
    code = [(start, size) for _, start, size, is_code in sections if is_code]
    pcs = [pc for start, size in code for pc in range(start, start + size, 2)]
    if len(pcs) > 1200:
        pcs = sorted(rng.sample(pcs, 1200))
    functions = sorted({symbols.function_at(pc) for pc in pcs} - {None})  # type: ignore[arg-type]
    values = []
    seen_types = set()
    for expr in exprs:
        loc = symbols.locate(expr, reader)
        if loc.type is None or (loc.type.name, loc.size) in seen_types:
            continue
        seen_types.add((loc.type.name, loc.size))
        values += [(expr, p) for p in patterns(loc.type, rng, addrs)]
    # Symbolic addresses first: once gdb has read a CU's line table for `info line` it also names the padding
    # after the CU's last symbol (a fresh gdb does not, nor do we).
    commands = [f"print/a {pc:#x}" for pc in pcs] + [f"print (int *) {addr:#x}" for addr in addrs]
    commands += ["info variables"]
    commands += [f"@params {name}" for name in functions] + [f"print &{name}" for name in functions]
    for expr in exprs:
        commands += [f"print &({expr})", f"print sizeof({expr})", f"whatis {expr}", f"print {expr}"]
    commands += [f"@value {data.hex()} {expr}" for expr, data in values]
    commands += [f"info line *{pc:#x}" for pc in pcs]
    commands += [f"@frames {start:#x} {start + size:#x}" for start, size in code]
    answers = run_gdb(path, commands, work)
    return Oracle(path, symbols, memory, roots, exprs, values, pcs, addrs, functions, answers)


EXTRA_POINTER_EXPRS = ("g.next->in[1].x", "*g.next", "g.label[2]", "*name", "name[3]", "names[1][1]", "*names[0]",
                       "holders[0].self->n", "holders[0].self->self", "(*holders[0].self).n",
                       "main::calls")  # fmt: skip


@pytest.fixture(scope="module")
def oracles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Oracle]:
    return {}


@pytest.fixture(scope="module")
def types_elves(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return {}


def built_elf(name: str, source: str, flags: tuple[str, ...], tmp: Path, cache: dict[str, Path]) -> Path:
    """A test guest built for rv32 from ``source`` (once per module)."""
    if name not in cache:
        require_tool(shutil.which(CC), f"{CC} not installed (it builds the {name} guest)")
        src = tmp / f"{name}.c"
        src.write_text(source)
        out = tmp / f"{name}.elf"
        subprocess.run([CC, "-march=rv32imac_zicsr", "-mabi=ilp32", *flags, "-ffreestanding", "-nostdlib",
                        "-nostartfiles", "-static", "-Wl,-Ttext=0x80000000", "-Wl,--build-id=none",
                        "-o", str(out), str(src)], check=True, capture_output=True)  # fmt: skip
        cache[name] = out
    return cache[name]


def types_elf(dwarf: int, tmp: Path, cache: dict[str, Path]) -> Path:
    """The type-coverage guest, built for rv32 with DWARF ``dwarf``."""
    return built_elf(f"types-dwarf{dwarf}", TYPES_C, (f"-gdwarf-{dwarf}", "-O0"), tmp, cache)


def inline_elf(tmp: Path, cache: dict[str, Path]) -> Path:
    """The inlined-functions guest, built for rv32 at -O2."""
    return built_elf("inline", INLINE_C, ("-g", "-O2"), tmp, cache)


ORACLE_IDS = [*ELFS, "types-dwarf5", "types-dwarf4", "inline-rv32"]


@pytest.fixture(params=ORACLE_IDS)
def oracle(request: pytest.FixtureRequest, oracles: dict[str, Oracle], types_elves: dict[str, Path],
           tmp_path_factory: pytest.TempPathFactory) -> Oracle:  # fmt: skip
    """gdb's answers about one ELF (built once per module)."""
    name = request.param
    if name not in oracles:
        work = tmp_path_factory.mktemp(name)
        if name.startswith("types-"):
            path = types_elf(int(name[-1]), tmp_path_factory.mktemp("types"), types_elves)
            oracles[name] = build_oracle(path, work, EXTRA_POINTER_EXPRS)
        elif name == "inline-rv32":
            oracles[name] = build_oracle(inline_elf(tmp_path_factory.mktemp("inline"), types_elves), work)
        else:
            oracles[name] = build_oracle(ELFS[name], work)
    return oracles[name]


def mismatches(pairs: Iterator[tuple[str, object, object]]) -> list[str]:
    return [f"{what}: ours {ours!r}, gdb {theirs!r}" for what, ours, theirs in pairs if ours != theirs]


# -- the cross-checks --------------------------------------------------------------------------------------------
def test_variables_are_the_ones_gdb_lists(oracle: Oracle) -> None:
    assert oracle.roots
    assert set(oracle.roots) == gdb_variables(oracle.gdb["info variables"])
    for name in oracle.roots:
        loc = oracle.symbols.locate(name)
        assert loc.size > 0 and loc.type is not None, name


def test_locations_match_gdb(oracle: Oracle) -> None:
    """Address, size and type name of every expression: ``print &(E)``, ``print sizeof(E)``, ``whatis E``."""
    assert len(oracle.exprs) >= 3
    reader = oracle.memory if "types" in oracle.path.name else None

    def pairs() -> Iterator[tuple[str, object, object]]:
        for expr in oracle.exprs:
            loc = oracle.symbols.locate(expr, reader)
            addr = re.search(r"0x[0-9a-f]+", oracle.gdb[f"print &({expr})"])
            yield f"&({expr})", loc.addr, int(addr.group(), 16) if addr else oracle.gdb[f"print &({expr})"]
            yield f"sizeof({expr})", str(loc.size), oracle.gdb[f"print sizeof({expr})"]
            yield f"whatis {expr}", f"type = {loc.type.name if loc.type else None}", oracle.gdb[f"whatis {expr}"]

    assert mismatches(pairs()) == []


def test_initial_values_match_gdb(oracle: Oracle) -> None:
    """``print E`` of the ELF's initial data (gdb reads the sections; char pointers' strings too)."""

    def pairs() -> Iterator[tuple[str, object, object]]:
        for expr in oracle.exprs:
            loc = oracle.symbols.locate(expr, oracle.memory)
            try:
                data = oracle.memory(loc.addr, loc.size)
            except OSError:
                continue  # past the end of the image: gdb cannot read it either
            yield expr, oracle.symbols.format(loc.type, data, oracle.memory), oracle.gdb[f"print {expr}"]

    assert mismatches(pairs()) == []


def test_formatting_of_placed_bytes_matches_gdb(oracle: Oracle) -> None:
    """format() of random and edge-case bytes of every type, against gdb's ``print`` of the same value."""
    assert len(oracle.values) >= 10

    def pairs() -> Iterator[tuple[str, object, object]]:
        for expr, data in oracle.values:
            loc = oracle.symbols.locate(expr, oracle.memory)
            ours = oracle.symbols.format(loc.type, data, oracle.memory)
            yield f"{expr} = {data.hex()}", ours, oracle.gdb[f"@value {data.hex()} {expr}"]

    assert mismatches(pairs()) == []


def test_lines_match_info_line(oracle: Oracle) -> None:
    """line_at() of every other halfword of the code against ``info line *PC``."""
    found = 0

    def pairs() -> Iterator[tuple[str, object, object]]:
        nonlocal found
        for pc in oracle.pcs:
            text = oracle.gdb[f"info line *{pc:#x}"]
            m = re.match(r'Line (\d+) of "([^"]+)"', text)
            theirs = SourceLine(m.group(2), int(m.group(1))) if m else None
            found += theirs is not None
            yield f"info line *{pc:#x}", oracle.symbols.line_at(pc), theirs

    assert mismatches(pairs()) == []
    assert found > len(oracle.pcs) // 2


def test_functions_and_symbols_match_gdb(oracle: Oracle) -> None:
    """function_at() and ``<symbol+offset>`` against ``print/a PC``; pointers against ``print (int *) ADDR``."""
    int_pointer = oracle.symbols.lookup_type("int *")

    sizes = symbol_sizes(oracle.path)

    def pairs() -> Iterator[tuple[str, object, object]]:
        for pc in oracle.pcs:
            m = re.search(r"<([^+>]+)(?:\+(\d+))?>", oracle.gdb[f"print/a {pc:#x}"])
            if m and oracle.symbols.function_at(pc) is None and int(m.group(2) or 0) >= sizes.get(m.group(1), 1 << 64):
                continue  # padding past a sized symbol: gdb names it once it has read that CU, a fresh gdb does not
            yield f"function_at({pc:#x})", oracle.symbols.function_at(pc), m.group(1) if m else None
            yield f"symbolize({pc:#x})", oracle.symbols.symbolize(pc), (m.group(1), int(m.group(2) or 0)) if m else None
        for addr in oracle.addrs:
            ours = oracle.symbols.format(int_pointer, addr.to_bytes(int_pointer.size, "little"))
            theirs = oracle.gdb[f"print (int *) {addr:#x}"]
            m = re.search(r"<([^+>]+)(?:\+(\d+))?>", theirs)
            if m and "<" not in ours and int(m.group(2) or 0) >= sizes.get(m.group(1), 1 << 64):
                continue  # padding, as above
            yield f"(int *) {addr:#x}", ours, theirs

    assert mismatches(pairs()) == []


def test_function_entries_and_parameters_match_gdb(oracle: Oracle) -> None:
    assert oracle.functions

    def pairs() -> Iterator[tuple[str, object, object]]:
        for name in oracle.functions:
            definitions = [f for f in oracle.symbols._dwarf_functions().get(name, []) if f.entry is not None]
            if len(definitions) > 1:
                continue  # a weak default and its override: gdb's choice depends on its current source file
            entry = re.match(r"\(.*\(\*\)\(.*\)\) (0x[0-9a-f]+)", oracle.gdb[f"print &{name}"])
            if entry is None:
                continue  # an assembly label or data in a code section: not a function for gdb
            yield f"&{name}", oracle.symbols.function_entry(name), int(entry.group(1), 16) & ~1
            params = oracle.gdb[f"@params {name}"]
            if not params.startswith("ERROR"):
                yield f"parameters({name})", oracle.symbols.parameters(name), json.loads(params)

    assert mismatches(pairs()) == []


def test_frame_functions_match_gdb_blocks(oracle: Oracle) -> None:
    """frame_function() and line_at() of every halfword of the code against what a frame there shows:
    ``gdb.block_for_pc`` walked up to the first block with a function (an inlined one included; none: the
    ``print/a`` function), and ``gdb.find_pc_line``."""
    rows = []
    for start, size, command in allocated_code(oracle.path):
        rows += zip(range(start, start + size, 2), json.loads(oracle.gdb[command]), strict=True)
    assert rows

    sizes = symbol_sizes(oracle.path)

    def pairs() -> Iterator[tuple[str, object, object]]:
        for pc, (function, file, line) in rows:
            ours = oracle.symbols.frame_function(pc)
            if (
                ours is None
                and function
                and pc - oracle.symbols.function_entry(function) >= sizes.get(function, 1 << 64)
            ):
                continue  # padding past a sized symbol that no CU's aranges cover: gdb names it once it has read
                # the CU before it (GAS 2.40 writes an assembly function's DWARF range past its symbol's size)
            yield f"frame_function({pc:#x})", ours, function or oracle.symbols.function_at(pc)
            yield f"line_at({pc:#x})", oracle.symbols.line_at(pc), SourceLine(file, line) if line else None

    assert mismatches(pairs()) == []


def allocated_code(path: Path) -> list[tuple[int, int, str]]:
    """(start, size, the @frames command) of the ELF's code sections."""
    return [(start, size, f"@frames {start:#x} {start + size:#x}")
            for _, start, size, is_code in allocated_sections(path) if is_code]  # fmt: skip


# -- the named cases of the brief --------------------------------------------------------------------------------
def test_demo_watch_expressions() -> None:
    symbols = Symbols.from_elf(ELFS["cmdint-rv32"])
    scale, name = symbols.locate("probe.scale"), symbols.locate("probe.name")
    assert (scale.size, scale.type.name, scale.type.kind) == (4, "uint32_t", "uint")  # type: ignore[union-attr]
    assert (name.addr, name.size, name.type.name) == (symbols.locate("probe").addr, 16, "char [16]")  # type: ignore


def test_other_guests_watch_expressions() -> None:
    stray = Symbols.from_elf(ELFS["stray-rv32"])
    value = stray.locate("pool[0].value")
    assert value.addr == stray.locate("pool").addr + 4 and value.size == 4
    assert stray.locate("pool[1].value").addr == value.addr + 12
    isrbug = Symbols.from_elf(ELFS["isrbug-rv64"])
    guard = isrbug.locate("capture.guard")
    assert guard.addr == isrbug.locate("capture").addr + 32 and guard.type is not None
    memory = elf_memory(ELFS["isrbug-rv64"])
    assert isrbug.format(guard.type, memory(guard.addr, 4)) == str(0x600DCAFE)
    cortexm = Symbols.from_elf(ELFS["cmdbug-cortexm"])
    entry = cortexm.function_entry("cmd_set")
    assert entry % 2 == 0 and cortexm.function_at(entry) == "cmd_set" and cortexm.function_at(entry + 2) == "cmd_set"
    assert cortexm.locate("scale").size == 4
    line = cortexm.line_at(entry)
    assert line is not None and cortexm.source_path(line) == ROOT / "tests" / "guests" / "cortexm" / "cmdbug.c"
    source = cortexm.source_path(line).read_text().splitlines()  # type: ignore[union-attr]
    declared = next(n for n, text in enumerate(source, 1) if text.startswith("static void cmd_set("))
    assert cortexm.source_text(SourceLine(line.file, declared)) == source[declared - 1]
    assert cortexm.source_text(SourceLine(line.file, len(source) + 1)) is None
    assert cortexm.source_text(SourceLine("nosuch.c", 1)) is None


def test_inlined_functions(types_elves: dict[str, Path], tmp_path: Path) -> None:
    """A write inside an inlined copy: the frame shows the inlined function, ``print/a`` the one it is in."""
    demo = Symbols.from_elf(ELFS["cmdint-rv32"])
    write = 0x800002DE  # the demo's overflowing copy, `*dst++ = *text++;` in set_name, inlined into main
    assert (demo.frame_function(write), demo.function_at(write)) == ("set_name", "main")
    assert demo.source_text(demo.line_at(write)).strip() == "*dst++ = *text++;"  # type: ignore[arg-type]
    assert demo.inline_only("set_name") and not demo.inline_only("main") and not demo.inline_only("nosuch")
    with pytest.raises(SymbolError, match=re.escape("set_name is inlined at every call site (no call to count); "
                                                    "its 1 inlined copy runs inside main")):  # fmt: skip
        demo.function_entry("set_name")
    with pytest.raises(SymbolError, match='no function named "nosuch"'):
        demo.function_entry("nosuch")
    guest = Symbols.from_elf(inline_elf(tmp_path, types_elves))
    assert [name for name in ("leaf", "middle", "outer", "both", "caller", "main") if guest.inline_only(name)] == [
        "leaf", "middle", "outer"]  # fmt: skip
    both = guest.function_entry("both")  # inlined into caller, and called out of line through a pointer
    assert guest.frame_function(both) == guest.function_at(both) == "both"
    with pytest.raises(SymbolError, match=r"leaf is inlined at every call site .* inside caller, middle, outer$"):
        guest.function_entry("leaf")


def test_raw_and_cast_locations() -> None:
    symbols = Symbols.from_elf(ELFS["cmdint-rv32"])
    base = symbols.locate("probe").addr
    raw = symbols.locate(f"*(char(*)[8]){base:#x}")
    assert (raw.addr, raw.size, raw.type) == (base, 8, None)
    typed = symbols.locate(f"*(uint32_t *){base + 16}")
    assert (typed.addr, typed.size, typed.type.name) == (base + 16, 4, "uint32_t")  # type: ignore[union-attr]
    assert symbols.locate(f"*(struct probe*){base:#x}").size == symbols.locate("probe").size
    assert symbols.locate(f"((struct probe *){base:#x})->scale") == Location(
        f"((struct probe *){base:#x})->scale", base + 16, 4, symbols.locate("probe.scale").type
    )
    assert symbols.locate("*(unsigned long *)0x80001000").size == 4  # rv32: gdb's "unsigned long" is 4 bytes
    assert symbols.format(None, b"\x01\x02") == "513"
    assert symbols.format(None, b"\x01\x02\x03") == "01 02 03"


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("nosuch", 'No symbol "nosuch" in current context.'),
        ("probe.nosuch", "no member named nosuch"),
        ("probe[", "cannot parse"),
        ("probe..scale", "cannot parse"),
        ("probe.scale +", "cannot parse"),
        ("buf", "is a local variable of"),
        ("main", "is a function"),
        ("probe->scale", "-> needs a pointer"),
        ("*probe", "non-pointer"),
        ("probe.scale[1]", "cannot subscript"),
        ("*(struct nosuch *)0x80001000", "No struct type named nosuch."),
        ("*(nosuch_t *)0x80001000", 'No symbol "nosuch_t" in current context.'),
        ("*(uint32_t *)probe", "cast a number"),
        ("42", "a value, not an object"),
        ("", "empty expression"),
    ],
)
def test_locate_errors(expr: str, message: str) -> None:
    with pytest.raises(SymbolError, match=re.escape(message)):
        Symbols.from_elf(ELFS["cmdint-rv32"]).locate(expr)


def test_dereference_needs_memory(types_elves: dict[str, Path], tmp_path: Path) -> None:
    path = types_elf(5, tmp_path, types_elves)
    symbols = Symbols.from_elf(path)
    with pytest.raises(SymbolError, match="needs the guest's memory"):
        symbols.locate("g.next->ok")
    memory = elf_memory(path)
    assert symbols.locate("g.next->ok", memory).addr == symbols.locate("other.ok").addr
    assert symbols.locate("*(int *)0x80000000").type.name == "int"  # type: ignore[union-attr]
    with pytest.raises(SymbolError, match="bit-field"):
        symbols.locate("g.bits.a")
    with pytest.raises(SymbolError, match=re.escape("local variable of main()")):
        symbols.locate("local")
    assert symbols.locate("calls") == replace(symbols.locate("main::calls"), expr="calls")  # gdb needs main::
    with pytest.raises(SymbolError, match=re.escape('No symbol "nosuch" in function "main".')):
        symbols.locate("main::nosuch")
    with pytest.raises(SymbolError, match="invalid number"):
        symbols.locate("big[08]")


def test_not_elf_and_missing(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not an ELF file\n")
    with pytest.raises(SymbolError, match="is not an ELF file"):
        Symbols.from_elf(text)
    with pytest.raises(SymbolError, match="cannot read"):
        Symbols.from_elf(tmp_path / "missing.elf")
    bad = tmp_path / "bad.elf"
    bad.write_bytes(b"\x7fELF" + bytes(12))
    with pytest.raises(SymbolError):
        Symbols.from_elf(bad).function_at(0)


def test_stripped_elf(tmp_path: Path) -> None:
    """Without DWARF: functions and untyped symbols from the symbol table; typed expressions say no debug info."""
    require_tool(shutil.which(OBJCOPY), f"{OBJCOPY} not installed")
    original = Symbols.from_elf(ELFS["cmdint-rv32"])
    stripped_path = tmp_path / "cmdint-nodebug.elf"
    subprocess.run([OBJCOPY, "--strip-debug", str(ELFS["cmdint-rv32"]), str(stripped_path)], check=True)
    stripped = Symbols.from_elf(stripped_path)
    entry = original.function_entry("assert_failed")
    assert stripped.function_entry("assert_failed") == entry
    assert stripped.function_at(entry + 4) == "assert_failed" == original.function_at(entry + 4)
    assert stripped.line_at(entry) is None and stripped.parameters("set_scale") == []
    probe = stripped.locate("probe")
    assert (probe.addr, probe.size, probe.type) == (original.locate("probe").addr, 28, None)
    for expr in ("probe.scale", "*(uint32_t *)0x80001000"):
        with pytest.raises(SymbolError, match="no debug info"):
            stripped.locate(expr)
    raw = stripped.locate("*(char (*)[4])0x80001000")
    assert (raw.size, raw.type) == (4, None)
    everything_path = tmp_path / "cmdint-stripped.elf"
    subprocess.run([OBJCOPY, "--strip-all", str(ELFS["cmdint-rv32"]), str(everything_path)], check=True)
    bare = Symbols.from_elf(everything_path)
    assert bare.function_at(entry) is None and bare.frame_function(entry) is None
    assert stripped.frame_function(0x800002DE) == "main" == stripped.function_at(0x800002DE)  # no DWARF: no inlines
    assert not stripped.inline_only("set_name")
    with pytest.raises(SymbolError, match="no function named"):
        bare.function_entry("assert_failed")


def test_instructions() -> None:
    symbols = Symbols.from_elf(ELFS["cmdint-rv32"])
    assert symbols.instruction("riscv32", bytes.fromhex("13051500"), 0x80000000) == "addi a0, a0, 1"
    assert symbols.instruction("riscv64", bytes.fromhex("0505"), 0x80000000) == "c.addi a0, 1"  # capstone's way
    assert symbols.instruction("aarch64", bytes.fromhex("1f2003d5"), 0) == "nop"
    assert symbols.instruction("armv7m", bytes.fromhex("0120"), 0) == "movs r0, #1"
    assert symbols.instruction("riscv32", b"\xff\xff\xff\xff", 0) == "(unknown)"
    with pytest.raises(SymbolError, match="no disassembler"):
        symbols.instruction("mips", b"\0\0\0\0", 0)


def test_lookups_are_cached() -> None:
    symbols = Symbols.from_elf(ELFS["cmdint-rv64"])
    first = symbols.locate("probe").type
    assert symbols.locate("probe").type is first  # one CType per DIE
    pc = symbols.function_entry("main")
    assert symbols.line_at(pc) is symbols.line_at(pc)
