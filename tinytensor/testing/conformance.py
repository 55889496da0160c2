"""``run_conformance(device)``: the whole catalogue on one device, without pytest.

    from tinytensor import backends
    from tinytensor.testing import run_conformance

    backends.register("mine", MyBackend, device_type="mine")
    report = run_conformance("mine")
    print(report)                 # one line per op: ok / unsupported / FAILED
    report.raise_for_failures()
"""
from __future__ import annotations

import traceback
from dataclasses import dataclass, field

from .catalogue import OPS, OpSpec
from .checks import Unsupported, check_sample
from .draw import Draw


@dataclass
class OpResult:
    name: str
    status: str  # "ok", "unsupported" or "failed"
    message: str = ""


@dataclass
class ConformanceReport:
    device: str
    results: list = field(default_factory=list)

    @property
    def failures(self) -> list:
        """The results whose status is "failed"."""
        return [r for r in self.results if r.status == "failed"]

    @property
    def ok(self) -> bool:
        """Whether no op failed (skips are not failures)."""
        return not self.failures

    def raise_for_failures(self) -> None:
        """Raise AssertionError listing every failed op and its message, if any failed."""
        if self.failures:
            raise AssertionError(
                f"{len(self.failures)} op(s) failed on {self.device!r}:\n\n"
                + "\n\n".join(f"{r.name}: {r.message}" for r in self.failures)
            )

    def __str__(self) -> str:
        lines = [f"tinytensor conformance on {self.device!r}: "
                 f"{sum(r.status == 'ok' for r in self.results)} ok, "
                 f"{sum(r.status == 'unsupported' for r in self.results)} unsupported, "
                 f"{len(self.failures)} failed"]
        for r in self.results:
            if r.status != "ok":
                lines.append(f"  {r.status:12s} {r.name}: {r.message.splitlines()[0] if r.message else ''}")
        return "\n".join(lines)


def run_conformance(device: str, ops: list[OpSpec] | None = None, examples: int = 5, seed: int = 0,
                    second_order: bool = True) -> ConformanceReport:
    """Check every op of the catalogue (or ``ops``) on ``device`` with ``examples`` random samples.

    Samples come from a seeded generator (no hypothesis needed), so a report is reproducible.
    """
    report = ConformanceReport(device)
    for spec in OPS if ops is None else ops:
        status, message = "ok", ""
        for k in range(examples):
            sample = spec.sample(Draw(seed=seed * 100_003 + k))
            try:
                check_sample(spec, sample, device, second_order=second_order)
            except Unsupported as e:
                status, message = "unsupported", str(e)
                break
            except Exception as e:  # noqa: BLE001 - every failure is reported, none stops the run
                status = "failed"
                message = "".join(traceback.format_exception_only(type(e), e)).strip()
                break
        report.results.append(OpResult(spec.name, status, message))
    return report
