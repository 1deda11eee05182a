"""``cbam3d ablate`` (cbam3d.training.ablation): a tiny grid trains and writes results.csv/md/png, a second call reuses
finished runs, an interrupted run resumes or restarts, --report-only rebuilds the report and skips malformed runs,
bad grids (also huge or alias-bombed ones) get one-line errors, grid files read like the command line; and the
confidence interval's arithmetic."""

import csv
import io
import json
import math
import re
import shutil

import pytest

from cbam3d.training.ablation import ablate_main, expand_grid, read_grid_file, runner, welch_interval
from cbam3d.training.ablation.report import csv_report
from cbam3d.utils.locking import folder_lock

# The grid's own flags are left out: --attention and --seed come from the grid.
_GRID_OWNED_FLAGS = ("--attention", "--seed")


def train_flags(tiny_run, data, *, epochs=1):
    """The tiny training run's flags without those the grid sets, on ``data``."""
    flags, skip = [], False
    for flag in tiny_run:
        if skip:
            skip = False
        elif flag in _GRID_OWNED_FLAGS:
            skip = True
        else:
            flags.append(flag)
    return [*flags, "--data", str(data), "--epochs", str(epochs)]


@pytest.fixture(scope="module")
def grid(tmp_path_factory, make_tiny_dataset, tiny_run):
    """A finished 2-attention x 1-seed grid: (output folder, the command line, what the first call printed)."""
    root = tmp_path_factory.mktemp("ablate")
    output = root / "out"
    argv = ["--attention", "none", "se", "--seeds", "0", "--output", str(output), "--threads", "1"]
    argv += train_flags(tiny_run, make_tiny_dataset(root / "data"))
    assert ablate_main(argv) == 0
    return output, argv


