#!/usr/bin/env python3
"""Plots `llmsync bench trace` reports of long sessions (issue 19) as one plain SVG file.

Three panels against the turn: prompt tokens, computed tokens (summary runs included) and client
TTFT, one line per target of the reports given. No plotting library: the SVG is written by hand,
so the script runs anywhere python3 does.

    python3 bench/plot_compaction.py OUT.svg REPORT.json [REPORT.json ...]

It also prints one Markdown table row per target (the figures of docs/PERFORMANCE.md): computed/new,
compactions, prompt range, computed and TTFT p50 of the turns that adopt a compacted prefix
against the other turns, bytes sent and wall time.
"""
import json
import sys
from xml.sax.saxutils import escape

COLOURS = ["#2d5bd7", "#d7572d", "#2a9d4b", "#8a3ab9", "#b08a00"]
LABELS = {
    "native": "native API, auto",
    "llmsync_chat_completions_stateless": "chat completions (full re-send), llmsync.context auto",
    "llmsync_chat_completions_client_truncation": "chat completions, client drops oldest turns",
}
PANELS = [("prompt_tokens", "prompt tokens"), ("computed_tokens", "computed tokens (incl. summaries)"),
          ("ttft_ms_p50", "TTFT (ms, client)")]
W, PANEL_H, LEFT, RIGHT, TOP, GAP = 900, 190, 70, 20, 50, 45


def series(reports):
    out = []
    for report in reports:
        for name, target in report["targets"].items():
            if target.get("available"):
                out.append((LABELS.get(name, name), target["per_turn"], target["totals"]))
    return out


def median(values):
    v = sorted(values)
    return v[(len(v) - 1) // 2] if v else 0


def table_row(label, per, totals):
    rest = per[1:]  # turn 0 prefills the pinned layer
    comp = [t for t in rest if t["compacted"]]
    other = [t for t in rest if not t["compacted"]]
    prompts = [t["prompt_tokens"] for t in per]
    return (f"| {label} | {totals.get('computed_over_new_after_turn_0', 0):g} | {len(comp)} | "
            f"{min(prompts)}–{max(prompts)} | {median([t['computed_tokens'] for t in comp])} | "
            f"{median([t['computed_tokens'] for t in other])} | "
            f"{median([t['ttft_ms_p50'] for t in comp]):.0f} ms | "
            f"{median([t['ttft_ms_p50'] for t in other]):.0f} ms, "
            f"{max([t['ttft_ms_p50'] for t in other], default=0):.0f} ms | "
            f"{totals['bytes_sent'] / 1000:.0f} KB | {totals['wall_s']:.0f} s |")


def nice_max(v):
    if v <= 0:
        return 1
    step = 10 ** (len(str(int(v))) - 1)
    return (int(v / step) + 1) * step


def panel(svg, y0, key, title, lines, turns):
    ymax = nice_max(max((t[key] for _, per, _ in lines for t in per), default=1))
    plot_w = W - LEFT - RIGHT
    svg.append(f'<text x="{LEFT}" y="{y0 - 8}" font-size="13" font-weight="600">{escape(title)}</text>')
    svg.append(f'<rect x="{LEFT}" y="{y0}" width="{plot_w}" height="{PANEL_H}" fill="none" stroke="#ccc"/>')
    for i in range(5):
        v = ymax * i / 4
        y = y0 + PANEL_H - PANEL_H * i / 4
        svg.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>')
        svg.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" font-size="10" text-anchor="end">{v:g}</text>')
    for i in range(0, turns + 1, max(1, turns // 10)):
        x = LEFT + plot_w * i / max(1, turns - 1)
        svg.append(f'<text x="{x:.1f}" y="{y0 + PANEL_H + 13}" font-size="10" text-anchor="middle">{i}</text>')
    for k, (_, per, _) in enumerate(lines):
        pts = " ".join(f"{LEFT + plot_w * t['turn'] / max(1, turns - 1):.1f},"
                       f"{y0 + PANEL_H - PANEL_H * min(t[key], ymax) / ymax:.1f}" for t in per)
        svg.append(f'<polyline points="{pts}" fill="none" stroke="{COLOURS[k % len(COLOURS)]}" '
                   f'stroke-width="1.3"/>')


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    reports = [json.load(open(p)) for p in sys.argv[2:]]
    lines = series(reports)
    if not lines:
        sys.exit("no target with data in the reports")
    turns = max(len(per) for _, per, _ in lines)
    height = TOP + len(PANELS) * (PANEL_H + GAP) + 20 * len(lines) + 20
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{height}" '
           f'font-family="sans-serif" viewBox="0 0 {W} {height}">',
           f'<rect width="{W}" height="{height}" fill="#fff"/>',
           f'<text x="{LEFT}" y="22" font-size="15" font-weight="700">Past the context: {turns} turns, '
           f'per turn (x: turn)</text>']
    for i, (key, title) in enumerate(PANELS):
        panel(svg, TOP + i * (PANEL_H + GAP), key, title, lines, turns)
    y = TOP + len(PANELS) * (PANEL_H + GAP)
    for k, (label, _, totals) in enumerate(lines):
        ratio = totals.get("computed_over_new_after_turn_0", 0)
        svg.append(f'<rect x="{LEFT}" y="{y - 9}" width="14" height="3" fill="{COLOURS[k % len(COLOURS)]}"/>')
        svg.append(f'<text x="{LEFT + 20}" y="{y - 4}" font-size="12">{escape(label)}: computed/new '
                   f'{ratio:g}</text>')
        y += 20
    svg.append("</svg>")
    for label, per, totals in lines:
        print(table_row(label, per, totals))
    with open(sys.argv[1], "w") as f:
        f.write("\n".join(svg) + "\n")


if __name__ == "__main__":
    main()
