"""A picture of a recording as one self-contained HTML page (``chronicorn view``): plotly, inlined.

:func:`render_page` turns a :class:`~gdbstub.picture.Picture` into the page, a pure function (no file, no
network: plotly.js is written into the page, so it opens offline). The timeline is plotly's: zoom by
dragging or scrolling, double-click to see it whole, hover a mark for what happened, at which icount and at
which virtual time. The lanes share one categorical row at the top (one y category per lane, first lane on
top); each value series gets a row of its own below, a step plot, all on the same icount axis. A second axis
over the first row reads virtual time: a small script relabels it at each zoom (virtual time is not linear in
the icount: idle periods warp it forward), from the clock table written into the page.

Long recordings stay usable: a lane with more than :data:`MAX_MARKS` marks is drawn as that many buckets of
equal icount width (each at its first mark, its hover saying how many it holds), a series with more than
:data:`MAX_POINTS` points keeps each bucket's first, last, lowest and highest. Every trace's ``meta`` says
what it stands for: ``{"lane": key, "marks": n, "shown": m}`` or ``{"series": title, "points": n, ...}``, and
its ``customdata`` the virtual time (ns) of each point: scripts and tests read the page back from plotly's data.
A series of positive numbers spanning three decades or more gets a log axis.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence

from .picture import ClockMap, Lane, Mark, Picture, Series, StepPoint, format_ns

MAX_MARKS = 5000  # marks drawn per lane (more are bucketed)
MAX_POINTS = 20000  # points drawn per value series (more are thinned, keeping each bucket's extremes)
MAX_CLOCK_WARPS = 20000  # warps written for the virtual-time axis's labels (more are thinned)
MAX_LABELS = 30  # UART lines written on the timeline (beside their marks) when there are no more
LABEL_CHARS = 40
LANE_PX = 30
SERIES_PX = 200
SERIES_TEXT_CHARS = 40  # a value with no number is drawn by its text, cut to this
LOG_AXIS_SPAN = 1000  # a positive series whose largest value is this many times its smallest: a log axis

SERIES_COLORS = ("#3366cc", "#dc3912", "#109618", "#990099", "#0099c6", "#dd4477")

# The look of each lane style: plotly marker settings.
STYLES: dict[str, dict[str, object]] = {
    "output": {"symbol": "square", "size": 9, "color": "#1f77b4"},
    "input": {"symbol": "triangle-right", "size": 10, "color": "#2ca02c"},
    "trap": {"symbol": "x-thin-open", "size": 10, "color": "#ff7f0e", "line": {"width": 2}},
    "query": {"symbol": "diamond", "size": 10, "color": "#9467bd"},
    "state": {"symbol": "diamond-open", "size": 12, "color": "#8c564b", "line": {"width": 2}},
    "idle": {"symbol": "line-ew", "size": 14, "color": "#17becf", "line": {"width": 3, "color": "#17becf"}},
    "check": {"symbol": "line-ns-open", "size": 12, "color": "#7f7f7f", "line": {"width": 1}},
    "end": {"symbol": "star", "size": 18, "color": "#d62728"},
}

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1em 2em; color: #222; }
h1 { font-size: 1.3em; margin-bottom: 0.3em; }
table.facts td { padding: 0 1em 0 0; vertical-align: top; }
table.facts td:first-child { color: #666; }
ul.notes { color: #8a4b00; }
pre.output { max-height: 30em; overflow: auto; background: #f6f6f6; padding: 0.5em; }
p.help { color: #666; font-size: 0.9em; }
"""