def test_a_tiny_grid_writes_one_folder_per_run_and_the_three_outputs(grid):
    output, _ = grid
    assert sorted(p.name for p in output.iterdir() if p.is_dir()) == ["none-seed0", "se-seed0"]
    with open(output / "results.csv") as file:
        rows = list(csv.DictReader(file))
    assert [row["configuration"] for row in rows] == ["none", "se"]
    for row in rows:
        assert 0 <= float(row["val_top1"]) <= 1 and float(row["train_clips_per_second"]) > 0
        assert float(row["peak_memory_mb"]) > 0 and int(row["parameters"]) > 0 and float(row["gmacs"]) > 0
    assert int(rows[1]["parameters"]) > int(rows[0]["parameters"])  # SE adds its gates' weights
    table = (output / "results.md").read_text()
    assert "| none | 1 |" in table and "| se | 1 |" in table and "2 finished runs of 2" in table
    assert (output / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_second_call_reuses_finished_runs_without_training(grid, capsys, monkeypatch):
    output, argv = grid
    monkeypatch.setattr(runner, "_run_child", lambda *a, **k: pytest.fail("a finished run was trained again"))
    before = {p: p.stat().st_mtime_ns for p in output.glob("*/metrics.json")}
    assert ablate_main(argv) == 0
    assert capsys.readouterr().out.count("finished earlier, reused") == 2
    assert {p: p.stat().st_mtime_ns for p in output.glob("*/metrics.json")} == before


def test_an_interrupted_run_resumes_from_its_checkpoint_and_one_without_restarts(grid, tmp_path, monkeypatch):
    """The train command gets --resume exactly when the run left a checkpoint; finished runs are not started."""
    _, argv = grid
    output = tmp_path / "out"
    argv = [*argv[: argv.index("--output") + 1], str(output), *argv[argv.index("--output") + 2 :]]
    (output / "none-seed0" / "checkpoints").mkdir(parents=True)
    (output / "none-seed0" / "checkpoints" / "last.ckpt").write_bytes(b"interrupted")
    (output / "se-seed0").mkdir()  # started, killed before its first checkpoint
    calls = []

    def fake_train(command, **kwargs):
        calls.append(command)
        return 1

    monkeypatch.setattr(runner, "_run_child", fake_train)
    assert ablate_main(argv) == 1  # the fake runs wrote no metrics: reported as failed
    resumed = {command[command.index("--attention") + 1]: "--resume" in command for command in calls}
    assert resumed == {"none": True, "se": False}


def test_report_only_rebuilds_the_outputs_from_finished_runs(grid, monkeypatch):
    output, _ = grid
    for name in ("results.csv", "results.md", "results.png"):
        (output / name).unlink()
    monkeypatch.setattr(runner, "_run_child", lambda *a, **k: pytest.fail("--report-only trained"))
    assert ablate_main(["--output", str(output), "--report-only"]) == 0
    assert all((output / name).is_file() for name in ("results.csv", "results.md", "results.png"))


@pytest.mark.parametrize(
    "damage",
    [
        lambda folder: (folder / "metrics.json").write_text("{half a file"),
        lambda folder: (folder / "metrics.json").write_text('{"val_top1": "high"}'),
        lambda folder: (folder / "metrics.json").write_text("[1, 2]"),
        lambda folder: (folder / "metrics.json").write_bytes(b"\xff\xfe not utf-8"),
        lambda folder: (folder / "run.json").write_text('{"configuration": 7}'),
        lambda folder: (folder / "run.json").write_text("null"),
    ],
    ids=["not-json", "not-a-number", "not-an-object", "not-utf8", "bad-record", "null-record"],
)
def test_the_report_skips_a_run_with_malformed_files_naming_it_and_reports_the_others(
    grid, tmp_path, capsys, damage, monkeypatch
):
    output = tmp_path / "out"
    shutil.copytree(grid[0], output)
    damage(output / "se-seed0")
    monkeypatch.setattr(runner, "_run_child", lambda *a, **k: pytest.fail("--report-only trained"))
    assert ablate_main(["--output", str(output), "--report-only"]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(warnings) == 1 and str(output / "se-seed0") in warnings[0]
    with open(output / "results.csv") as file:
        assert [row["folder"] for row in csv.DictReader(file)] == ["none-seed0"]


def test_a_second_ablation_into_the_same_output_is_refused_while_the_first_runs(grid, usage_error, monkeypatch):
    output, argv = grid
    monkeypatch.setattr(runner, "_run_child", lambda *a, **k: pytest.fail("trained alongside another ablation"))
    with folder_lock(output):
        line = usage_error(ablate_main, argv)
    assert f"--output {output} is in use by another ablation" in line


def test_a_folder_holding_a_run_with_other_train_options_is_refused(grid, usage_error):
    _, argv = grid
    line = usage_error(ablate_main, [*argv, "--lr", "0.5"])
    assert "holds a run started with other train options" in line


@pytest.mark.slow
def test_an_interrupted_run_really_resumes_and_finishes(grid):
    output, argv = grid
    (output / "se-seed0" / "metrics.json").unlink()  # as if killed after its last checkpoint
    assert ablate_main(argv) == 0
    assert json.loads((output / "se-seed0" / "metrics.json").read_text())["resumed_from"]


# --- bad input --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--vary", "cbam.gate_order", "sideways"], "--vary cbam.gate_order 'sideways': unknown gate_order"),
        (["--vary", "cbam.kernel_size", "4"], "--vary cbam.kernel_size 4: kernel_size must be odd"),
        (["--vary", "cbam.colour", "red"], "--vary cbam.colour 'red': "),
        (["--vary", "gcnet.reduction", "8"], "--vary unknown attention 'gcnet'"),
        (["--vary", "cbam"], "--vary expected ATTENTION.OPTION"),
        (["--vary", "cbam.reduction"], "--vary cbam.reduction: give at least one value"),
        (["--attention", "gcnet"], "--attention 'gcnet' is not known"),
        (["--seed", "3"], "--seed is set by the grid for each run; use --seeds"),
        (["--attention-option", "reduction=4"], "--attention-option is set by the grid"),
        (["--epochs", "0"], "--epochs must be a positive integer"),
        (["--no-such-flag"], "unrecognized arguments: --no-such-flag"),
    ],
)
def test_bad_grids_and_train_options_get_one_line_errors(argv, message, usage_error, tmp_path):
    assert message in usage_error(ablate_main, [*argv, "--output", str(tmp_path)])


