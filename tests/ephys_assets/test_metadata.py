import base64
import io

import dagster as dg
import pytest
from PIL import Image

from ephys_assets import sample_data as sd
from ephys_assets.dispatch.jobs import job_json_text
from ephys_assets.dispatch.params import params_from_mapping
from ephys_assets.dispatch.plan import plan_dispatch
from ephys_assets.dispatch.verify import verify_job_file
from ephys_assets.metadata import job_metadata, probe_plot
from neuro_core.plots import DPI, MIN_WIDTH_PX


def _picture(value: dg.MetadataValue) -> tuple[str, Image.Image]:
    """The heading and the decoded image of a picture's markdown."""
    text = value.value
    heading = text.split("\n\n")[0].strip("*")
    encoded = text.split("base64,")[1].split(" ")[0]
    return heading, Image.open(io.BytesIO(base64.b64decode(encoded)))


@pytest.fixture(scope="module")
def written_job(sglx_root, tmp_path_factory):
    params = params_from_mapping({"input": "spikeglx"})
    plan = plan_dispatch(sglx_root, params, ["sglx_sessionA_g0"])
    index = next(i for i, job in enumerate(plan.result.jobs) if "imec1" in job.recording_name)
    job = plan.result.jobs[index]
    path = tmp_path_factory.mktemp("results") / f"job_{index}.json"
    path.write_text(job_json_text(job))
    ok, _found, recording = verify_job_file(path, sglx_root, job)
    assert ok
    return job, index, path, plan, params, recording


def test_job_metadata_is_typed_with_units_and_pictures(written_job):
    job, index, path, plan, params, recording = written_job
    metadata = job_metadata(job, index, path, plan, params, [], None, recording)
    assert all(isinstance(v, dg.MetadataValue) for v in metadata.values()), "every value has its type"
    assert isinstance(metadata["json_path"], dg.PathMetadataValue)
    assert isinstance(metadata["sampling_rate_hz"], dg.FloatMetadataValue)
    assert metadata["sampling_rate_hz"].value == 30000.0
    assert metadata["samples_per_segment"].value == list(job.num_samples)
    assert metadata["channels_per_group"].value == {"0": 96}  # one shank of the NP2.0 4-shank probe
    assert metadata["timestamps_ok"].value is True and "timestamp_problem" not in metadata
    assert "timestamp_check" not in metadata  # "passed" as text was one fact stored as prose
    for key in ("probe_plot", "recording_plot"):
        heading, image = _picture(metadata[key])
        assert job.recording_name in heading
        assert image.width >= MIN_WIDTH_PX and round(image.info["dpi"][0]) == DPI
    assert _picture(metadata["probe_plot"])[0].startswith("NP2010: the contacts of ")
    assert {k for k in metadata if k.endswith("_plot")} == {"probe_plot", "recording_plot"}


def test_recording_without_a_probe_gets_no_probe_picture(tmp_path, written_job):
    import spikeinterface.extractors as se

    nwb, _zarr = sd.write_nwb_session(tmp_path, "noloc", with_locations=False, zarr_copy=False)
    recording = se.read_nwb_recording(nwb, electrical_series_path="acquisition/ElectricalSeriesAP")
    assert not recording.has_probe()
    assert probe_plot(recording, "noloc") is None
    job, index, path, plan, params, _recording = written_job
    metadata = job_metadata(job, index, path, plan, params, [], None, recording)
    assert "probe_plot" not in metadata and "recording_plot" in metadata
