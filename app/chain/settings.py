"""The config file of `s2s run`: one TOML table per stage, validated whole before anything runs.

```toml
[run]                       # where the chain reads and writes
input = ["../data/fra-eng/fra.txt.gz"]
output = "../runs/fra-eng"
[prepare]                   # s2s prepare's settings
[train]                     # s2s train's settings
[evaluate]                  # split, batch_size, limit
[export]                    # verify_sources, float16
[translate]                 # input (default: the test split's sources), compare_with, device, batch_size, ...
```

Relative paths in the file are relative to the file's folder, so a scheduler
may start the job from any working directory. `--set table.key=value` on the
command line overrides one value; a night's misspelt key fails at once with
its name, not after hours of training.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from s2s.config import build_config, read_toml, setting
from s2s.errors import ConfigError
from s2s.export.config import ExportConfig
from s2s.pipelines.config import PrepareConfig
from s2s.serving.config import TranslateConfig
from s2s.training.config import EvaluateConfig, TrainConfig


@dataclass(frozen=True)
class RunSettings:
    """`[run]`: the corpus the chain starts from and the run directory it fills."""

    input: tuple[str, ...] = setting((), "files or globs of source<TAB>target lines, plain or .gz")
    output: str = setting("", "the run directory: data/, model/, evaluation/, onnx/, translation/ and run.json")

    def validate(self) -> None:
        if not self.input:
            raise ConfigError("input is missing: name the corpus files (a list of paths or globs)")
        if not all(isinstance(item, str) and item for item in self.input):
            raise ConfigError("input must be a list of non-empty paths")
        if not self.output:
            raise ConfigError("output is missing: name the run directory")


@dataclass(frozen=True)
class ChainTranslateConfig(TranslateConfig):
    """`[translate]`: `s2s translate`'s settings, plus the corpus the chain translates with the fresh export."""

    input: str = setting("", "a file or glob to translate; empty translates the distinct sources of the test split")
    compare_with: str = setting(
        "",
        "an s2s export (such as the shipped models/fra-eng) that translates the same test sources, scored beside this run's "
        "model; empty compares with none",
    )

    def validate(self) -> None:
        super().validate()
        if self.compare_with and self.input:
            raise ConfigError("compare_with scores translations of the test split: leave [translate] input empty to use it")
        if self.compare_with and not Path(self.compare_with).is_dir():
            raise ConfigError(f"compare_with: {self.compare_with} is not a folder; name an s2s export, such as models/fra-eng")


@dataclass(frozen=True)
class ChainSettings:
    """Every table of a run config, parsed and validated."""

    run: RunSettings
    prepare: PrepareConfig
    train: TrainConfig
    evaluate: EvaluateConfig
    export: ExportConfig
    translate: ChainTranslateConfig
    config_path: Path

    def stage_settings(self, stage: str) -> dict[str, Any]:
        """The settings of one stage as a plain dict: part of what decides whether it must run again."""
        return dataclasses.asdict(getattr(self, stage))


def _table_classes() -> dict[str, type]:
    """One config class per table, each defined beside its stage's code and shared with its subcommand's flags."""
    return {
        "run": RunSettings,
        "prepare": PrepareConfig,
        "train": TrainConfig,
        "evaluate": EvaluateConfig,
        "export": ExportConfig,
        "translate": ChainTranslateConfig,
    }


def load_chain_settings(
    path: str | Path, assignments: list[str] | None = None, *, input_override: list[str] | None = None, output_override: str | None = None
) -> ChainSettings:
    """Reads, overrides and validates a run config.

    Args:
        assignments: `table.key=value` strings from `--set`; the value is read as TOML, else as a string.
        input_override, output_override: `--input` and `--output`, relative to the working directory.

    Raises:
        S2SError: an unreadable file, an unknown table or key, a value of the wrong type or out of range.
    """
    path = Path(path)
    document = read_toml(path)
    classes = _table_classes()
    for table, value in document.items():
        if table not in classes:
            raise ConfigError(f"{path}: unknown table [{table}] (known tables: {', '.join(classes)})")
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: '{table}' must be a table ([{table}]), got {value!r}")
    tables = {name: dict(document.get(name, {})) for name in classes}
    for assignment in assignments or []:
        table, key, value = parse_assignment(assignment, classes)
        tables[table][key] = value
    base = path.resolve().parent
    run = tables["run"]
    if isinstance(run.get("input"), str):
        run["input"] = [run["input"]]
    if isinstance(run.get("input"), list):
        run["input"] = tuple(_relative_to(base, item) if isinstance(item, str) else item for item in run["input"])
    if isinstance(run.get("output"), str) and run["output"]:
        run["output"] = _relative_to(base, run["output"])
    if input_override:
        run["input"] = tuple(str(Path(item).absolute()) if "://" not in item else item for item in input_override)
    if output_override:
        run["output"] = str(Path(output_override).absolute())
    translate = tables["translate"]
    if isinstance(translate.get("input"), str) and translate["input"]:
        translate["input"] = _relative_to(base, translate["input"])
    if isinstance(translate.get("compare_with"), str) and translate["compare_with"]:
        translate["compare_with"] = os.path.normpath(_relative_to(base, translate["compare_with"]))  # a folder, named as printed
    built = {name: build_config(cls, tables[name], where=f"{path} [{name}]") for name, cls in classes.items()}
    return ChainSettings(config_path=path.resolve(), **built)


def parse_assignment(assignment: str, classes: dict[str, type]) -> tuple[str, str, Any]:
    """Splits `table.key=value`; the value is a TOML value (`8`, `true`, `"x"`, `[1, 2]`) or else a bare string."""
    target, equals, text = assignment.partition("=")
    table, dot, key = target.strip().partition(".")
    if not equals or not dot or not key:
        raise ConfigError(f"--set expects TABLE.KEY=VALUE, e.g. train.max_minutes=8; got {assignment!r}")
    if table not in classes:
        raise ConfigError(f"--set {assignment}: unknown table '{table}' (known tables: {', '.join(classes)})")
    try:
        value = tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        value = text
    return table, key.strip(), value


def _relative_to(base: Path, value: str) -> str:
    if "://" in value or Path(value).is_absolute():
        return value
    return str(base / value)
