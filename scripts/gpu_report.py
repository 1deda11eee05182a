#!/usr/bin/env python
"""The GPU check's report (scripts/gpu_check.sh): pytest's JUnit XML and ``cbam3d benchmark --json`` in, one JSON
and one markdown file out (written atomically).

The benchmark's headline figures, against the targets of issue 24:

- CBAM forward + backward (the ``cbam 3d`` peer case) against the hand-written block: eager (target: at least
  2.5 times as fast) and compiled (target: at least as fast);
- an ``r3d_18`` training step with CBAM against the plain network (target: at most 1.10 times its time), eager
  and compiled where measured;
- the loader rate that step needs: the step's clips per second (batch size / step time), which the data loader
  workers together must deliver to keep the GPU busy.

    python scripts/gpu_report.py --junit pytest.xml --benchmark benchmark.json --json gpu_check.json \\
        --markdown gpu_check.md [--stage install=ok ...]
"""

from __future__ import annotations

import argparse
import json
import xml.etree.ElementTree as ElementTree
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cbam3d.utils.atomic import atomic_write, atomic_write_json

CBAM_VS_EAGER_TARGET = 2.5
CBAM_VS_COMPILED_TARGET = 1.0
STEP_TIME_TARGET = 1.10


def pytest_summary(junit: Path) -> dict[str, Any]:
    """Counts of the JUnit XML's test cases by outcome, its run time and the ids of those that failed."""
    root = ElementTree.parse(junit).getroot()
    cases = list(root.iter("testcase"))
    failed, skipped = [], 0
    for case in cases:
        if case.find("failure") is not None or case.find("error") is not None:
            failed.append(f"{case.get('classname')}::{case.get('name')}")
        elif case.find("skipped") is not None:
            skipped += 1
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    return {
        "tests": len(cases),
        "passed": len(cases) - len(failed) - skipped,
        "failed": len(failed),
        "skipped": skipped,
        "seconds": sum(float(suite.get("time", 0)) for suite in suites),
        "failures": failed,
    }


def _train_ms(results: list[dict[str, Any]], case: str, variant: str) -> float | None:
    return next((r["train_ms"] for r in results if r["case"] == case and r["variant"] == variant), None)


def _target(value: float | None, target: float, *, at_most: bool) -> dict[str, Any]:
    met = None if value is None else (value <= target if at_most else value >= target)
    return {"value": value, "target": f"{'<=' if at_most else '>='} {target:g}", "met": met}


def benchmark_figures(benchmark: dict[str, Any]) -> dict[str, Any]:
    """The headline figures of a ``cbam3d benchmark --peers --json`` file, each with its target and whether it
    was met (None where the run did not measure it)."""
    results, settings = benchmark["results"], benchmark["settings"]
    cbam_case = next((r["case"] for r in results if r["case"].startswith("cbam 3d")), None)
    ours = _train_ms(results, cbam_case, "cbam3d")
    eager, compiled = _train_ms(results, cbam_case, "naive"), _train_ms(results, cbam_case, "naive compiled")
    step_case = f"{settings['step_model']} step"
    batch = settings["step_clip"][0]
    figures: dict[str, Any] = {
        "device": results[0]["device"] if results else None,
        "dtype": next((r["dtype"] for r in results if r["case"] == step_case), None),
        "cbam_block": {
            "shape": next((r["shape"] for r in results if r["case"] == cbam_case), None),
            "fwd_bwd_ms": {"cbam3d": ours, "hand-written eager": eager, "hand-written compiled": compiled},
            "speedup_vs_eager": _target(eager / ours if ours and eager else None, CBAM_VS_EAGER_TARGET, at_most=False),
            "speedup_vs_compiled": _target(
                compiled / ours if ours and compiled else None, CBAM_VS_COMPILED_TARGET, at_most=False
            ),
        },
        "training_step": {"model": settings["step_model"], "clip": settings["step_clip"]},
    }
    for suffix in ("", " compiled"):
        plain, cbam = _train_ms(results, step_case, f"plain{suffix}"), _train_ms(results, step_case, f"cbam{suffix}")
        if plain is None or cbam is None:
            continue
        figures["training_step"][f"eager{suffix}".replace("eager compiled", "compiled")] = {
            "plain_ms": plain,
            "cbam_ms": cbam,
            "cbam_vs_plain_time": _target(cbam / plain, STEP_TIME_TARGET, at_most=True),
            "clips_per_s_needed": batch / (cbam / 1000),
        }
    return figures


