"""The ``cbam3d`` command (cbam3d.cli): one table of subcommands, each with its own documented parser. Every
subcommand of the table answers ``--help`` through the main entry point and through the installed script, and
refuses a bad flag in one line; the command names the extra a missing dependency needs; the scripts of scripts/
are thin wrappers over the same mains. Each subcommand's own refusals are tested with its module (training,
inference, viz, ...)."""

from __future__ import annotations

import argparse
import importlib.metadata
import runpy
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from cbam3d import cli

REPO = Path(__file__).resolve().parents[2]
DOCUMENTED_COMMANDS = ("train", "evaluate", "predict", "visualize", "prepare", "benchmark", "ablate", "export")
SCRIPTS = ("train", "evaluate", "predict", "visualize", "benchmark", "ablate")
every_command = pytest.mark.parametrize("command", cli.COMMANDS, ids=lambda command: command.name)


def test_the_table_names_each_command_once_and_holds_the_documented_ones():
    names = [command.name for command in cli.COMMANDS]
    assert set(DOCUMENTED_COMMANDS) <= set(names) and len(set(names)) == len(names)


def test_the_installed_package_declares_the_console_script():
    scripts = importlib.metadata.entry_points(group="console_scripts", name="cbam3d")
    assert [script.value for script in scripts] == ["cbam3d.cli:main"]


@every_command
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


@every_command
def test_every_subcommand_shows_its_help_through_the_main_entry_point(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([command.name, "--help"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: cbam3d {command.name}")


@pytest.fixture(scope="session")
def installed_script() -> str:
    """The path of the ``cbam3d`` console script installed with the package."""
    script = shutil.which("cbam3d", path=sysconfig.get_path("scripts"))
    assert script, f"the cbam3d console script is not installed in {sysconfig.get_path('scripts')}"
    return script


@every_command
def test_every_subcommand_shows_its_help_through_the_installed_script(command, installed_script, monkeypatch, capsys):
    """The installed script's code runs in this process (a new interpreter per command would cost seconds each;
    the top-level help below starts the script as a program)."""
    monkeypatch.setattr(sys, "argv", [installed_script, command.name, "--help"])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(installed_script, run_name="__main__")
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: cbam3d {command.name}")


def _required_arguments(parser: argparse.ArgumentParser) -> list[str]:
    """A placeholder for each argument the parser requires, so that parsing goes on to the other flags."""
    argv = []
    for action in parser._actions:
        if action.required:
            value = str(next(iter(action.choices))) if action.choices else "placeholder"
            argv += [action.option_strings[0], value] if action.option_strings else [value]
    return argv


@every_command
def test_every_subcommand_refuses_a_bad_flag_in_one_line_naming_it(command, usage_error):
    argv = [command.name, *_required_arguments(command.load_parser()()), "--no-such-flag"]
    assert usage_error(cli.main, argv) == f"cbam3d {command.name}: error: unrecognized arguments: --no-such-flag"


@pytest.mark.parametrize("entry_point", ["installed script", "python -m cbam3d"])
def test_top_level_help_lists_each_command_with_its_help(entry_point, installed_script):
    program = [installed_script] if entry_point == "installed script" else [sys.executable, "-m", "cbam3d"]
    result = subprocess.run([*program, "--help"], capture_output=True, text=True, timeout=120, check=True)
    for command in cli.COMMANDS:
        assert f"  {command.name}" in result.stdout and command.help in result.stdout


def test_arguments_reach_the_subcommand_unchanged(tmp_path, usage_error):
    missing = tmp_path / "none.ckpt"
    line = usage_error(cli.main, ["evaluate", "--checkpoint", str(missing), "--output", str(tmp_path)])
    assert line.startswith("cbam3d evaluate: error:") and str(missing) in line


def test_an_unknown_command_is_one_line_naming_the_choices(usage_error):
    line = usage_error(cli.main, ["trian"])
    assert "'trian'" in line and "train" in line and "export" in line


def test_a_missing_optional_dependency_names_the_extra_to_install(monkeypatch, usage_error):
    def import_without_onnx(name):
        raise ModuleNotFoundError(f"No module named {'onnxruntime'!r}", name="onnxruntime")

    monkeypatch.setattr(cli.importlib, "import_module", import_without_onnx)
    line = usage_error(cli.main, ["export", "--help"])
    assert "onnxruntime" in line and "cbam3d[export]" in line


@pytest.mark.parametrize("name", SCRIPTS)
def test_each_script_is_a_thin_wrapper_over_the_command_main(name, load_script):
    module = load_script(REPO / "scripts" / f"{name}.py")
    command = next(command for command in cli.COMMANDS if command.name == name)
    assert command.load_main() in vars(module).values()


def test_the_scripts_run_as_programs():
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "train.py"), "--help"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "--attention {none,bam,cbam,eca,se}" in result.stdout
