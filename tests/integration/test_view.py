"""chronicorn view: the page of a recording, loaded in a real headless browser (Debian's chromium, driven by
Playwright) with every network request blocked; what it plots is read back from plotly's own data and compared
with what the recording holds.

Set CHRONICORN_UPDATE_SCREENSHOT=1 to also write the demo recording's page as docs/view.png (the README's).
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from gdbstub.cli import main
from gdbstub.picture import EVENT_KINDS, ClockMap, Fact, Lane, Mark, Picture, Series, StepPoint
from gdbstub.view import MAX_MARKS, MAX_POINTS, bucket_marks, plotly_text, render_page, thin_points
from replay.recording import LoadedRecording, load_recording
from tests.conftest import GUESTS, ROOT, guest, require_tool, run_cli, run_machine

DEMO_INPUT = GUESTS / "inputs" / "cmdint-bug.txt"
MS = 1_000_000


@dataclass
class LoadedPage:
    """What the browser saw: plotly's traces, the virtual-time axis, every problem it reported."""

    traces: list[dict]
    time_ticks: list[str]
    transcript: str
    series_axes: list[str]  # the y axis type of each value series ("linear", "log", "category")
    problems: list[str] = field(default_factory=list)  # console errors, page errors, network requests
    screenshot: Path | None = None

    def lane(self, key: str) -> dict:
        found = [t for t in self.traces if (t.get("meta") or {}).get("lane") == key]
        assert len(found) == 1, f"lane {key}: {len(found)} traces ({[t.get('meta') for t in self.traces]})"
        return found[0]

    def lanes(self) -> dict[str, dict]:
        return {t["meta"]["lane"]: t for t in self.traces if "lane" in (t.get("meta") or {})}


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    require_tool(shutil.which("chromium"), "chromium (Debian's apt package) is needed to load chronicorn view's page")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
        yield chromium
        chromium.close()


READ_BACK = """() => {
  const gd = document.querySelector('.js-plotly-plot');
  const plain = v => (v == null ? null : Array.from(v));
  return {
    traces: gd.data.map(t => ({name: t.name, x: plain(t.x), y: plain(t.y), hovertext: plain(t.hovertext),
                               customdata: plain(t.customdata), meta: t.meta || null})),
    ticks: Array.from(gd.layout[Object.keys(gd.layout).filter(k => (gd.layout[k] || {}).overlaying).pop()]
                      .ticktext || []),
    transcript: (document.querySelector('pre.output') || {}).textContent || '',
    seriesAxes: gd.data.filter(t => t.meta && t.meta.series !== undefined)
                       .map(t => gd._fullLayout['yaxis' + (t.yaxis || 'y').slice(1)].type),
  };
}"""


def load(
    browser: object, page_path: Path, screenshot: Path, then: Callable[[object], None] | None = None
) -> LoadedPage:
    """Open the page offline (every request but the page itself refused and noted), wait until plotly has drawn
    it and the virtual-time axis is labelled, do ``then(page)`` if given, read the plot back, take a screenshot."""
    problems: list[str] = []
    page = browser.new_page(viewport={"width": 1400, "height": 900})  # type: ignore[attr-defined]
    url = page_path.resolve().as_uri()

    def route(request_route: object) -> None:
        request = request_route.request  # type: ignore[attr-defined]
        if request.url == url:
            request_route.continue_()  # type: ignore[attr-defined]
        else:
            problems.append(f"network request: {request.url}")
            request_route.abort()  # type: ignore[attr-defined]

    page.route("**/*", route)
    page.on("console", lambda message: problems.append(f"console {message.type}: {message.text}")
            if message.type in ("error", "assert") else None)  # fmt: skip
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    try:
        page.goto(url, wait_until="load")
        page.wait_for_function("""() => { const gd = document.querySelector('.js-plotly-plot');
            return gd && gd.data && gd._fullLayout && Object.values(gd.layout).some(
                a => a && a.overlaying && (a.ticktext || []).length > 0); }""")  # fmt: skip
        if then is not None:
            then(page)
        data = page.evaluate(READ_BACK)
        page.screenshot(path=str(screenshot), full_page=True)
    finally:
        page.close()
    return LoadedPage(data["traces"], data["ticks"], data["transcript"], data["seriesAxes"], problems, screenshot)


