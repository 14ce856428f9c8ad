#!/usr/bin/env python3
"""Plots bench/dispatch_bench.sh's two reports as one SVG (no plotting library needed).

Per turn after the first: the prompt tokens the engines computed (summed over the sessions) under round-robin and
cache-aware dispatch, against the new tokens of the turn (what an ideal cache computes).

    plot_dispatch.py ROUND_ROBIN.json CACHE_AWARE.json OUT.svg ENGINES
"""
import json
import sys


def per_turn(path, key):
    """Turns 1.. (turn 0 prefills every session's system prompt and first message either way)."""
    target = json.load(open(path))["targets"]["native"]
    return [t[key] for t in target["per_turn"][1:]], target["totals"]["computed_over_new_after_turn_0"]


def main():
    rr_path, ca_path, out, engines = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
    rr, rr_ratio = per_turn(rr_path, "computed_tokens")
    ca, ca_ratio = per_turn(ca_path, "computed_tokens")
    new, _ = per_turn(ca_path, "new_tokens")
    series = [
        (f"round_robin (computed/new {rr_ratio})", rr, "#d62728"),
        (f"cache_aware (computed/new {ca_ratio})", ca, "#1f77b4"),
        ("new tokens", new, "#7f7f7f"),
    ]
    w, h, left, right, top, bottom = 760, 420, 70, 20, 50, 50
    turns = len(new)
    ymax = max(max(s[1]) for s in series) * 1.1 or 1
    x = lambda i: left + (w - left - right) * (i / max(1, turns - 1))
    y = lambda v: top + (h - top - bottom) * (1 - v / ymax)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
             f'<rect width="{w}" height="{h}" fill="white"/>',
             f'<text x="{w / 2}" y="20" text-anchor="middle" font-size="14">Prompt tokens computed per turn, '
             f'{engines} engine processes on one Redis</text>',
             f'<line x1="{left}" y1="{y(0)}" x2="{w - right}" y2="{y(0)}" stroke="black"/>',
             f'<line x1="{left}" y1="{top}" x2="{left}" y2="{y(0)}" stroke="black"/>',
             f'<text x="{w / 2}" y="{h - 12}" text-anchor="middle">turn</text>',
             f'<text x="16" y="{(top + y(0)) / 2}" transform="rotate(-90 16 {(top + y(0)) / 2})" '
             f'text-anchor="middle">tokens (all sessions)</text>']
    for i in range(turns):
        parts.append(f'<text x="{x(i)}" y="{y(0) + 16}" text-anchor="middle">{i + 1}</text>')
    for k in range(5):
        v = ymax * k / 4
        parts.append(f'<text x="{left - 6}" y="{y(v) + 4}" text-anchor="end">{int(v)}</text>')
        parts.append(f'<line x1="{left}" y1="{y(v)}" x2="{w - right}" y2="{y(v)}" stroke="#eeeeee"/>')
    for n, (label, values, color) in enumerate(series):
        points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values))
        dash = ' stroke-dasharray="5,4"' if label == "new tokens" else ""
        parts.append(f'<polyline points="{points}" fill="none" stroke="{color}" stroke-width="2"{dash}/>')
        for i, v in enumerate(values):
            parts.append(f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="3" fill="{color}"/>')
        parts.append(f'<line x1="{left + 20}" y1="{top + 10 + 18 * n}" x2="{left + 45}" y2="{top + 10 + 18 * n}" '
                     f'stroke="{color}" stroke-width="2"{dash}/>')
        parts.append(f'<text x="{left + 52}" y="{top + 14 + 18 * n}">{label}</text>')
    parts.append("</svg>")
    open(out, "w").write("\n".join(parts) + "\n")


if __name__ == "__main__":
    main()
