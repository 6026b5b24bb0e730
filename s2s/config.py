"""Typed stage configuration: defaults, then a TOML file, then command-line flags.

Configuration priority: command-line flag > config file > dataclass default.
A config file may hold one table per stage (`[prepare]`, `[train]`, ...) so one
file serves the whole chain; a file without tables is read as the table of the
stage asking. Unknown keys and values of the wrong type are errors that name
the key, because a misspelt option silently ignored is a night's run wasted.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

from s2s.errors import ConfigError, S2SError

ConfigT = TypeVar("ConfigT")
CONFIG_TABLES = ("run", "prepare", "train", "evaluate", "export", "translate")  # the tables of a multi-stage config file


def load_config(
    cls: type[ConfigT], section: str, path: str | Path | None, overrides: dict[str, Any], *, other_keys: tuple[str, ...] = ()
) -> ConfigT:
    """Builds a `cls` dataclass from its defaults, the TOML file's `section` and `overrides`.

    Args:
        cls: a dataclass whose fields are the stage's options.
        section: the table name in a multi-stage config file, e.g. "prepare".
        path: a TOML file, or None for defaults only.
        overrides: values from command-line flags; None means "not given".
        other_keys: keys of the file's table that belong to another reader (the chain's `[translate] input`), skipped.

    Raises:
        S2SError: the file is missing or not TOML, or a key is unknown or of the wrong type.
    """
    values: dict[str, Any] = {}
    if path is not None:
        values.update({key: value for key, value in _read_section(Path(path), section, cls).items() if key not in other_keys})
    values.update({key: value for key, value in overrides.items() if value is not None})
    return build_config(cls, values, where=str(path) if path else "command line")


def build_config(cls: type[ConfigT], values: dict[str, Any], where: str) -> ConfigT:
    """Builds and validates a `cls` dataclass from `values`; `where` names their origin in error messages."""
    _check_keys_and_types(cls, values, where=where)
    try:
        return validated(cls(**values))
    except S2SError as error:
        raise ConfigError(f"{where}: {error}") from None


def read_toml(path: Path) -> dict[str, Any]:
    """The parsed TOML file, or an S2SError saying in one line why it cannot be read."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read config file {path}: {error}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"config file {path} is not valid TOML: {error}") from None


def _read_section(path: Path, section: str, cls: type) -> dict[str, Any]:
    document = read_toml(path)
    field_names = {field.name for field in dataclasses.fields(cls)}
    tables = {key for key, value in document.items() if isinstance(value, dict)}
    unknown = sorted(tables - set(CONFIG_TABLES))
    if unknown:  # a misspelt [prepar] would otherwise leave the stage silently on its defaults
        raise ConfigError(f"{path}: unknown table [{unknown[0]}] (known tables: {', '.join(CONFIG_TABLES)})")
    if section in document:
        return dict(document[section])
    if tables and not (set(document) & field_names):
        return {}  # a multi-stage file with no table for this stage: defaults apply
    return document


def _check_keys_and_types(cls: type, values: dict[str, Any], where: str) -> None:
    fields = {field.name: field for field in dataclasses.fields(cls) if field.init}
    hints = typing.get_type_hints(cls)
    for key, value in values.items():
        if key not in fields:
            known = ", ".join(sorted(fields))
            raise ConfigError(f"{where}: unknown key '{key}' (known keys: {known})")
        expected = hints[key]
        if not _matches(value, expected):
            raise ConfigError(f"{where}: '{key}' must be {_describe(expected)}, got {value!r}")


def _matches(value: Any, expected: Any) -> bool:
    origin = typing.get_origin(expected)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, option) for option in typing.get_args(expected))
    if expected is type(None):
        return value is None
    if expected is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin in (tuple, list):
        return isinstance(value, (list, tuple))
    return isinstance(value, expected)


def _describe(expected: Any) -> str:
    return getattr(expected, "__name__", str(expected))


def validate_choice(name: str, value: Any, choices: Sequence[str]) -> None:
    """The one wording of a value outside its choices, for config fields and API arguments alike.

    Raises:
        ConfigError: `value` is not one of `choices`.
    """
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}")


