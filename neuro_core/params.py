"""One definition per parameter: name, default, range, choices and help live on the pure dataclass field.

A parameter set is a frozen dataclass whose fields are declared with :func:`param`. From it are derived, never
written again by hand: the command-line flags (:func:`add_param_arguments` / :func:`values_from_namespace`), the
Dagster run-config classes (``neuro_pipelines.config.config_class``) and the range checks
(:func:`check_param_ranges`, called from the dataclass' ``__post_init__``), so the CLI, the UI launchpad and the
science code accept exactly the same values with the same messages.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal, get_args, get_origin


class ParamError(ValueError):
    """A parameter value outside its documented range or choices."""


@dataclass(frozen=True)
class ParamInfo:
    """What the user needs to know about one parameter (the ``metadata["param"]`` of a dataclass field)."""

    help: str
    choices: tuple[Any, ...] | None = None
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    unit: str = ""
    flag: str | None = None  # CLI flag when it differs from --<name-with-dashes> (e.g. --segments)
    aliases: tuple[str, ...] = ()  # further accepted flags (e.g. the original tool's --start_region)
    cli: bool = True  # False: config only (too detailed for the command line)
    # The type users write when parsing turns it into another one (a JSON string or file into a dict).
    input_type: Any = None

    def describe(self) -> str:
        """Help text with the unit and the accepted range, as shown by ``--help`` and the UI launchpad."""
        parts = [self.help + (f" ({self.unit})" if self.unit else "")]
        bounds = [f"{sign} {_number(value)}" for sign, value in ((">", self.gt), ("≥", self.ge), ("≤", self.le))
                  if value is not None]
        if bounds:
            parts.append("; " + ", ".join(bounds))
        return "".join(parts)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def param(default: Any, help: str, **info: Any) -> Any:
    """A dataclass field with its :class:`ParamInfo` (use in frozen dataclasses)."""
    metadata = {"param": ParamInfo(help=help, **info)}
    if isinstance(default, list | dict | set):
        raise TypeError("use a tuple (immutable) as the default of a sequence parameter")
    return dataclasses.field(default=default, metadata=metadata)


@dataclass(frozen=True)
class ParamField:
    """A parameter of a dataclass: its name, type, default and :class:`ParamInfo`."""

    name: str
    type: Any
    default: Any
    info: ParamInfo

    @property
    def flag(self) -> str:
        return self.info.flag or "--" + self.name.replace("_", "-")

    @property
    def user_type(self) -> Any:
        """The type of the value users give (flags, run config): ``info.input_type`` or the field's own."""
        return self.info.input_type or self.type

    @property
    def choices(self) -> tuple[Any, ...] | None:
        if self.info.choices is not None:
            return self.info.choices
        if get_origin(self.type) is Literal:
            return get_args(self.type)
        return None

    @property
    def is_sequence(self) -> bool:
        return get_origin(self.user_type) in (tuple, list)

    @property
    def item_type(self) -> Any:
        """Element type of a sequence parameter, else the parameter's own (optional-stripped) type."""
        if self.is_sequence:
            return get_args(self.user_type)[0]
        return self.user_type


def _strip_optional(tp: Any) -> Any:
    if get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def param_fields(cls: type) -> list[ParamField]:
    """The fields of dataclass ``cls`` declared with :func:`param`, in declaration order."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        info = f.metadata.get("param")
        if info is not None:
            out.append(ParamField(f.name, _strip_optional(hints[f.name]), f.default, info))
    return out


def check_param_ranges(obj: Any) -> None:
    """Raise :class:`ParamError` naming the first field of ``obj`` outside its choices or bounds."""
    for field in param_fields(type(obj)):
        value = getattr(obj, field.name)
        if field.is_sequence and isinstance(value, tuple | list):
            for item in value:
                _check_one(f"{type(obj).__name__}.{field.name}={value!r} (item {item!r})", field, item)
        else:
            _check_one(f"{type(obj).__name__}.{field.name}={value!r}", field, value)


def _check_one(what: str, field: ParamField, value: Any) -> None:
    def fail(expected: str) -> ParamError:
        return ParamError(f"{what} is invalid: expected {expected}")

    choices = field.choices
    if choices is not None and value not in choices:
        raise fail(f"one of {list(choices)}")
    info = field.info
    if value is None or not any(b is not None for b in (info.ge, info.gt, info.le)):
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise fail("a finite number")
    if info.gt is not None and not value > info.gt:
        raise fail(f"a number > {info.gt:g}")
    if info.ge is not None and not value >= info.ge:
        raise fail(f"a number ≥ {info.ge:g}")
    if info.le is not None and not value <= info.le:
        raise fail(f"a number ≤ {info.le:g}")


def add_param_arguments(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    cls: type,
    *,
    only: Iterable[str] | None = None,
    exclude: Iterable[str] = (),
    dest_prefix: str = "",
) -> None:
    """Add one flag per CLI parameter of ``cls`` (``--name`` or ``info.flag``, plus ``info.aliases``).

    Booleans become ``--flag/--no-flag``; sequences take one or more values; choices and defaults are shown in
    ``--help``. The argparse destination is ``dest_prefix`` + the field name (a prefix keeps two parameter sets
    with a field of the same name apart).
    """
    wanted = None if only is None else set(only)
    skipped = set(exclude)
    for field in param_fields(cls):
        if not field.info.cli or field.name in skipped or (wanted is not None and field.name not in wanted):
            continue
        default = field.default
        names = [field.flag, *field.info.aliases]
        kwargs: dict[str, Any] = {"dest": dest_prefix + field.name, "default": default, "help": field.info.describe()}
        if field.user_type is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            item = field.item_type
            kwargs["type"] = item if item in (int, float, str) else str
            if field.is_sequence:
                kwargs["nargs"] = "+"
            if field.choices is not None:
                kwargs["choices"] = list(field.choices)
            kwargs["metavar"] = field.name.upper() if field.choices is None else None
            if kwargs["metavar"] is None:
                kwargs.pop("metavar")
        if default not in (None, "") and field.user_type is not bool:
            shown = " ".join(map(str, default)) if isinstance(default, tuple) else default
            kwargs["help"] += f" [default: {shown}]"
        elif field.user_type is bool:
            kwargs["help"] += f" [default: {'on' if default else 'off'}]"
        kwargs["help"] = kwargs["help"].replace("%", "%%")  # argparse %-formats help texts
        parser.add_argument(*names, **kwargs)


def values_from_namespace(args: argparse.Namespace, cls: type, dest_prefix: str = "") -> dict[str, Any]:
    """The values of ``cls``'s parameters present in ``args`` (sequences as tuples), for ``cls(**values)``."""
    out: dict[str, Any] = {}
    for field in param_fields(cls):
        if hasattr(args, dest_prefix + field.name):
            value = getattr(args, dest_prefix + field.name)
            out[field.name] = tuple(value) if isinstance(value, list) else value
    return out


def params_dict(obj: Any) -> dict[str, Any]:
    """JSON-ready values of ``obj``'s parameters (tuples as lists), in the form users give them: a parsed value
    whose ``input_type`` is a string goes back to a string (a dict to JSON, names to a comma list)."""
    out = {}
    for field in param_fields(type(obj)):
        value = getattr(obj, field.name)
        if field.info.input_type is str and isinstance(value, dict):
            value = json.dumps(value)
        elif field.info.input_type is str and isinstance(value, tuple):
            value = ",".join(map(str, value))
        out[field.name] = list(value) if isinstance(value, tuple) else value
    return out
