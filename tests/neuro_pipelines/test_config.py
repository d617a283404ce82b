"""The Dagster config classes are derived from the parameter dataclasses: same names, defaults, bounds, checks."""

import dataclasses

import pytest

from deepsif_assets.config import NmmSpikesConfig, RawNmmConfig, SyntheticSourceConfig
from deepsif_assets.params import ExtractionParams, SimulationOptions, SyntheticParams
from deepsif_assets.simulation.params import SimulationParams
from ephys_assets.config import DispatchConfig
from ephys_assets.dispatch.params import DispatchParams
from neuro_core.params import param_fields


@pytest.mark.parametrize(
    ("config", "classes"),
    [
        (RawNmmConfig, (SimulationParams, SimulationOptions)),
        (NmmSpikesConfig, (ExtractionParams,)),
        (SyntheticSourceConfig, (SyntheticParams,)),
        (DispatchConfig, (DispatchParams,)),
    ],
)
def test_every_parameter_is_a_config_field_with_its_default_and_help(config, classes):
    for cls in classes:
        for field in param_fields(cls):
            model_field = config.model_fields[field.name]
            default = list(field.default) if isinstance(field.default, tuple) else field.default
            assert model_field.default == default, field.name
            assert model_field.description.startswith(field.info.help), field.name


def test_defaults_build_the_dataclasses_unchanged():
    config = RawNmmConfig()
    assert config.build(SimulationParams) == SimulationParams()
    assert config.build(SimulationOptions) == SimulationOptions()
    assert NmmSpikesConfig().build(ExtractionParams) == ExtractionParams()
    assert dataclasses.asdict(SyntheticSourceConfig().build(SyntheticParams)) == dataclasses.asdict(SyntheticParams())


def test_a_value_the_science_refuses_fails_when_the_config_is_built():
    with pytest.raises(Exception, match=r"a whole multiple of dt=0\.3"):
        RawNmmConfig(dt=0.3)
    with pytest.raises(Exception, match="greater than 0"):
        RawNmmConfig(dt=-1.0)
    with pytest.raises(Exception, match="fast"):
        RawNmmConfig(engine="gpu")
