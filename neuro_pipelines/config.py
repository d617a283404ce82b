"""Dagster run-config classes derived from the pure parameter dataclasses (``neuro_core.params``).

``config_class("RawNmmConfig", SimulationParams, SimulationOptions)`` gives a ``dg.Config`` with one field per
parameter: same name, default, bounds, choices and description (shown in the launchpad). Building the config
also builds every dataclass, so a value the science code would refuse fails when the run config is checked,
before any step runs, with the dataclass' own message.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Literal

import dagster as dg
import pydantic
from pydantic import Field

from neuro_core.params import ParamField, param_fields


class ParamsConfig(dg.Config):
    """Base of the derived config classes: :meth:`build` returns one of the parameter dataclasses."""

    param_classes: ClassVar[tuple[type, ...]] = ()
    built_at_validation: ClassVar[bool] = True

    @pydantic.model_validator(mode="after")
    def _build_every_parameter_set(self) -> ParamsConfig:
        if self.built_at_validation:
            for cls in self.param_classes:
                self.build(cls)
        return self

    def values_of(self, cls: type) -> dict[str, Any]:
        """This config's values of ``cls``'s fields, as users give them (lists stay lists)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return {name: getattr(self, name) for name in names if name in type(self).model_fields}

    def build(self, cls: type) -> Any:
        """``cls`` (one of :attr:`param_classes`) from this config's values (lists become tuples)."""
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in self.values_of(cls).items()})


def _config_type(field: ParamField) -> Any:
    choices = field.choices
    # A default outside the choices ("" = detect the input format) keeps the plain type.
    literal = choices is not None and not field.is_sequence and field.default in (*choices, None)
    item = Literal[choices] if literal else field.item_type
    tp = list[field.item_type] if field.is_sequence else item
    return tp | None if field.default is None else tp


def _config_field(field: ParamField) -> Any:
    default = list(field.default) if isinstance(field.default, tuple) else field.default
    kwargs: dict[str, Any] = {"default": default, "description": field.info.describe()}
    if not field.is_sequence:
        kwargs.update({k: getattr(field.info, k) for k in ("ge", "gt", "le") if getattr(field.info, k) is not None})
    return Field(**kwargs)


def config_class(
    name: str,
    doc: str,
    *param_classes: type,
    exclude: tuple[str, ...] = (),
    extra: dict[str, tuple[Any, Any]] | None = None,
    built_at_validation: bool = True,
) -> type[ParamsConfig]:
    """A ``ParamsConfig`` subclass named ``name`` with the fields of ``param_classes`` (first one wins on a name
    shared by several) plus ``extra`` pydantic fields (``{name: (type, Field(...))}``).

    ``built_at_validation=False`` for parameter sets whose user values are parsed by the domain (the subclass
    then validates them its own way)."""
    fields: dict[str, tuple[Any, Any]] = {}
    for cls in param_classes:
        for field in param_fields(cls):
            if field.name not in exclude and field.name not in fields:
                fields[field.name] = (_config_type(field), _config_field(field))
    fields.update(extra or {})
    model = pydantic.create_model(name, __base__=ParamsConfig, __doc__=doc, **fields)
    model.param_classes = param_classes
    model.built_at_validation = built_at_validation
    return model
