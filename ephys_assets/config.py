"""Run configuration of the ``ephys_job`` asset: the dispatch parameters (derived from ``DispatchParams``) plus
which sessions to dispatch and how to lay out the results."""

from __future__ import annotations

from typing import Any, Literal

import pydantic
from pydantic import Field

from ephys_assets.dispatch.params import DispatchParams, params_from_mapping
from ephys_assets.dispatch.plan import OUTPUT_LAYOUTS
from neuro_pipelines.config import config_class

_DispatchConfigFields = config_class(
    "DispatchConfigFields",
    "Dispatch parameters (same names and defaults as ephys-dispatch's flags).",
    DispatchParams,
    extra={
        "sessions": (
            list[str],
            Field(default_factory=list, description="session folders (or NWB files) under data_root; empty: all"),
        ),
        "output_layout": (
            Literal[OUTPUT_LAYOUTS],
            Field(
                default="per_session",
                description="per_session: <results>/<session>/job_<i>.json; flat: <results>/job_<i>.json (the "
                "capsule's layout)",
            ),
        ),
        "use_session_params_file": (
            bool,
            Field(default=True, description="merge <session>/ephys_dispatch.json over these values"),
        ),
    },
    built_at_validation=False,
)


class DispatchConfig(_DispatchConfigFields):
    """Dispatch parameters (same names and defaults as ephys-dispatch's flags), the sessions, the layout.

    An empty ``input`` means: detect the format from the session's files.
    """

    @pydantic.model_validator(mode="after")
    def _parse_dispatch_parameters(self) -> DispatchConfig:
        if self.input:
            params_from_mapping(self.param_values())
        return self

    def param_values(self) -> dict[str, Any]:
        """The dispatch parameters as users give them (for ``resolve_params``)."""
        return self.values_of(DispatchParams)
