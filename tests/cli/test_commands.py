"""The ``cbam3d`` command: one table of subcommands, each with its own parser, reachable from the wheel's script."""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from cbam3d import cli

REPO = Path(__file__).resolve().parents[2]
EXPECTED_COMMANDS = ("train", "evaluate", "predict", "visualize", "benchmark", "export")


def test_the_table_holds_the_commands_the_issue_names():
    assert set(EXPECTED_COMMANDS) <= {command.name for command in cli.COMMANDS}
    assert len({command.name for command in cli.COMMANDS}) == len(cli.COMMANDS)


def test_the_installed_package_declares_the_console_script():
    scripts = importlib.metadata.entry_points(group="console_scripts", name="cbam3d")
    assert [script.value for script in scripts] == ["cbam3d.cli:main"]


@pytest.mark.parametrize("command", cli.COMMANDS, ids=lambda command: command.name)
def test_every_subcommand_parser_is_named_after_the_command_and_documents_every_flag(command):
    parser = command.load_parser()()
    assert parser.prog == f"cbam3d {command.name}"
    undocumented = [
        action.option_strings or action.dest
        for action in parser._actions
        if not isinstance(action, argparse._HelpAction) and not (action.help or "").strip()
    ]
    assert undocumented == []
    assert callable(command.load_main())


def test_top_level_help_lists_each_command_with_its_help():
    result = subprocess.run(
        [sys.executable, "-m", "cbam3d", "--help"], capture_output=True, text=True, timeout=120, check=True
    )
    for command in cli.COMMANDS:
        assert f"  {command.name}" in result.stdout and command.help in result.stdout


def test_subcommand_help_is_the_subcommand_parser_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["evaluate", "--help"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith("usage: cbam3d evaluate")


def test_arguments_reach_the_subcommand_unchanged(tmp_path, capsys):
    missing = tmp_path / "none.ckpt"
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["evaluate", "--checkpoint", str(missing), "--output", str(tmp_path)])
    assert exit_info.value.code == 2
    last_line = capsys.readouterr().err.strip().splitlines()[-1]
    assert last_line.startswith("cbam3d evaluate: error:") and str(missing) in last_line


def test_an_unknown_command_is_one_line_naming_the_choices(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["trian"])
    assert exit_info.value.code == 2
    last_line = capsys.readouterr().err.strip().splitlines()[-1]
    assert "'trian'" in last_line and "train" in last_line and "export" in last_line


def test_a_missing_optional_dependency_names_the_extra_to_install(monkeypatch, capsys):
    def import_without_onnx(name):
        raise ModuleNotFoundError(f"No module named {'onnxruntime'!r}", name="onnxruntime")

    monkeypatch.setattr(cli.importlib, "import_module", import_without_onnx)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["export", "--help"])
    assert exit_info.value.code == 2
    last_line = capsys.readouterr().err.strip().splitlines()[-1]
    assert "onnxruntime" in last_line and "cbam3d[export]" in last_line


@pytest.mark.parametrize("name", ["train", "evaluate", "predict", "visualize", "benchmark"])
def test_each_script_is_a_thin_wrapper_over_the_command_main(name):
    spec = importlib.util.spec_from_file_location(f"script_{name}", REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    command = next(command for command in cli.COMMANDS if command.name == name)
    assert command.load_main() in vars(module).values()
