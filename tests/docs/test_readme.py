"""The README stays short, its quick start is the two commands CI runs, and every Python example in it runs."""

import re
from pathlib import Path

import pytest

from cbam3d import attention_names, unregister_attention

README = Path(__file__).resolve().parents[2] / "README.md"
MAX_LINES = 250
QUICK_START_COMMANDS = [
    'python3 -m venv .venv && . .venv/bin/activate && pip install -e ".[train]" && cbam3d train',
    'python3 -m venv .venv && . .venv/bin/activate && pip install -e ".[dev]" && python -m pytest',
]
# The public entry points the README's examples must keep showing, with the import each needs.
SHOWN_NAMES = {
    "cbam3d": [
        "CBAM",
        "BAM",
        "SE",
        "ECA",
        "create_attention",
        "register_attention",
        "capture_attention",
        "from_official",
        "to_official",
    ],
    "cbam3d.models": ["create_model", "add_attention", "inflate", "from_torchvision"],
}


def code_blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", text, flags=re.MULTILINE | re.DOTALL)


def readme_text() -> str:
    return README.read_text(encoding="utf-8")


PYTHON_BLOCKS = code_blocks(readme_text(), "python")


def test_readme_is_at_most_250_lines():
    assert len(readme_text().splitlines()) <= MAX_LINES


def test_quick_start_block_holds_exactly_the_train_and_test_commands():
    match = re.search(r"<!-- quickstart:start -->\n(.*?)<!-- quickstart:end -->", readme_text(), flags=re.DOTALL)
    assert match, "the README lacks the quickstart markers"
    commands = [line for block in code_blocks(match.group(1), "bash") for line in block.splitlines() if line]
    assert commands == QUICK_START_COMMANDS


def imported_names(code: str, module: str) -> set[str]:
    lines = re.findall(rf"^from {re.escape(module)} import (.+)$", code, flags=re.MULTILINE)
    return {name.strip() for line in lines for name in line.split(",")}


def test_readme_examples_import_every_public_entry_point():
    code = "\n".join(PYTHON_BLOCKS)
    for module, names in SHOWN_NAMES.items():
        missing = set(names) - imported_names(code, module)
        assert not missing, f"the README's examples no longer import {sorted(missing)} from {module}"


@pytest.fixture
def attention_registry_restored():
    """The examples may register attentions; they are removed afterwards so other tests see the usual set."""
    before = set(attention_names())
    yield
    for name in set(attention_names()) - before:
        unregister_attention(name)


@pytest.mark.parametrize("code", PYTHON_BLOCKS, ids=[f"block{i}" for i in range(len(PYTHON_BLOCKS))])
def test_readme_python_example_runs(code, attention_registry_restored):
    exec(compile(code, str(README), "exec"), {"__name__": "readme_example"})
