import base64
import io

import dagster as dg
import numpy as np
from PIL import Image

from deepsif_assets.extraction import ExtractionReport, ExtractionState, ExtractionStatus
from deepsif_assets.layout import RegionLayout
from deepsif_assets.metadata import clip_metadata, raw_metadata, synthetic_metadata
from deepsif_assets.params import SyntheticParams
from deepsif_assets.simulation.region import RegionSimulationResult
from deepsif_assets.synthetic.pipeline import build_synthetic_source, choose_regions
from neuro_core.measure import StepPeakRss
from neuro_core.plots import DPI, MAX_PNG_BYTES, MIN_WIDTH_PX
from tests.support import clipfactory
from tests.support.clipfactory import requires_octave, synthetic_request
from tests.support.region_fixtures import ANATOMY, make_anatomy

MAX_TEXT_WORDS = 4  # a text value names something (an engine, a fingerprint); explanations go in descriptions


def _picture(value: dg.MetadataValue) -> tuple[str, Image.Image, int]:
    text = value.value
    encoded = text.split("base64,")[1].split(" ")[0]
    png = base64.b64decode(encoded)
    return text.split("\n\n")[0].strip("*"), Image.open(io.BytesIO(png)), len(png)


def _check_typed_and_terse(metadata: dict) -> None:
    assert all(isinstance(v, dg.MetadataValue) for v in metadata.values())
    for key, value in metadata.items():
        if isinstance(value, dg.TextMetadataValue):
            assert len(value.value.split()) <= MAX_TEXT_WORDS, f"{key} holds prose: {value.value!r}"
        if isinstance(value, dg.FloatMetadataValue):
            assert value.value == float(f"{value.value:.4g}") or abs(value.value) >= 1000, (
                f"{key} not rounded"
            )
    for key in metadata:
        if key.endswith("_plot"):
            _heading, image, size = _picture(metadata[key])
            assert image.width >= MIN_WIDTH_PX and round(image.info["dpi"][0]) == DPI and size < MAX_PNG_BYTES


def _simulation(region: int) -> RegionSimulationResult:
    t = np.arange(2000) * 0.5 + 3000.0
    return RegionSimulationResult(
        region=region,
        out_dir="unused",
        engine="fast",
        raw_format="compact",
        excitable_tvb_node=region + 1,
        mapping="tvb",
        files={"mean_iter_0_a_iter_7_ds.mat": 2_500_000},
        seeds={0: 11},
        peak_abs_after_transient={0: 12.3456},
        steps=40_000,
        wall_time_s=3.21,
        engine_time_s=2.8,
        preview_time_ms=t,
        preview_mv=np.sin(t / 30.0),
    )


def test_raw_metadata_pictures_the_region_and_its_activity_and_measures_the_step(tmp_path):
    with StepPeakRss() as memory:
        np.ones(10_000_000)[::512] = 2.0
    metadata = raw_metadata(
        _simulation(7), RegionLayout(tmp_path, 7), {"fingerprint": "ab"}, [7, 8], 3_000_000, ANATOMY, memory
    )
    _check_typed_and_terse(metadata)
    assert metadata["raw_mb"].value == 2.5 and metadata["batch_peak_disk_mb"].value == 3.0
    assert metadata["batch_regions"].value == [7, 8]
    assert metadata["batch_peak_rss_mb"].value >= 80  # the 80 MB touched inside the block
    assert metadata["ms_per_step"].value == 0.07  # the engine's 2.8 s over 40 000 steps, 3 significant digits
    assert {k for k in metadata if k.endswith("_plot")} == {"region_plot", "activity_plot"}
    assert _picture(metadata["region_plot"])[0] == "Region 7 (the excited region) on the inflated cortex"
    assert "excitable node" in _picture(metadata["activity_plot"])[0]
    assert not {"out_dir", "bytes", "bytes_written", "peak_disk"} & set(metadata)  # one key per fact


def test_raw_metadata_without_the_cortex_files_has_no_region_picture(tmp_path):
    anatomy = make_anatomy(tmp_path / "anatomy")  # lead field and connectivity only: enough to simulate
    metadata = raw_metadata(_simulation(7), RegionLayout(tmp_path, 7), {}, [7], 0, anatomy)
    assert "region_plot" not in metadata and "activity_plot" in metadata and "batch_peak_rss_mb" not in metadata


def test_clip_metadata_pictures_the_source_channel_of_the_clips(tmp_path):
    layout = RegionLayout(tmp_path / "source", 12)
    for k in range(1, 8):
        clipfactory.write_clip(layout.clip_path(k), 12, 100 + 20 * k, seed=k)
    status = ExtractionStatus(ExtractionState.COMPLETE, {}, {0: 4, 1: 3}, 7)
    report = ExtractionReport(status, False, 0, True, 5_000_000, 9_000_000, {"extraction_s": 1.234})
    metadata = clip_metadata(report, layout, {"fingerprint": "f00d"}, "octave")
    _check_typed_and_terse(metadata)
    assert metadata["total_clips"].value == 7 and metadata["extraction_s"].value == 1.23
    assert _picture(metadata["clips_plot"])[0] == "Region 12: the source channel of 6 of its 7 clips"


@requires_octave
def test_synthetic_metadata_pictures_the_clip_map_the_distributions_and_a_sample(tmp_path, octave):
    pool = clipfactory.write_universal_pool(tmp_path / "pool", 3)
    source = tmp_path / "source"
    clipfactory.link_clips(source / "nmm_spikes", {3: 2, 4: 1, 600: 3}, pool)
    params = SyntheticParams(mode="test", seed=3, write_clip_store=False)
    choice = choose_regions(source, params, ["3", "4", "600"])
    result = build_synthetic_source(
        synthetic_request(ANATOMY, source, choice.regions, mode="test", seed=3, write_clip_store=False),
        octave.call,
    )
    metadata = synthetic_metadata(result, choice, params, ANATOMY)
    _check_typed_and_terse(metadata)
    assert isinstance(metadata["output_file"], dg.PathMetadataValue)
    assert {k for k in metadata if k.endswith("_plot")} == {
        "clips_per_region_plot",
        "distributions_plot",
        "example_sources_plot",
    }
    assert (
        _picture(metadata["clips_per_region_plot"])[0]
        == "Clips per centre region on the cortex (3 regions used)"
    )
    assert _picture(metadata["example_sources_plot"])[0] == "Sample 0: its source patches on the cortex"