def validate_range(name: str, value: float, *, at_least: float | None = None, at_most: float | None = None, below: float | None = None, above: float | None = None, zero: str | None = None) -> None:
    """The one wording of a number out of its range; `zero` says what 0 means where it means more than nothing ("automatic").

    Written as `not (value >= bound)`, so NaN is refused too.

    Raises:
        ConfigError: `value` is outside the range.
    """
    low = f"0 ({zero})" if at_least == 0 and zero else f"{at_least:g}" if at_least is not None else None
    if at_least is not None and below is not None:
        ok, wording = at_least <= value < below, f"in [{at_least:g}, {below:g})"
    elif at_least is not None and at_most is not None:
        ok = at_least <= value <= at_most
        wording = f"{low} to {at_most:g}" if at_least == 0 and zero else f"between {at_least:g} and {at_most:g}"
    elif at_least is not None:
        ok, wording = value >= at_least, f"{low} or more" if at_least == 0 else f"at least {at_least:g}"
    elif above is not None:
        ok, wording = value > above, f"above {above:g}"
    else:
        return
    if not ok:
        raise ConfigError(f"{name} must be {wording}, got {value!r}")


def validate_settings(config: Any) -> None:
    """Each field of a config dataclass against what its `setting(...)` declares: its choices and its range.

    Raises:
        ConfigError: the first field outside them, named.
    """
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if field.metadata.get("choices"):
            validate_choice(field.name, value, field.metadata["choices"])
        bounds = field.metadata.get("range")
        if bounds:
            validate_range(field.name, value, **bounds)


def validated(config: ConfigT) -> ConfigT:
    """`config` once its fields are within their declared choices and ranges and its own `validate()` (the rules between
    fields) passes: what every entry point calls, whether the config came from a file, flags or Python.

    Raises:
        ConfigError: the first problem found.
    """
    validate_settings(config)
    validate = getattr(config, "validate", None)
    if validate is not None:
        validate()
    return config


def setting(
    default: Any,
    help: str,
    choices: tuple[str, ...] | None = None,
    *,
    at_least: float | None = None,
    at_most: float | None = None,
    below: float | None = None,
    above: float | None = None,
    zero: str | None = None,
) -> Any:
    """A config dataclass field whose help text, choices and range also document and check its command-line flag.

    Args:
        at_least, at_most: inclusive bounds; below, above: exclusive ones.
        zero: what 0 means, for a field where it stands for something ("automatic", "all"), used in the error message.
    """
    bounds = {name: value for name, value in (("at_least", at_least), ("at_most", at_most), ("below", below), ("above", above), ("zero", zero)) if value is not None}
    return dataclasses.field(default=default, metadata={"help": help, "choices": choices, "range": bounds or None})


def add_config_flags(parser: Any, cls: type) -> None:
    """Adds `--field-name` for every field of a config dataclass; values default to None ("not given")."""
    import argparse

    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        flag = "--" + field.name.replace("_", "-")
        kind = hints[field.name]
        help_text = f"{field.metadata.get('help', '')} (default {field.default})"
        if kind is bool:
            parser.add_argument(flag, dest=field.name, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        else:
            parser.add_argument(
                flag,
                dest=field.name,
                type=kind,
                default=None,
                choices=field.metadata.get("choices"),
                metavar=None if field.metadata.get("choices") else field.name.split("_")[-1].upper(),
                help=help_text,
            )


def config_overrides(args: Any, cls: type) -> dict[str, Any]:
    """The config values given as flags, keyed by field name (None where not given)."""
    return {field.name: getattr(args, field.name, None) for field in dataclasses.fields(cls)}


def log_config(logger: Any, stage: str, config: Any, resolved: dict[str, Any] | None = None) -> None:
    """Logs a stage's settings, after defaults, file and flags (and automatic values) are resolved: what this run really used."""
    values = {**dataclasses.asdict(config), **(resolved or {})}
    logger.info("%s settings: %s", stage, ", ".join(f"{key}={value!r}" for key, value in values.items()))