_AXIS_SCRIPT = """
(function () {
  const gd = document.getElementById('{plot_id}');
  const clock = %(clock)s;
  const timeAxis = %(time_axis)s, icountAxis = %(icount_axis)s;
  function nsAt(icount) {
    let lo = 0, hi = clock.icounts.length;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (clock.icounts[mid] <= icount) lo = mid + 1; else hi = mid; }
    return icount * Math.pow(2, clock.shift) + (lo ? clock.biases[lo - 1] : clock.bias);
  }
  function format(ns) {
    if (ns < 1e3) return ns.toFixed(0) + ' ns';
    if (ns < 1e6) return (ns / 1e3).toPrecision(4) + ' µs';
    if (ns < 1e9) return (ns / 1e6).toPrecision(4) + ' ms';
    return (ns / 1e9).toPrecision(5) + ' s';
  }
  function relabel() {
    const axis = gd._fullLayout[icountAxis];
    if (!axis || !axis.range) return;
    const [a, b] = axis.range.map(Number), vals = [], text = [];
    for (let k = 0; k <= 5; k++) {
      const icount = a + (b - a) * (k + 0.5) / 6;
      if (icount >= 0) { vals.push(icount); text.push(format(nsAt(Math.floor(icount)))); }
    }
    Plotly.relayout(gd, {[timeAxis + '.tickvals']: vals, [timeAxis + '.ticktext']: text});
  }
  gd.on('plotly_relayout', function (change) {
    if (!Object.keys(change).some(key => key.startsWith(timeAxis + '.tick'))) relabel();
  });
  relabel();
})();
"""


def plotly_text(text: str) -> str:
    """Text as plotly shows it literally: plotly reads a few HTML tags (``<b>``, ``<a href>``, ``<br>``) and
    the entities ``&lt; &gt; &amp;`` in its strings, and no other entity (so quotes stay as they are)."""
    return html.escape(text, quote=False)


def _hover(title: str, icount: int, clock: ClockMap, text: str) -> str:
    lines = "<br>".join(plotly_text(line) for line in text.splitlines() or [""])
    return f"<b>{plotly_text(title)}</b>  icount {icount:,} · {format_ns(clock.ns(icount))}<br>{lines}"


def _label(text: str) -> str:
    line = text.splitlines()[0] if text else ""
    return plotly_text(line if len(line) <= LABEL_CHARS else line[: LABEL_CHARS - 3] + "...")


def _label_side(icount: int, picture: Picture) -> str:
    """Labels read toward the middle of the timeline (the plot clips what crosses its edge)."""
    start, end = picture.start_icount, picture.end_icount
    return "top left" if icount - start > 0.6 * (end - start) else "top right"


