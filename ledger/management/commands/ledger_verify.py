"""Verify the ledger: exit 0 with ``ok <N> events…`` or 1 naming the first bad seq or trace."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from ledger.verification import LedgerReport, ledger_audit


class Command(BaseCommand):
    help = (
        "Check every ledger event's hash and link, the chain head and every trace row; report "
        "the first seq (or trace) that is wrong."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        report = ledger_audit(progress=lambda n: self.stderr.write(f"verified {n} events…"))
        problems = _problems(report)
        if problems:
            raise CommandError("\n".join(problems))
        self.stdout.write(_summary(report))


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _problems(report: LedgerReport) -> list[str]:
    problems = []
    if report.chain_break is not None:
        problems.append(
            f"ledger chain broken at {report.chain_break} "
            f"({report.events} events verified before it)"
        )
    if report.trace_break is not None:
        rows = _count(report.bad_traces, "trace row")
        problems.append(f"{rows} not matching the ledger; the first: {report.trace_break}")
    return problems


def _summary(report: LedgerReport) -> str:
    summary = f"ok {report.events} events"
    if report.traces:
        summary += f", {_count(report.traces, 'trace')}"
    if report.unverifiable_traces:
        summary += (
            f", {_count(report.unverifiable_traces, 'trace')} written before trace hashes "
            "(not verifiable)"
        )
    return summary