def record(tmp_path: Path, elf: Path, *options: str, uart: bytes = b"",
           name: str = "r.chrec") -> tuple[Path, bytes, LoadedRecording]:  # fmt: skip
    recording, uart_file = tmp_path / name, tmp_path / "uart.txt"
    uart_file.write_bytes(uart)
    recorded = run_cli("record", str(elf), "-o", str(recording), "--uart-input", str(uart_file), *options)
    assert recorded.returncode in (0, 7), recorded.stderr
    with recording.open("rb") as stream:
        return recording, recorded.stdout, load_recording(stream)


def view(tmp_path: Path, recording: Path, *options: str) -> Path:
    page = tmp_path / "view.html"
    result = run_cli("view", str(recording), "-o", str(page), *options)
    assert result.returncode == 0, result.stderr
    assert b"Traceback" not in result.stderr
    return page


def uart_lines(output: bytes) -> list[str]:
    return output.decode().splitlines()


def check_lanes_match_the_recording(shown: LoadedPage, loaded: LoadedRecording, output: bytes) -> None:
    """One mark per UART line (its text in the hover), per input event of each kind, per snapshot and per
    verification point; the end where the recording ends; nothing that went wrong in the browser."""
    assert shown.problems == []
    lines = uart_lines(output)
    if lines:
        out = shown.lane("uart-output")
        assert out["meta"]["marks"] == len(out["x"]) == len(lines)
        assert [h.rsplit("<br>", 1)[-1] for h in out["hovertext"]] == [plotly_text(line) for line in lines]
        assert out["x"] == sorted(out["x"]) and out["customdata"] == sorted(out["customdata"])
        assert shown.transcript.split("\n")[0].split(None, 1)[1] == lines[0]
    kinds = Counter(EVENT_KINDS[type(e)].key for e in loaded.inputs)
    for key, count in kinds.items():
        lane = shown.lane(key)
        icounts = [e.icount for e in loaded.inputs if EVENT_KINDS[type(e)].key == key]
        assert lane["meta"]["marks"] == count and lane["meta"]["shown"] == len(lane["x"]), key
        if count <= MAX_MARKS:
            assert lane["x"] == icounts
        else:  # (--sleep on logs a warp at each poll of the host while idle: thousands at a few icounts)
            assert len(lane["x"]) < count and set(lane["x"]) <= set(icounts) and lane["x"][0] == icounts[0]
    absent = {view.key for view in EVENT_KINDS.values()} - kinds.keys()
    assert not absent & shown.lanes().keys()
    assert len(shown.lane("snapshots")["x"]) == 1 + len(loaded.keyframes) + len(loaded.named_snapshots)
    assert len(shown.lanes().get("bookmarks", {"x": []})["x"]) == len(loaded.bookmarks)
    if loaded.verify_points:
        assert shown.lane("verify")["x"] == sorted(loaded.verify_points)
    end = shown.lane("end")
    assert end["x"] == [loaded.last_icount]
    assert loaded.end is not None and f"end: {loaded.end.kind.label}" in end["hovertext"][0]
    assert len(shown.time_ticks) == 6 and all(t.endswith("s") for t in shown.time_ticks)


def scale_bytes(elf: Path) -> str:
    """``ADDR 4``: where the demo firmware keeps ``probe.scale`` (its ELF's symbol table, read here)."""
    from elftools.elf.elffile import ELFFile

    with elf.open("rb") as stream:
        (probe,) = [s for s in ELFFile(stream).get_section_by_name(".symtab").iter_symbols() if s.name == "probe"]
        return f"{probe['st_value'] + 16:#x} 4"  # struct probe { char name[16]; uint32_t scale; ... }


