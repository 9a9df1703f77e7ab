"""Utilisation charts drawn as SVG on the server: no JavaScript library, no CDN."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone
from django.utils.html import escape

from pooling.models import PoolSnapshot

WIDTH, HEIGHT, PAD = 640, 180, 28
COLOURS = {"standard": "#417690", "professional": "#c77d00", "enterprise": "#2e7d32"}


@dataclass
class Series:
    name: str
    points: list[tuple[datetime, float]]  # (time, utilisation 0-100)


def utilisation_series(hours: int = 24, now: datetime | None = None) -> list[Series]:
    now = now or timezone.now()
    since = now - timedelta(hours=hours)
    by_tier: dict[str, list[tuple[datetime, float]]] = {}
    for snap in PoolSnapshot.objects.filter(taken_at__gte=since).select_related("tier").order_by("taken_at"):
        by_tier.setdefault(snap.tier.name, []).append((snap.taken_at, snap.utilisation))
    return [Series(name, points) for name, points in by_tier.items()]


def _span_label(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.0f} h" if seconds >= 36000 else f"{seconds / 3600:.1f} h"
    return f"{max(1, round(seconds / 60))} min"


def utilisation_svg(series: list[Series], hours: int = 24, now: datetime | None = None) -> str:
    """The chart spans the time there is data for (at most `hours`): a platform started an hour
    ago shows that hour across the width, not a sliver at the right edge of an empty day."""
    now = now or timezone.now()
    window_start = now - timedelta(hours=hours)
    first = min((t for s in series for t, _ in s.points), default=None)
    start = max(window_start, first) if first else window_start
    span = max((now - start).total_seconds(), 60.0)
    collecting = first is not None and first > window_start + timedelta(minutes=10)
    inner_w, inner_h = WIDTH - 2 * PAD, HEIGHT - 2 * PAD

    def x(t: datetime) -> float:
        return PAD + inner_w * max(0.0, (t - start).total_seconds()) / span

    def y(v: float) -> float:
        return PAD + inner_h * (1 - min(v, 100) / 100)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" class="utilisation-chart" '
        f'role="img" aria-label="Pool utilisation, last {_span_label(span)}">',
        f'<rect x="{PAD}" y="{PAD}" width="{inner_w}" height="{inner_h}" fill="none" stroke="#ccc"/>',
    ]
    for level in (0, 50, 80, 100):
        parts.append(f'<line x1="{PAD}" x2="{WIDTH - PAD}" y1="{y(level):.1f}" y2="{y(level):.1f}" '
                     f'stroke="#eee"/><text x="2" y="{y(level) + 4:.1f}" font-size="10">{level}%</text>')
    parts.append(f'<text x="{PAD}" y="{HEIGHT - 6}" font-size="10" class="span-start">-{_span_label(span)}</text>'
                 f'<text x="{WIDTH - PAD - 20}" y="{HEIGHT - 6}" font-size="10">now</text>')
    for i, s in enumerate(series):
        colour = COLOURS.get(s.name, "#666")
        coords = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in s.points)
        parts.append(f'<polyline class="series" data-tier="{escape(s.name)}" fill="none" stroke="{colour}" '
                     f'stroke-width="2" points="{coords}"/>')
        # One hover target per snapshot: the browser shows the <title> as a tooltip.
        for t, v in s.points:
            label = f"{s.name}: {v:.0f}% at {timezone.localtime(t):%H:%M}"
            parts.append(f'<circle class="point" cx="{x(t):.1f}" cy="{y(v):.1f}" r="4" fill="{colour}" '
                         f'fill-opacity="0.25"><title>{escape(label)}</title></circle>')
        parts.append(f'<text x="{PAD + 8 + i * 120}" y="{PAD - 8}" font-size="11" fill="{colour}">'
                     f'{escape(s.name)}</text>')
    if not series:
        parts.append(f'<text x="{WIDTH / 2 - 90}" y="{HEIGHT / 2}" font-size="12" fill="#999">'
                     'no snapshots yet (taken every 5 min)</text>')
    elif collecting:
        parts.append(f'<text class="collecting" x="{WIDTH - PAD - 260}" y="{PAD - 8}" font-size="11" fill="#999">'
                     f'still collecting: {_span_label(span)} of {hours} h so far</text>')
    parts.append("</svg>")
    return "".join(parts)
