"""Plain tables per policy, and the champion's true success rate by generation as an SVG."""

from __future__ import annotations

from .metrics import Figures
from .records import SHORT, SeedRun
from .world import best_reachable

ROWS = (
    ("trials", lambda f: f"{f.trials} ({f.seeds} seeds)"),
    ("correct decisions [95% CI]", lambda f: f.correct.show()),
    ("false promotions [95% CI]", lambda f: f.false_promotions.show()),
    ("  on A/A trials [95% CI]", lambda f: f.aa_false_promotions.show()),
    ("correct where |true diff| >= delta", lambda f: f.decisive_correct.show()),
    ("power (promoted | truly better)", lambda f: f.power.show()),
    ("inconclusive", lambda f: f.inconclusive.show(False)),
    ("rolled back by the watch", lambda f: str(f.rolled_back)),
    ("mean traces per decision", lambda f: f"{f.mean_traces:.0f}"),
    ("regret: tasks on a worse structure", lambda f: f"{f.regret_tasks} of {f.tasks}"),
    ("tokens per correct decision", lambda f: f"{f.tokens_per_correct:,.0f}"),
    ("seeds at the best within 10 gens", lambda f: f.reached_best.show(False)),
    ("mean generations to the best", lambda f: f"{f.mean_generations_to_best:.1f}"),
)


def by_operator(runs: list[SeedRun]) -> dict[str, dict[str, int]]:
    """Per source ("scripted", or the generation operator that made the candidate): offspring
    queued, trials run, and the trials' verdicts (plus offspring rejected at activation)."""
    table: dict[str, dict[str, int]] = {}
    for run in runs:
        for operator, count in run.offspring.items():
            row = table.setdefault(operator, {})
            row["queued"] = row.get("queued", 0) + count
        for operator, count in run.rejected.items():
            row = table.setdefault(operator, {})
            row["rejected"] = row.get("rejected", 0) + count
        for trial in run.trials:
            row = table.setdefault(trial.operator or "scripted", {})
            row["trials"] = row.get("trials", 0) + 1
            row[trial.state] = row.get(trial.state, 0) + 1
            row["correct"] = row.get("correct", 0) + trial.correct
    return table


def print_generations(by_policy: dict[str, list[SeedRun]]) -> None:
    """Every trial of ``--source generations``, then verdicts by operator, per policy."""
    print("\n--source generations: every trial (gene, or operator(what it changes in the world))")
    for policy, runs in by_policy.items():
        for run in runs:
            print(f"  seed {run.seed:4d} {SHORT[policy]:>9}:")
            for t in run.trials:
                print(
                    f"    gen {t.generation:2d} {t.source:>10} {t.gene:>22} ({t.kind}, gain "
                    f"{t.gain:+.2f}, tokens x{t.token_ratio:.2f}): {t.state} "
                    f"({t.candidate_traces}/{t.champion_traces} traces)"
                )
        if runs:
            print(f"  {SHORT[policy]} by operator:")
            for operator, row in sorted(by_operator(runs).items()):
                print(f"    {operator:>32}: " + ", ".join(f"{k} {v}" for k, v in row.items()))


def print_figures(
    title: str, by_policy: dict[str, Figures], compare: dict[str, Figures] | None = None
) -> None:
    width = 34 if compare is None else 44
    print(f"\n{title}")
    print(f"{'':<36}" + "".join(f"{SHORT[p]:>{width}}" for p in by_policy))
    for label, show in ROWS:
        cells = []
        for policy, fig in by_policy.items():
            text = show(fig)
            if compare is not None:
                text = f"{text} | model {_short(show(compare[policy]))}"
            cells.append(f"{text:>{width}}")
        print(f"{label:<36}" + "".join(cells))
    for policy, fig in by_policy.items():
        rates = " ".join(f"{r:.3f}" for r in fig.champion_rate)
        print(f"  champion true success by generation, {SHORT[policy]}: {rates}")
    for policy, fig in by_policy.items():
        kinds = "; ".join(
            f"{kind} " + ", ".join(f"{k} {v}" for k, v in sorted(row.items()) if k != "n")
            for kind, row in sorted(fig.by_kind.items())
        )
        powers = ", ".join(f"gain {k}: {v.show(False)}" for k, v in fig.power_by_gain.items())
        print(f"  {SHORT[policy]} by kind: {kinds}")
        print(f"  {SHORT[policy]} power by true gain: {powers}")


def _short(text: str) -> str:
    return text.split(" [")[0].strip()


COLOURS = {
    "sequential_confidence_v1": "#1b6ac9",
    "reference_absolute_v1": "#d1495b",
    "naive_fixed_sample_v1": "#edae49",
    "random_choice_v1": "#6c757d",
}


def champion_svg(by_policy: dict[str, Figures]) -> str:
    """Mean true success of the champion after each generation, one line per policy."""
    width, height, left, bottom, top, right = 640, 360, 56, 40, 24, 170
    plot_w, plot_h = width - left - right, height - top - bottom
    generations = max(len(f.champion_rate) for f in by_policy.values()) - 1
    low, high = 0.3, 1.0

    def x(g: float) -> float:
        return left + plot_w * g / max(generations, 1)

    def y(r: float) -> float:
        return top + plot_h * (1 - (r - low) / (high - low))

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{left}" y="16">Champion true success rate by generation '
        "(mean over seeds)</text>",
    ]
    for tick in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0):
        parts.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" '
            'stroke="#e5e5e5"/>'
            f'<text x="{left - 8}" y="{y(tick) + 4:.1f}" text-anchor="end">{tick:.1f}</text>'
        )
    for g in range(generations + 1):
        parts.append(
            f'<text x="{x(g):.1f}" y="{top + plot_h + 16}" text-anchor="middle">{g}</text>'
        )
    parts.append(
        f'<text x="{left + plot_w / 2}" y="{height - 6}" text-anchor="middle">generation</text>'
    )
    best = best_reachable()
    parts.append(
        f'<line x1="{left}" x2="{left + plot_w}" y1="{y(best):.1f}" y2="{y(best):.1f}" '
        'stroke="#2a9d8f" stroke-dasharray="5,4"/>'
        f'<text x="{left + plot_w + 8}" y="{y(best) + 4:.1f}" fill="#2a9d8f">best reachable '
        f"{best:.3f}</text>"
    )
    for index, (policy, fig) in enumerate(by_policy.items()):
        colour = COLOURS.get(policy, "black")
        points = " ".join(f"{x(g):.1f},{y(r):.1f}" for g, r in enumerate(fig.champion_rate))
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2.5" points="{points}"/>'
        )
        legend_y = top + 40 + 20 * index
        parts.append(
            f'<line x1="{left + plot_w + 8}" x2="{left + plot_w + 28}" y1="{legend_y}" '
            f'y2="{legend_y}" stroke="{colour}" stroke-width="2.5"/>'
            f'<text x="{left + plot_w + 34}" y="{legend_y + 4}">{SHORT[policy]} '
            f"({fig.champion_rate[-1]:.3f})</text>"
        )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