def test_the_demo_recording_pictured(browser: object, tmp_path: Path) -> None:
    """The bug hunt's recording: its two UART lines, 128 UART input events, the idle waits, the interrupts, the
    exit (code 7); probe.scale's writes as marks and its value as a step plot: 1, then 3 (``scale 3``), then
    the bytes "234\\0" of the 19-character name that overruns it, before the ASSERT line (a log axis: both show).
    Hovering the last write shows what it did and where."""
    elf = ROOT / "gdbstub/demo/firmware/rv32/cmdint.elf"
    recording, output, loaded = record(tmp_path, elf, uart=DEMO_INPUT.read_bytes(), name="cmdint-bug.chrec")
    assert loaded.end is not None and loaded.end.code == 7
    page = view(tmp_path, recording, "--query", "writes probe.scale", "--value", "probe.scale")
    hover_text: list[str] = []
    shown = load(browser, page, tmp_path / "view.png", lambda p: hover_text.append(hover(p, "query-1")))
    check_lanes_match_the_recording(shown, loaded, output)
    assert "exited with code 7" in shown.lane("end")["hovertext"][0]
    assert "ASSERT FAILED" in shown.transcript
    interrupts = " ".join(shown.lane("interrupts")["hovertext"])
    assert "machine timer" in interrupts and "machine external" in interrupts  # the 1 ms tick, the UART's RX
    (scale,) = [t for t in shown.traces if "series" in (t.get("meta") or {})]
    assert scale["meta"]["series"] == "probe.scale" and shown.series_axes == ["log"]
    numbers = scale["y"][:-1]  # (the last point repeats the last value at the end of history)
    assert numbers[0] == 1 and numbers[1] == 3 and numbers[-1] == int.from_bytes(b"234\0", "little")
    writes = shown.lane("query-1")
    assert [x + 1 for x in writes["x"]] == scale["x"][1:-1]  # each write: the value from the next instruction
    assert writes["x"][-1] < shown.lane("uart-output")["x"][-1]  # the overrun, then the ASSERT
    assert "13106 -> 3420978" in hover_text[0] and "cmdint.c" in hover_text[0]
    if os.environ.get("CHRONICORN_UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(shown.screenshot, ROOT / "docs" / "view.png")


@pytest.mark.slow
def test_a_value_and_a_query_named_by_address(browser: object, tmp_path: Path) -> None:
    """``--value 'ADDR LEN'`` and ``--query 'writes ADDR LEN'`` (as a query names bytes without symbols) give
    what the names give."""
    elf = ROOT / "gdbstub/demo/firmware/rv32/cmdint.elf"
    recording, _, _ = record(tmp_path, elf, uart=DEMO_INPUT.read_bytes())
    scale = scale_bytes(elf)
    page = view(tmp_path, recording, "--value", "probe.scale", "--value", scale, "--query", "writes probe.scale",
                "--query", f"writes {scale}")  # fmt: skip
    shown = load(browser, page, tmp_path / "view.png")
    assert shown.problems == []
    by_name, by_address = [t for t in shown.traces if "series" in (t.get("meta") or {})]
    assert by_address["meta"]["series"] == scale and len(by_name["x"]) > 2
    assert (by_name["x"], by_name["y"]) == (by_address["x"], by_address["y"])
    assert shown.lane("query-1")["x"] == shown.lane("query-2")["x"]


def hover(page: object, lane: str, mark: int = -1) -> str:
    """Hover (as the pointer would) a mark of a lane (-1: the last); the hover label's text once it shows."""
    page.evaluate(f"""() => {{ const gd = document.querySelector('.js-plotly-plot');
        const curve = gd.data.findIndex(t => t.meta && t.meta.lane === {lane!r});
        const point = {mark} < 0 ? gd.data[curve].x.length + {mark} : {mark};
        Plotly.Fx.hover(gd, [{{curveNumber: curve, pointNumber: point}}], 'xy'); }}""")  # type: ignore[attr-defined]  # fmt: skip
    label = page.wait_for_selector(".hoverlayer .hovertext")  # type: ignore[attr-defined]
    return label.text_content()


@dataclass
class Pictured:
    """A recording of a guest and its page as the browser saw it."""

    recording: Path
    output: bytes
    loaded: LoadedRecording
    shown: LoadedPage


@pytest.fixture(scope="module")
def timer(browser: object, tmp_path_factory: pytest.TempPathFactory) -> Pictured:
    tmp_path = tmp_path_factory.mktemp("timer")
    recording, output, loaded = record(tmp_path, guest("rv32", "timer"))
    return Pictured(recording, output, loaded, load(browser, view(tmp_path, recording), tmp_path / "view.png"))


def test_virtual_time_follows_the_timer_guest_idle_periods(timer: Pictured) -> None:
    """The timer guest idles until each 1 ms tick: each ``tick k`` line is printed at virtual time k ms and
    some (the icount alone would say ~0.1 ms), after the k-th timer interrupt; the clock at the end agrees with
    the machine's own."""
    shown = timer.shown
    check_lanes_match_the_recording(shown, timer.loaded, timer.output)
    out, lines = shown.lane("uart-output"), uart_lines(timer.output)
    ticks = [(int(line.split()[1]), ns) for line, ns in zip(lines, out["customdata"], strict=True) if "tick" in line]
    assert len(ticks) == 5
    for k, ns in ticks:
        assert k * MS <= ns < (k + 1) * MS, (k, ns)
    assert len(shown.lane("idle")["x"]) == len(ticks)  # one wfi per tick
    interrupts = shown.lane("interrupts")
    assert len(interrupts["x"]) == len(ticks) and all("machine timer" in h for h in interrupts["hovertext"])
    printed = [x for line, x in zip(lines, out["x"], strict=True) if "tick" in line]
    assert all(taken < shown for taken, shown in zip(interrupts["x"], printed, strict=True))
    alone = run_machine(guest("rv32", "timer"))
    assert shown.lane("end")["customdata"] == [alone.machine.clock.ns(alone.result.icount)]


@pytest.mark.slow
def test_zooming_relabels_virtual_time_and_a_window_shows_only_itself(
    timer: Pictured, browser: object, tmp_path: Path
) -> None:
    """Zoomed in around "tick 3", every label of the virtual-time axis reads that line's time; ``--from``/``--to``
    around "tick 2" .. "tick 4" show those three lines and the interrupts between them, at the same times."""
    out, lines = timer.shown.lane("uart-output"), uart_lines(timer.output)
    page = timer.shown.screenshot.parent / "view.html"  # type: ignore[union-attr]
    at, ns = out["x"][lines.index("tick 3")], out["customdata"][lines.index("tick 3")]
    zoom = f"""gd => Plotly.relayout(gd, {{'xaxis.range': [{at - 2}, {at + 2}]}})"""
    zoomed = load(browser, page, tmp_path / "zoomed.png", lambda p: relabelled(p, zoom))
    assert zoomed.problems == [] and len(zoomed.time_ticks) == 6
    assert all(abs(read_ns(label) - ns) <= ns / 1000 for label in zoomed.time_ticks), (zoomed.time_ticks, ns)
    first, last = lines.index("tick 2"), lines.index("tick 4")
    start, end = out["x"][first], out["x"][last]
    window = load(browser, view(tmp_path, timer.recording, "--from", str(start), "--to", str(end)), tmp_path / "w.png")
    assert window.problems == []
    assert [h.rsplit("<br>", 1)[-1] for h in window.lane("uart-output")["hovertext"]] == lines[first : last + 1]
    assert window.lane("uart-output")["customdata"] == out["customdata"][first : last + 1]
    interrupts = timer.shown.lane("interrupts")["x"]
    assert window.lane("interrupts")["x"] == [x for x in interrupts if start <= x <= end]
    assert len(window.lane("interrupts")["x"]) == 2 and "end" not in window.lanes()


def relabelled(page: object, action: str) -> None:
    """Do ``action(gd)`` in the page and wait until the virtual-time axis has new labels."""
    page.evaluate(f"""() => {{ const gd = document.querySelector('.js-plotly-plot');
        window.labelsBefore = JSON.stringify(Object.values(gd.layout).find(a => a && a.overlaying).ticktext);
        ({action})(gd); }}""")  # type: ignore[attr-defined]  # fmt: skip
    page.wait_for_function("""() => { const gd = document.querySelector('.js-plotly-plot');
        return JSON.stringify(Object.values(gd.layout).find(a => a && a.overlaying).ticktext) !== window.labelsBefore;
    }""")  # type: ignore[attr-defined]  # fmt: skip


def read_ns(label: str) -> float:
    """A virtual-time label (``3.021 ms``) in nanoseconds."""
    number, unit = label.split()
    return float(number) * {"ns": 1, "µs": 1e3, "ms": 1e6, "s": 1e9}[unit]


LANE_OF = {"echo-markup": "uart-input", "rtc": "host-clock", "virtioblk": "io-completion", "sleep-on": "clock-warp",
           "netping": "net-frame", "traps": "exceptions", "aarch64": "interrupts"}  # fmt: skip


@pytest.mark.parametrize("what", ["echo-markup", *(pytest.param(w, marks=pytest.mark.slow) for w in LANE_OF
                                                    if w != "echo-markup")])  # fmt: skip
def test_every_kind_of_event_gets_its_lane(browser: object, tmp_path: Path, what: str) -> None:
    """A host clock read, disk completions, logged idle warps (--sleep on), network frames, exceptions, an AArch64
    guest's timer interrupts, and guest text that looks like markup (shown as text: no element made of it)."""
    options: list[str] = []
    uart = b""
    elf = guest("rv32", {"sleep-on": "timer", "echo-markup": "echo"}.get(what, what))
    if what == "virtioblk":
        disk = tmp_path / "disk.img"
        shutil.copyfile(GUESTS / "inputs" / "disk.img", disk)
        options = ["--drive", str(disk)]
    elif what == "sleep-on":
        options = ["--sleep", "on"]
    elif what == "netping":
        options = ["--net", "user"]
    elif what == "echo-markup":
        uart = b'<b>bold</b> & "w" <script>x</script>\nq'
    elif what == "aarch64":
        elf = ROOT / "tests" / "guests" / "aarch64" / "build" / "timer.elf"
    recording, output, loaded = record(tmp_path, elf, *options, uart=uart)
    hovered: list[str] = []
    shown = load(browser, view(tmp_path, recording), tmp_path / "view.png",
                 (lambda p: hovered.append(hover(p, "uart-output", 1))) if what == "echo-markup" else None)  # fmt: skip
    check_lanes_match_the_recording(shown, loaded, output)
    assert shown.lanes()[LANE_OF[what]]["x"]
    if what == "echo-markup":
        line = '<B>BOLD</B> & "W" <SCRIPT>X</SCRIPT>'
        assert hovered[0].endswith(line) and line in shown.transcript  # the characters, as they came
    if what == "traps":  # one line per trap the guest handled
        assert len(shown.lane("exceptions")["x"]) == sum(line.startswith("trap ") for line in uart_lines(output))
    if what == "netping":  # what the network gave the guest: its frames' headers
        assert all("network frame, slot" in h and " -&gt; " in h for h in shown.lane("net-frame")["hovertext"])
    if what == "aarch64":  # one interrupt and one idle period per tick
        ticks = sum(line.startswith("tick ") for line in uart_lines(output))
        assert len(shown.lane("interrupts")["x"]) == len(shown.lane("idle")["x"]) == ticks > 0


@pytest.mark.slow
def test_a_damaged_recording_pictures_its_intact_part(browser: object, tmp_path: Path) -> None:
    """A recording cut inside its last chunk (a killed recorder): the page shows the intact part, says so, and
    its end is where the intact part ends, with no end record."""
    recording, _, _ = record(tmp_path, guest("rv32", "timer"), "--sleep", "on")  # (thousands of logged warps)
    data = recording.read_bytes()
    recording.write_bytes(data[: len(data) - 40])
    with recording.open("rb") as stream:
        loaded = load_recording(stream)
    assert loaded.damage is not None and loaded.end is None
    page = tmp_path / "view.html"
    result = run_cli("view", str(recording), "-o", str(page))
    assert result.returncode == 0 and b"damaged" in result.stderr, result.stderr
    shown = load(browser, page, tmp_path / "view.png")
    assert shown.problems == []
    end = shown.lane("end")
    assert end["x"] == [loaded.last_icount] and "history ends: no end record (damaged at byte" in end["hovertext"][0]
    assert shown.lane("clock-warp")["meta"]["marks"] == sum(1 for e in loaded.inputs if type(e).__name__ == "ClockWarp")


@pytest.mark.slow
def test_sound_recording_of_95_million_instructions(browser: object, tmp_path: Path) -> None:
    """sndtone: disk-like completions, captured and played audio, 90 verification points, 95 M instructions."""
    recording, output, loaded = record(tmp_path, guest("rv32", "sndtone"), "--audio", "in=sine:440")
    shown = load(browser, view(tmp_path, recording), tmp_path / "view.png")
    check_lanes_match_the_recording(shown, loaded, output)
    assert {"audio-input", "audio-output", "verify"} <= shown.lanes().keys()


@pytest.mark.slow
def test_bookmarks_and_named_snapshots_saved_with_a_history(browser: object, tmp_path: Path) -> None:
    """A history served, named (``monitor snapshot save A``, ``monitor bookmark B``), written to by the debugger,
    then saved: the page shows the named snapshot and the keyframe with the snapshots, the bookmark in its own
    lane, at their icounts."""
    from gdbstub.monitor import Monitor
    from machine.inputs import ScriptedInputs
    from machine.loader import load_image
    from machine.machine import Machine, MachineConfig
    from replay.history import HistoryInputs
    from replay.recording import make_header
    from replay.saver import save_timeline
    from replay.timeline import Timeline

    inputs = HistoryInputs([], 0, ScriptedInputs())
    machine = Machine(load_image(guest("rv32", "timer")), inputs, lambda byte: None, MachineConfig())
    timeline = Timeline(machine, inputs)
    monitor = Monitor(timeline, lambda: "", lambda path, overwrite: "")
    timeline.run_forward(until=5_000)
    assert monitor("snapshot save A").startswith("snapshot 'A' saved")
    timeline.run_forward(until=7_000)
    timeline.note_write()  # (as after a debugger's write: here, of the values already there)
    timeline.run_forward(until=9_000)
    assert monitor("bookmark B").startswith("bookmark 'B' at icount 9000")
    timeline.run_forward()
    header = make_header(machine.image, machine.arch.name, machine.config.ram_size, 3, "off", {})
    recording = save_timeline(timeline, header, tmp_path, "named.chrec")
    with recording.open("rb") as stream:
        loaded = load_recording(stream)
    assert [n.name for n in loaded.named_snapshots] == ["A"] and [n for n, _ in loaded.bookmarks] == ["B"]
    assert [k.icount for k in loaded.keyframes] == [7_000]
    shown = load(browser, view(tmp_path, recording), tmp_path / "view.png")
    assert shown.problems == []
    snapshots, bookmarks = shown.lane("snapshots"), shown.lane("bookmarks")
    assert snapshots["x"] == [0, 5_000, 7_000] and "named snapshot A" in snapshots["hovertext"][1]
    assert "keyframe: the state after a debugger write" in snapshots["hovertext"][2]
    assert bookmarks["x"] == [9_000] and "bookmark B, pc 0x" in bookmarks["hovertext"][0]


@pytest.mark.slow
def test_a_long_picture_stays_small(browser: object, tmp_path: Path) -> None:
    """100 000 marks on a lane and 60 000 points of a series over 10^8 instructions: the page draws at most
    MAX_MARKS and about MAX_POINTS of them, says how many it stands for, and loads without error."""
    end = 10**8
    marks = tuple(Mark(i * 997, f"event {i}") for i in range(100_000))
    points = tuple(StepPoint(i * 1601, str(i % 1000), float(i % 1000)) for i in range(60_000))
    picture = Picture("synthetic", (Fact("what", "a long run"),), end, ClockMap(3, 0, ((5000, 10**6),)),
                      (Lane("many", "many", "input", marks), Lane("end", "end", "end", (Mark(end, "end"),))),
                      (Series("x", points),))  # fmt: skip
    page_path = tmp_path / "long.html"
    page_path.write_text(render_page(picture), encoding="utf-8")
    shown = load(browser, page_path, tmp_path / "long.png")
    assert shown.problems == []
    many = shown.lane("many")
    assert many["meta"] == {"lane": "many", "marks": 100_000, "shown": len(many["x"])}
    assert len(many["x"]) <= MAX_MARKS and many["x"][0] == 0
    (series,) = [t for t in shown.traces if (t.get("meta") or {}).get("series") == "x"]
    assert series["meta"]["points"] == 60_000 and len(series["x"]) <= MAX_POINTS + 2
    assert max(series["y"]) == 999 and min(series["y"]) == 0  # the extremes survive the thinning
    assert page_path.stat().st_size < 12 << 20


def test_bucketing_and_thinning_and_the_clock() -> None:
    marks = [Mark(i, f"m{i}") for i in range(0, 10_000, 2)]
    assert bucket_marks(marks, 0, 10_000, limit=10_000) == marks
    bucketed = bucket_marks(marks, 0, 10_000, limit=100)
    assert len(bucketed) <= 100 and bucketed[0].icount == 0 and "9,998" in bucketed[-1].text
    assert sum(int(m.text.split()[0]) for m in bucketed) == len(marks)
    points = [StepPoint(i, "", float((i * 7919) % 1009)) for i in range(10_000)]
    thinned = thin_points(points, 0, 10_000, limit=400)
    assert len(thinned) <= 400 and thinned == sorted(thinned, key=lambda p: p.icount)
    assert {p.number for p in thinned} >= {0.0, 1008.0}
    clock = ClockMap(3, 5, ((10, 100), (20, 1000)))
    assert [clock.ns(i) for i in (0, 9, 10, 19, 20, 21)] == [5, 77, 180, 252, 1160, 1168]


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    not_a_recording = tmp_path / "notes.txt"
    not_a_recording.write_text("hello\n")
    recording, _, _ = record(tmp_path, guest("rv32", "hello"))
    cases = [
        [str(not_a_recording), "-o", str(tmp_path / "a.html")],
        [str(tmp_path / "missing.chrec"), "-o", str(tmp_path / "b.html")],
        [str(recording), "-o", str(recording / "c.html")],  # a path under a file
        [str(recording), "-o", str(tmp_path / "no" / "such" / "dir.html")],
        [str(recording), "-o", str(tmp_path)],  # a directory
        [str(recording), "-o", str(recording)],  # the recording itself
        [str(recording), "-o", str(tmp_path / "d.html"), "--guest", str(not_a_recording)],
        [str(recording), "-o", str(tmp_path / "e.html"), "--to", "999999999"],  # past the end
        [str(recording), "-o", str(tmp_path / "f.html"), "--from", "100", "--to", "100"],
        [str(recording), "-o", str(tmp_path / "g.html"), "--query", "writes"],  # no target
        [str(recording), "-o", str(tmp_path / "h.html"), "--query", "'unbalanced"],
        [str(recording), "-o", str(tmp_path / "i.html"), "--query", "frobnicate x"],
        [str(recording), "-o", str(tmp_path / "j.html"), "--value", "no_such_symbol"],
    ]
    for args in cases:  # (in this process: the command line's own main, without an interpreter's start-up each)
        code = main(["view", *args])
        lines = capsys.readouterr().err.splitlines()
        assert code == 2, (args, lines)
        assert len(lines) == 1 and lines[0].startswith("chronicorn: "), (args, lines)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "r.chrec", "uart.txt"]  # nothing written
    assert recording.stat().st_size > 0