def _yes_no(met: bool | None) -> str:
    return {True: "met", False: "NOT met", None: "not measured"}[met]


def _number(value: float | None, pattern: str) -> str:
    return "-" if value is None else pattern.format(value)


def markdown_report(report: dict[str, Any]) -> str:
    """The report as markdown: the stages, pytest's counts and failures, the benchmark's figures and targets."""
    lines = ["# GPU check", "", f"Machine: {report['machine']}", "", "## Stages", ""]
    lines += [f"- {name}: {status}" for name, status in report["stages"].items()]
    tests = report.get("pytest")
    lines += ["", "## pytest -m gpu", ""]
    if tests is None:
        lines.append("no JUnit XML (see the pytest stage and its log)")
    else:
        lines.append(
            f"{tests['passed']} passed, {tests['failed']} failed, {tests['skipped']} skipped of {tests['tests']} "
            f"in {tests['seconds']:.0f} s"
        )
        lines += [f"- failed: `{name}`" for name in tests["failures"]]
    figures = report.get("benchmark")
    lines += ["", "## Benchmark", ""]
    if figures is None:
        lines.append("no benchmark JSON (see the benchmark stage and its log)")
        return "\n".join(lines) + "\n"
    block = figures["cbam_block"]
    times = block["fwd_bwd_ms"]
    lines += [
        f"Device {figures['device']}, {figures['dtype']}.",
        "",
        "| figure | value | target | |",
        "|---|---:|---:|---|",
        f"| CBAM fwd+bwd {block['shape']}: cbam3d {_number(times['cbam3d'], '{:.2f}')} ms, hand-written eager "
        f"{_number(times['hand-written eager'], '{:.2f}')} ms | "
        f"{_number(block['speedup_vs_eager']['value'], '{:.2f}x')} | {block['speedup_vs_eager']['target']} | "
        f"{_yes_no(block['speedup_vs_eager']['met'])} |",
        f"| CBAM fwd+bwd vs the hand-written block compiled ({_number(times['hand-written compiled'], '{:.2f}')} ms)"
        f" | {_number(block['speedup_vs_compiled']['value'], '{:.2f}x')} | {block['speedup_vs_compiled']['target']} | "
        f"{_yes_no(block['speedup_vs_compiled']['met'])} |",
    ]
    step = figures["training_step"]
    for mode in ("eager", "compiled"):
        if mode not in step:
            continue
        entry = step[mode]
        ratio = entry["cbam_vs_plain_time"]
        lines.append(
            f"| {step['model']} training step {step['clip']} ({mode}): CBAM {entry['cbam_ms']:.1f} ms vs plain "
            f"{entry['plain_ms']:.1f} ms | {ratio['value']:.3f}x | {ratio['target']} | {_yes_no(ratio['met'])} |"
        )
        lines.append(
            f"| clips/s the data loader must deliver for that step ({mode}) | {entry['clips_per_s_needed']:.0f} | | |"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--junit", type=Path, help="pytest's --junitxml file (left out: not run)")
    parser.add_argument("--benchmark", type=Path, help="cbam3d benchmark --json file (left out: not run)")
    parser.add_argument("--machine", default="unknown", help="a line naming the GPU, driver and torch")
    parser.add_argument("--stage", action="append", default=[], metavar="NAME=STATUS", help="a stage's outcome")
    parser.add_argument("--json", type=Path, required=True, help="the JSON report to write")
    parser.add_argument("--markdown", type=Path, required=True, help="the markdown report to write")
    args = parser.parse_args(argv)
    malformed = [stage for stage in args.stage if "=" not in stage]
    if malformed:
        parser.error(f"--stage {malformed[0]!r}: expected NAME=STATUS")
    report: dict[str, Any] = {
        "machine": args.machine,
        "stages": dict(stage.split("=", 1) for stage in args.stage),
        "pytest": pytest_summary(args.junit) if args.junit and args.junit.is_file() else None,
        "benchmark": None,
    }
    if args.benchmark and args.benchmark.is_file():
        report["benchmark"] = benchmark_figures(json.loads(args.benchmark.read_text()))
    atomic_write_json(report, args.json)
    text = markdown_report(report)
    atomic_write(args.markdown, lambda file: file.write(text.encode("utf-8")))
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
