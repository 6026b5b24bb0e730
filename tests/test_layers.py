"""The import graph has no arrow from a lower layer to a higher one, and no stage reaches into another's internals.

Layers, lowest first: `s2s` (the shared ground) < `s2s.serving` (the host) <
`s2s.pipelines`, `s2s.training` < `s2s.export` < `s2s.app` (CLI and chain).
A stage may use another stage only through that stage's published hand-off
modules, listed in ALLOWED. Imports inside functions count too.
"""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FOLDERS = {"s2s": "s2s", "s2s.serving": "serving", "s2s.pipelines": "pipelines", "s2s.training": "training", "s2s.export": "export", "s2s.app": "app"}
STAGES = tuple(name for name in FOLDERS if name != "s2s")
# What each package may import from the others: a whole package, or named modules of it (its hand-offs).
ALLOWED: dict[str, dict[str, set[str] | None]] = {
    "s2s": {},
    "s2s.serving": {},
    "s2s.pipelines": {"s2s.serving": {"config", "engine", "file_job"}},
    "s2s.training": {},
    "s2s.export": {"s2s.training": {"model_dir", "config"}, "s2s.serving": {"sessions", "decoding", "model_info"}},
    "s2s.app": {stage: None for stage in STAGES if stage != "s2s.app"},
}


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module in FOLDERS:  # `from s2s.training import model_dir` names the modules it imports
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
            else:
                names.add(node.module)
    return names


def owner(module: str) -> str | None:
    """The package of FOLDERS a module name belongs to (the deepest match), or None outside s2s."""
    matches = [package for package in FOLDERS if module == package or module.startswith(package + ".")]
    return max(matches, key=len) if matches else None


def violations(package: str, root: Path = REPO) -> list[str]:
    found = []
    for path in sorted((root / FOLDERS[package]).glob("*.py")) + sorted((root / FOLDERS[package]).glob("*/*.py")):
        for module in imported_modules(path):
            target = owner(module)
            if target in (None, "s2s", package):
                continue
            if path.name == "__main__.py" and package == "s2s" and target == "s2s.app":
                continue  # `python -m s2s` is an entry point, not part of the ground
            rules = ALLOWED[package]
            if target not in rules:
                found.append(f"{path.relative_to(root)} imports {module}")
                continue
            allowed_modules = rules[target]
            submodule = module[len(target) + 1 :].split(".")[0]
            if allowed_modules is not None and submodule and submodule not in allowed_modules:
                found.append(f"{path.relative_to(root)} imports {module}, not a hand-off of {target}")
    return found


@pytest.mark.parametrize("package", list(FOLDERS))
def test_no_upward_or_internal_imports(package: str) -> None:
    assert violations(package) == []


def test_the_checker_catches_an_upward_import(tmp_path: Path) -> None:
    """The rule itself can fail: a ground module importing a stage, or export reaching into training's internals."""
    (tmp_path / "s2s").mkdir()
    (tmp_path / "s2s" / "bad.py").write_text("def f():\n    from s2s.training.train import train\n")
    (tmp_path / "export").mkdir()
    (tmp_path / "export" / "bad.py").write_text("from s2s.training import checkpoints\nfrom s2s.training.model_dir import ModelDir\n")
    assert violations("s2s", tmp_path) == ["s2s/bad.py imports s2s.training.train"]
    assert violations("s2s.export", tmp_path) == ["export/bad.py imports s2s.training.checkpoints, not a hand-off of s2s.training"]