@pytest.mark.parametrize(
    "name, text, message",
    [
        ("grid.json", "{not json", "is not valid json"),
        ("grid.json", '{"attention": "cbam"}', "attention must be a list of names"),
        ("grid.json", '{"vary": {"cbam.gate_order": "parallel"}}', "vary must map ATTENTION.OPTION to a list"),
        ("grid.json", '{"seed": [1]}', "unknown keys ['seed']"),
        ("grid.json", '{"recipe": "strong=--mixup 0.8"}', "recipe must be a list of NAME=OPTIONS texts"),
        ("grid.json", '{"attention": ["cbam"], "recipe": ["strong=--ema 2"]}', "--ema must be in [0, 1), got 2.0"),
        ("grid.yaml", "vary:\n  cbam.gate_order: [diagonal]\n", "--vary cbam.gate_order 'diagonal'"),
        ("grid.json", json.dumps({"attention": ["cbam"], "seeds": list(range(1001))}), "expands to 1001 runs"),
        ("grid.json", json.dumps({"vary": {"cbam.kernel_size": [[3] * 20] * 600}}), "more than 10000 values"),
        ("grid.json", json.dumps({"attention": [["cbam"] * 200]}), "got [['cbam', 'cbam', 'cbam', 'cbam'"),
    ],
)
def test_bad_grid_files_get_one_line_errors(name, text, message, usage_error, tmp_path):
    (tmp_path / name).write_text(text)
    assert message in usage_error(ablate_main, ["--grid", str(tmp_path / name), "--output", str(tmp_path)])


def test_a_grid_of_yaml_aliases_is_refused_in_one_short_line_without_expanding_it(usage_error, tmp_path):
    """A "billion laughs": 300 bytes that stand for 9**7 values, which printed would take hundreds of megabytes."""
    pytest.importorskip("yaml")
    lines = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for name, previous in zip("bcdef", "abcde"):
        lines.append(f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]")
    lines.append("vary: {cbam.kernel_size: [*f, *f]}")
    (tmp_path / "grid.yaml").write_text("\n".join(lines) + "\n")
    line = usage_error(ablate_main, ["--grid", str(tmp_path / "grid.yaml"), "--output", str(tmp_path)])
    assert "more than 10000 values" in line and len(line) < 300


def test_a_grid_file_reads_like_the_command_line(tmp_path):
    pytest.importorskip("yaml")
    (tmp_path / "grid.yaml").write_text(
        "attention: [none, cbam]\nvary:\n  cbam.kernel_size: [3, 7]\nseeds: [0, 1]\nrecipe: ['strong=--mixup 0.8']\n"
    )
    assert read_grid_file(tmp_path / "grid.yaml") == {
        "attention": ["none", "cbam"],
        "vary": {"cbam.kernel_size": [3, 7]},
        "seeds": [0, 1],
        "recipe": ["strong=--mixup 0.8"],
    }


def test_the_grid_varies_one_option_at_a_time_and_trains_a_default_value_once():
    runs = expand_grid(
        ["none", "cbam"],
        {"cbam.gate_order": ["channel_spatial", "parallel"], "cbam.spatial_mode": ["joint", "framewise"]},
        [0, 1],
    )
    assert [run.configuration for run in runs[::2]] == [
        "none",
        "cbam",
        "cbam gate_order=parallel",
        "cbam spatial_mode=framewise",
    ]
    assert [run.seed for run in runs] == [0, 1] * 4
    assert len({run.folder for run in runs}) == len(runs)


# --- the confidence interval ------------------------------------------------------------------------------