def bucket_marks(marks: Sequence[Mark], start: int, end: int, limit: int = MAX_MARKS) -> list[Mark]:
    """At most ``limit`` marks: when there are more, one per bucket of equal icount width (at its first mark)."""
    if len(marks) <= limit:
        return list(marks)
    width = max(1, -(-(end + 1 - start) // limit))
    buckets: dict[int, list[Mark]] = {}
    for mark in marks:
        buckets.setdefault((mark.icount - start) // width, []).append(mark)
    out = []
    for group in buckets.values():
        if len(group) == 1:
            out.append(group[0])
        else:
            first, last = group[0], group[-1]
            out.append(Mark(first.icount, f"{len(group)} marks, icount {first.icount:,} .. {last.icount:,}; "
                                          f"the first:\n{first.text}"))  # fmt: skip
    return out


def thin_points(points: Sequence[StepPoint], start: int, end: int, limit: int = MAX_POINTS) -> list[StepPoint]:
    """At most about ``limit`` points: when there are more, each bucket's first, last, lowest and highest."""
    if len(points) <= limit:
        return list(points)
    width = max(1, -(-(end + 1 - start) // (limit // 4)))
    buckets: dict[int, list[StepPoint]] = {}
    for point in points:
        buckets.setdefault((point.icount - start) // width, []).append(point)
    out: list[StepPoint] = []
    for group in buckets.values():
        numbered = [p for p in group if p.number is not None]
        keep = {id(group[0]): group[0], id(group[-1]): group[-1]}
        if numbered:
            for p in (min(numbered, key=lambda p: p.number), max(numbered, key=lambda p: p.number)):
                keep[id(p)] = p
        out.extend(sorted(keep.values(), key=lambda p: p.icount))
    return out


def wants_log_axis(series: Series) -> bool:
    """A series of positive numbers spanning three decades or more reads best on a log axis (a scale of 3
    overwritten with 3420978: both steps show)."""
    numbers = [p.number for p in series.points if _is_finite(p.number)]
    return bool(numbers) and min(numbers) > 0 and max(numbers) >= LOG_AXIS_SPAN * min(numbers)  # type: ignore[operator]


def _clock_table(clock: ClockMap) -> dict[str, object]:
    warps = clock.warps
    if len(warps) > MAX_CLOCK_WARPS:  # labels only: the hover texts are exact
        step = len(warps) / MAX_CLOCK_WARPS
        warps = tuple(warps[int(k * step)] for k in range(MAX_CLOCK_WARPS)) + (warps[-1],)
    return {"shift": clock.shift, "bias": clock.bias_ns, "icounts": [w[0] for w in warps],
            "biases": [w[1] for w in warps]}  # fmt: skip


def unique_titles(lanes: Sequence[Lane]) -> list[str]:
    """The lanes' titles, a repeated one numbered (each lane is one category of the y axis)."""
    seen: dict[str, int] = {}
    titles = []
    for lane in lanes:
        seen[lane.title] = seen.get(lane.title, 0) + 1
        titles.append(lane.title if seen[lane.title] == 1 else f"{lane.title} ({seen[lane.title]})")
    return titles


def _series_trace(series: Series, picture: Picture, color: str):  # -> plotly trace
    import plotly.graph_objects as go

    points = thin_points(series.points, picture.start_icount, picture.end_icount)
    numeric = any(p.number is not None for p in points)
    if points and points[-1].icount < picture.end_icount:  # the last value holds to the end
        last = points[-1]
        points = [*points, StepPoint(picture.end_icount, last.text, last.number)]
    x = [p.icount for p in points]
    if numeric:
        y: list[object] = [p.number if _is_finite(p.number) else None for p in points]
    else:
        y = [p.text if len(p.text) <= SERIES_TEXT_CHARS else p.text[: SERIES_TEXT_CHARS - 3] + "..." for p in points]
    hover = [_hover(series.title, p.icount, picture.clock, p.text) for p in points]
    times = [picture.clock.ns(p.icount) for p in points]
    meta = {"series": series.title, "points": len(series.points), "shown": len(points), "numeric": numeric}
    return go.Scatter(x=x, y=y, mode="lines+markers", line={"shape": "hv", "width": 2, "color": color},
                      marker={"size": 5, "color": color},
                      name=series.title, hovertext=hover, hovertemplate="%{hovertext}<extra></extra>", customdata=times,
                      meta=meta, showlegend=False, connectgaps=False)  # fmt: skip


def _lane_trace(lane: Lane, title: str, picture: Picture):  # -> plotly trace
    import plotly.graph_objects as go

    shown = bucket_marks(lane.marks, picture.start_icount, picture.end_icount)
    labelled = lane.style == "output" and len(shown) <= MAX_LABELS  # a few UART lines: written beside their marks
    return go.Scatter(
        x=[m.icount for m in shown],
        y=[plotly_text(title)] * len(shown),
        mode="markers+text" if labelled else "markers",
        text=[_label(m.text) for m in shown] if labelled else None,
        textposition=[_label_side(m.icount, picture) for m in shown] if labelled else None,
        textfont={"size": 10, "color": "#444"},
        name=title,
        marker=STYLES.get(lane.style, STYLES["query"]),
        showlegend=False,
        hovertext=[_hover(title, m.icount, picture.clock, m.text) for m in shown],
        hovertemplate="%{hovertext}<extra></extra>",
        customdata=[picture.clock.ns(m.icount) for m in shown],
        meta={"lane": lane.key, "marks": len(lane.marks), "shown": len(shown)},
    )


def build_figure(picture: Picture):  # -> plotly.graph_objects.Figure
    """The plotly figure: the lanes' row, one row per series, the virtual-time axis over the first row."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    lanes = [lane for lane in picture.lanes if lane.marks]
    titles = unique_titles(lanes)
    categories = [plotly_text(title) for title in titles]  # (the y axis's labels: plotly's markup)
    rows = 1 + len(picture.series)
    lanes_px = max(3, len(lanes)) * LANE_PX + 40
    height = lanes_px + SERIES_PX * len(picture.series) + 160
    fig = make_subplots(rows=rows, cols=1, shared_xaxes=True, vertical_spacing=60 / height,
                        row_heights=[lanes_px, *([SERIES_PX] * len(picture.series))])  # fmt: skip
    for lane, title in zip(lanes, titles, strict=True):
        fig.add_trace(_lane_trace(lane, title, picture), row=1, col=1)
    for row, series in enumerate(picture.series, start=2):
        color = SERIES_COLORS[(row - 2) % len(SERIES_COLORS)]
        fig.add_trace(_series_trace(series, picture, color), row=row, col=1)
        axis_type = "log" if wants_log_axis(series) else None
        fig.update_yaxes(title_text=plotly_text(series.title), type=axis_type, row=row, col=1)
    time_axis = f"xaxis{rows + 1}"
    start, end = picture.start_icount, picture.end_icount
    pad = max(1, (end - start) // 50)
    fig.add_trace(go.Scatter(x=[start, end], y=[categories[0]] * 2 if categories else [0, 0], mode="markers",
                             marker={"opacity": 0}, hoverinfo="skip", showlegend=False, xaxis=f"x{rows + 1}",
                             meta={"axis": "virtual time"}))  # fmt: skip
    fig.update_layout({time_axis: {"overlaying": "x", "matches": f"x{rows}" if rows > 1 else "x", "side": "top",
                                   "anchor": "y", "title": {"text": "virtual time", "standoff": 4},
                                   "showgrid": False, "tickvals": [], "ticktext": []}})  # fmt: skip
    fig.update_yaxes(categoryorder="array", categoryarray=categories, autorange="reversed", type="category",
                     row=1, col=1)  # fmt: skip
    fig.update_xaxes(range=[start - pad, end + pad], row=rows, col=1, title_text="icount")
    if picture.is_whole:  # the end of history
        fig.add_vline(x=end, line={"color": STYLES["end"]["color"], "dash": "dot", "width": 1})
    fig.update_layout(height=height, margin={"l": 150, "r": 30, "t": 60, "b": 50}, hovermode="closest",
                      dragmode="zoom", template="plotly_white")  # fmt: skip
    return fig


def _facts(picture: Picture) -> str:
    rows = "".join(
        f'<tr><td>{html.escape(f.name)}</td><td title="{html.escape(f.detail)}">{html.escape(f.value)}</td></tr>'
        for f in picture.facts
    )
    return f'<table class="facts">{rows}</table>'


def _output(lines: Sequence[Mark]) -> str:
    if not lines:
        return ""
    from .picture import MAX_TEXT_LINES

    width = len(f"{lines[-1].icount}")
    shown = "\n".join(f"{m.icount:>{width}}  {html.escape(m.text)}" for m in lines[:MAX_TEXT_LINES])
    more = len(lines) - MAX_TEXT_LINES
    shown += f"\n... {more} more lines (all on the timeline)" if more > 0 else ""
    summary = f"UART output: {len(lines)} line{'s' if len(lines) != 1 else ''} (icount of each line's first byte)"
    return f'<details open><summary>{summary}</summary><pre class="output">{shown}</pre></details>'


def render_page(picture: Picture) -> str:
    """The whole page: a header about the recording, the timeline, the UART transcript (plotly.js inlined)."""
    fig = build_figure(picture)
    rows = 1 + len(picture.series)
    clock = json.dumps(_clock_table(picture.clock), separators=(",", ":"))
    script = _AXIS_SCRIPT % {"clock": clock, "time_axis": json.dumps(f"xaxis{rows + 1}"),
                             "icount_axis": json.dumps(f"xaxis{rows}" if rows > 1 else "xaxis")}  # fmt: skip
    config = {"displaylogo": False, "scrollZoom": True, "responsive": True,
              "toImageButtonOptions": {"filename": "chronicorn-view"}}  # fmt: skip
    plot = fig.to_html(full_html=False, include_plotlyjs=True, config=config, post_script=script,
                       div_id="timeline", default_height=f"{fig.layout.height}px")  # fmt: skip
    notes = "".join(f"<li>{html.escape(note)}</li>" for note in picture.notes)
    help_text = ("Drag to zoom, double-click to see it all, scroll to zoom around the pointer; hover a mark "
                 "for what happened, its icount and virtual time.")  # fmt: skip
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(picture.title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{html.escape(picture.title)}</h1>{_facts(picture)}"
        + (f'<ul class="notes">{notes}</ul>' if notes else "")
        + f'<p class="help">{help_text}</p>{plot}{_output(picture.output_lines)}</body></html>\n'
    )


def _is_finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)
