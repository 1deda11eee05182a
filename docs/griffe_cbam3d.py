"""Griffe extension for the API reference (mkdocs.yml loads it; not part of the package).

- The networks live in the repository's ``models/`` folder and install as ``cbam3d.models`` (pyproject.toml's
  ``package-dir``). Griffe finds packages by folder name, so it would not find ``cbam3d.models`` under
  ``cbam3d/``: this extension reads ``models/`` into the loaded ``cbam3d`` package under that name.
- The docstrings use Sphinx roles (``:func:`name```), which Markdown would show verbatim: they are shown as
  code (``name``); reST's ``Typical use::`` becomes ``Typical use:``. The docstrings themselves are unchanged.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import griffe

NETWORKS_FOLDER = Path(__file__).resolve().parents[1] / "models"
NETWORKS_PACKAGE = ("cbam3d", "models")

SPHINX_ROLE = re.compile(r":(?:py:)?(?:func|class|meth|attr|mod|data|obj|exc):`~?([^`]+)`")
LITERAL_BLOCK_INTRO = re.compile(r"::$", re.MULTILINE)


class Cbam3dReference(griffe.Extension):
    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        parent_name, name = NETWORKS_PACKAGE
        if pkg.name != parent_name or name in pkg.members:
            return
        networks = _load_package(loader, NETWORKS_FOLDER, name, parent=pkg)
        pkg.set_member(name, networks)
        loader.expand_exports(networks)
        loader.expand_wildcards(networks, external=False)

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        _plain_markdown(obj)


def _load_package(loader: griffe.GriffeLoader, folder: Path, name: str, *, parent: griffe.Module) -> griffe.Module:
    """The package in ``folder`` with its modules and subpackages, as ``name`` inside ``parent``."""
    package = _visit(loader, name, folder / "__init__.py", parent=parent)
    for path in sorted(folder.iterdir()):
        if path.suffix == ".py" and path.stem != "__init__":
            _attach(package, _visit(loader, path.stem, path, parent=package))
        elif (path / "__init__.py").is_file():
            _attach(package, _load_package(loader, path, path.name, parent=package))
    return package


def _attach(package: griffe.Module, module: griffe.Module) -> None:
    """Make ``module`` a member of ``package``, as Python's import system does.

    When the package already binds the module's name to an object imported from it (``from .inflate import
    inflate``), the object keeps the name, as in Python; the package's aliases into the module are then
    resolved here, since their paths would lead through the name to the object.
    """
    if module.name not in package.members:
        package.set_member(module.name, module)
        return
    prefix = f"{module.path}."
    for alias in package.members.values():
        if alias.is_alias and alias.target_path.startswith(prefix):
            alias.target = module.get_member(alias.target_path.removeprefix(prefix))


def _visit(loader: griffe.GriffeLoader, name: str, path: Path, *, parent: griffe.Module) -> griffe.Module:
    code = path.read_text(encoding="utf-8")
    loader.lines_collection[path] = code.splitlines()
    return griffe.visit(
        name,
        filepath=path,
        code=code,
        parent=parent,
        extensions=loader.extensions,
        docstring_parser=loader.docstring_parser,
        docstring_options=loader.docstring_options,
        lines_collection=loader.lines_collection,
        modules_collection=loader.modules_collection,
    )


def _plain_markdown(obj: griffe.Object) -> None:
    """Rewrite the Sphinx markup of ``obj``'s docstring as Markdown."""
    if obj.docstring is not None:
        text = SPHINX_ROLE.sub(r"`\1`", obj.docstring.value)
        obj.docstring.value = LITERAL_BLOCK_INTRO.sub(":", text)
