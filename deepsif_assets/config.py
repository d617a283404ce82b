"""Run configuration of the DeepSIF assets, derived field by field from the pure parameter sets."""

from deepsif_assets.params import ExtractionParams, SimulationOptions, SyntheticParams
from deepsif_assets.simulation.params import SimulationParams
from neuro_pipelines.config import config_class

RawNmmConfig = config_class(
    "RawNmmConfig",
    "Simulation of one region: every constant of the original generate_tvb_data.py, the engine and the raw "
    "format. Defaults are the original configuration; BrainForge: dt 1, n_segments 10, segment_ms 5000.",
    SimulationParams,
    SimulationOptions,
)
NmmSpikesConfig = config_class(
    "NmmSpikesConfig",
    "Clip extraction of one region (matlab/process_region_clips.m) and raw-data clean-up.",
    ExtractionParams,
)
SyntheticSourceConfig = config_class(
    "SyntheticSourceConfig",
    "The synthetic source over every region whose clips are materialized (matlab/generate_synthetic_source.m).",
    SyntheticParams,
)
