"""``cbam3d ablate``: train a grid of attention configurations x seeds and tabulate what each one gains and costs.

The grid (:mod:`.grid`) is the attentions of ``--attention`` (``none`` is the baseline without attention), each
with its default options, plus one configuration for every value of every ``--vary ATTENTION.OPTION VALUE ...``
(one option changed at a time around the defaults, not a cross product; a value equal to the option's default
is the plain configuration again and is not trained twice), times ``--seeds``. The runner (:mod:`.runner`)
trains every run with the train command itself, in a subprocess, with the options given after the grid's own,
in its own folder ``OUTPUT/<configuration>-seed<S>``, and is resumable. The report (:mod:`.report`) then writes
``results.csv``, ``results.md`` and ``results.png`` under ``OUTPUT``; its :class:`ReportLayout` and
:func:`write_tables` give another grid of attention configurations x seeds the same tables (the brain example of
docs/examples/). Nothing here imports Lightning: the training runs in the subprocesses.
"""

from __future__ import annotations

from .cli import ablate_main, ablate_parser
from .grid import GridRun, expand_grid, read_grid_file
from .report import ABLATION_LAYOUT, Column, ReportLayout, welch_interval, write_report, write_tables

__all__ = [
    "ABLATION_LAYOUT",
    "Column",
    "GridRun",
    "ReportLayout",
    "ablate_main",
    "ablate_parser",
    "expand_grid",
    "read_grid_file",
    "welch_interval",
    "write_report",
    "write_tables",
]
