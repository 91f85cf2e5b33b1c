"""The arms' chart: both arms' cumulative success rate over time, as SVG geometry.

Pure (no Django): the bundle's series in, polyline points and axis labels out; the
template ``trials/_arm_chart.html`` draws them, so the pages need no chart library.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

WIDTH = 480
HEIGHT = 180
MARGIN_LEFT = 36
MARGIN_RIGHT = 8
MARGIN_TOP = 8
MARGIN_BOTTOM = 22
ARMS = ("candidate", "champion")


@dataclass(frozen=True)
class ArmLine:
    arm: str
    points: str  # "x,y x,y …" for <polyline points>
    last_x: float
    last_y: float
    n: int
    rate: float


@dataclass(frozen=True)
class ArmChart:
    width: int = WIDTH
    height: int = HEIGHT
    left: int = MARGIN_LEFT
    right: int = WIDTH - MARGIN_RIGHT
    top: int = MARGIN_TOP
    bottom: int = HEIGHT - MARGIN_BOTTOM
    lines: list[ArmLine] = field(default_factory=list)
    y_ticks: list[tuple[float, str]] = field(default_factory=list)
    start_label: str = ""
    end_label: str = ""

    @property
    def empty(self) -> bool:
        return not self.lines


def arm_chart(series: dict[str, Any]) -> ArmChart:
    """Lay out both arms on one time axis (x) against the success rate from 0 to 1 (y)."""
    moments = {
        arm: [(datetime.fromisoformat(p["at"]), p) for p in series.get(arm) or []] for arm in ARMS
    }
    every = [moment for points in moments.values() for moment, _ in points]
    chart = ArmChart()
    ticks = [(chart.bottom - (chart.bottom - chart.top) * r, f"{r:.0%}") for r in (0, 0.5, 1)]
    if not every:
        return ArmChart(y_ticks=ticks)
    start, end = min(every), max(every)
    span = (end - start).total_seconds() or 1.0

    def x(moment: datetime) -> float:
        return round(
            chart.left + (chart.right - chart.left) * (moment - start).total_seconds() / span, 1
        )

    def y(rate: float) -> float:
        return round(chart.bottom - (chart.bottom - chart.top) * rate, 1)

    lines = []
    for arm in ARMS:
        points = moments[arm]
        if not points:
            continue
        coordinates = [(x(moment), y(float(point["rate"]))) for moment, point in points]
        if len(coordinates) == 1:  # one trace: a short flat segment, so it is visible
            only_x, only_y = coordinates[0]
            coordinates = [(max(only_x - 3, chart.left), only_y), (only_x, only_y)]
        last = points[-1][1]
        lines.append(
            ArmLine(
                arm=arm,
                points=" ".join(f"{px},{py}" for px, py in coordinates),
                last_x=coordinates[-1][0],
                last_y=coordinates[-1][1],
                n=int(last["n"]),
                rate=float(last["rate"]),
            )
        )
    return ArmChart(
        lines=lines,
        y_ticks=ticks,
        start_label=start.strftime("%Y-%m-%d %H:%M"),
        end_label=end.strftime("%Y-%m-%d %H:%M"),
    )
