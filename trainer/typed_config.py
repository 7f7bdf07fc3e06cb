"""Typed configs from plain values: ``from_dict(SomeDataclass, {...}, "where")`` builds nested
dataclasses from what JSON/YAML gives, checking every key and type on the way.

Both the run config (``trainer/config.py``) and the model config (``trainer/models/config.py``) are
built with it, so a wrong key or type reads the same everywhere: one line naming the option's full
path (``model.vision.layers must be int, got '12'``). Numbers given as strings are accepted for
float fields only, because YAML 1.1 reads ``1e-3`` as a string.
"""

from __future__ import annotations

import contextlib
import dataclasses
import types
import typing
from typing import Any


class ConfigError(ValueError):
    """A user's mistake in a config; the message says what to change."""


def from_dict(cls: type, data: Any, where: str) -> Any:
    """Builds dataclass ``cls`` from nested plain values; raises ConfigError for a bad key or type."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ConfigError(f"unknown option {where}.{unknown[0]} (known: {', '.join(names)})")
    values = {key: _coerce(hints[key], value, f"{where}.{key}") for key, value in data.items()}
    try:
        return cls(**values)
    except (TypeError, ValueError) as error:  # a missing field, or a check in __post_init__
        raise ConfigError(f"{where}: {error}") from error


def _coerce(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if isinstance(hint, types.UnionType) or origin is typing.Union:
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        choices = [o for o in options if o is not type(None)]
        if len(choices) == 1:  # X | None: X's own error names the exact problem
            return _coerce(choices[0], value, where)
        for option in choices:
            try:
                return _coerce(option, value, where)
            except ConfigError:
                continue
        raise ConfigError(f"{where} must be {_name(hint)}, got {value!r}")
    if value is None and hint is not Any:
        raise ConfigError(f"{where} must not be null")
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, where)
    if origin in (tuple, list):
        if not isinstance(value, list | tuple):
            value = [value] if origin is list else value
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where} must be a list, got {value!r}")
        args = typing.get_args(hint)
        if origin is tuple:
            if len(value) != len(args):
                raise ConfigError(f"{where} must have {len(args)} values, got {value!r}")
            return tuple(_coerce(arg, item, where) for arg, item in zip(args, value))
        return [_coerce(args[0], item, where) for item in value]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a mapping, got {value!r}")
        return dict(value)
    return _scalar(hint, value, where)


def _scalar(hint: Any, value: Any, where: str) -> Any:
    if hint is Any:
        return value
    if hint is bool and isinstance(value, bool):
        return value
    if hint is float and isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = float(value)
    if hint in (int, float) and isinstance(value, int | float) and not isinstance(value, bool):
        if hint is int and value != int(value):
            raise ConfigError(f"{where} must be an integer, got {value!r}")
        return hint(value)
    if hint is str and isinstance(value, str | int | float) and not isinstance(value, bool):
        return str(value)
    raise ConfigError(f"{where} must be {_name(hint)}, got {value!r}")


def _name(hint: Any) -> str:
    return getattr(hint, "__name__", str(hint).replace("typing.", ""))