def test_welch_interval_matches_a_published_t_table_value():
    """Equal sizes and variances (3 values, variance 1 each): the Welch–Satterthwaite df is 4, and the half-width
    is t(0.975, 4) = 2.776 (any t table) times the standard error sqrt(1/3 + 1/3)."""
    difference, low, high = welch_interval([1.0, 2.0, 3.0], [0.0, 1.0, 2.0])
    assert difference == pytest.approx(1.0)
    assert (high - difference) / math.sqrt(2 / 3) == pytest.approx(2.776, abs=1e-3)
    assert difference - low == pytest.approx(high - difference)


def test_welch_interval_of_a_worked_example_with_unequal_variances():
    """Variances 4e-4 and 9e-4 over 3 seeds each: df = 3.48, t(0.975, 3.48) = 2.946, so 0.09 ± 0.0613 (to 1e-6)."""
    difference, low, high = welch_interval([0.70, 0.74, 0.72], [0.60, 0.66, 0.63])
    assert difference == pytest.approx(0.09)
    assert (low, high) == pytest.approx((0.028671, 0.151329), abs=1e-6)


def test_welch_interval_needs_two_seeds_of_each_and_is_a_point_without_variation():
    assert welch_interval([0.7], [0.60, 0.66, 0.63]) is None
    assert welch_interval([0.5, 0.5], [0.25, 0.25, 0.25]) == (0.25, 0.25, 0.25)


@pytest.mark.slow  # four tiny runs
def test_recipes_are_compared_as_configurations_with_the_first_as_baseline(tmp_path, make_tiny_dataset, tiny_run):
    """--recipe NAME=OPTIONS trains every attention with each named option set; the report's interval compares
    each recipe with the first, and results.png holds the forest plot of the differences."""
    output = tmp_path / "out"
    argv = ["--attention", "cbam", "--seeds", "0", "1", "--output", str(output), "--threads", "1"]
    argv += ["--recipe", "default=", "--recipe", 'strong=--mixup 0.8 --augment trivialaugment --ema "0.9"']
    argv += train_flags(tiny_run, make_tiny_dataset(tmp_path / "data"))
    assert ablate_main(argv) == 0
    assert sorted(p.name for p in output.iterdir() if p.is_dir()) == [
        "cbam-recipe=default-seed0",
        "cbam-recipe=default-seed1",
        "cbam-recipe=strong-seed0",
        "cbam-recipe=strong-seed1",
    ]
    record = json.loads((output / "cbam-recipe=strong-seed1" / "run.json").read_text())
    assert record["train_arguments"][-6:] == ["--mixup", "0.8", "--augment", "trivialaugment", "--ema", "0.9"]
    assert record["baseline"] == "cbam recipe=default" and record["recipe"] == "strong"
    table = (output / "results.md").read_text()
    assert "top-1 vs cbam recipe=default (95% CI)" in table
    assert re.search(r"\| cbam recipe=strong \| 2 \| .* \| [+-]\d+\.\d \[[+-]\d+\.\d, [+-]\d+\.\d\] \|", table)
    assert (output / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("recipe", "message"),
    [
        ("strong", "--recipe expected NAME=OPTIONS"),
        ("strong=--mixup -1", "--mixup must be 0 or more, got -1.0"),
        ("strong=--seed 3", "--seed is set by the grid"),
        ("strong=--augment 'randaugment", "cannot split"),
    ],
)
def test_bad_recipes_are_refused_in_one_line(recipe, message, usage_error):
    assert message in usage_error(ablate_main, ["--attention", "cbam", "--recipe", recipe])


def test_results_csv_writes_a_configuration_name_a_spreadsheet_would_run_as_text():
    text = csv_report([{"configuration": "=HYPERLINK(1)", "attention": "cbam", "seed": 0, "val_top1": -0.5}])
    header, row = list(csv.reader(io.StringIO(text, newline="")))
    assert row[header.index("configuration")] == "'=HYPERLINK(1)" and row[header.index("val_top1")] == "-0.5"
