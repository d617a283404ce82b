import numpy as np
import probeinterface as pi
from matplotlib.collections import PolyCollection
from matplotlib.colors import to_rgba

from ephys_assets.plots import (
    contact_groups,
    group_colours,
    probe_figure,
    probe_png,
    recording_figure,
    recording_png,
)
from neuro_core.plots import DPI, MAX_PNG_BYTES, MIN_WIDTH_PX, png_size, small_texts


def _two_shank_probegroup() -> tuple[pi.ProbeGroup, np.ndarray]:
    """A two-shank probe wired to channels 0…39 in reverse order; group = shank, as SpikeInterface sets it."""
    probe = pi.generate_multi_shank(num_shank=2, num_columns=2, num_contact_per_column=10)
    n = probe.get_contact_count()
    probe.set_device_channel_indices(np.arange(n)[::-1])
    probe.annotate(model_name="two-shank test probe")
    group = pi.ProbeGroup()
    group.add_probe(probe)
    channel_groups = np.empty(n, dtype=int)
    channel_groups[probe.device_channel_indices] = probe.shank_ids.astype(int)
    return group, channel_groups


def test_contacts_take_their_channel_group_through_the_wiring():
    group, channel_groups = _two_shank_probegroup()
    (per_contact,) = contact_groups(group, channel_groups)
    assert per_contact.tolist() == group.probes[0].shank_ids.astype(int).tolist()


def test_probe_figure_colours_contacts_by_group_with_a_legend_on_the_probe_outline():
    group, channel_groups = _two_shank_probegroup()
    fig = probe_figure(group, channel_groups, "rec A")
    overview, zoom = fig.axes
    legend = zoom.get_legend()
    assert legend is not None
    assert [t.get_text() for t in legend.get_texts()] == ["group 0: 20 channels", "group 1: 20 channels"]
    colours = group_colours([0, 1])
    expected = [to_rgba(colours[g]) for g in group.probes[0].shank_ids.astype(int)]
    for ax in (overview, zoom):
        contacts, outline = (c for c in ax.collections if isinstance(c, PolyCollection))
        assert np.allclose(contacts.get_facecolor(), expected)  # probeinterface drew them in our colours
        (contour,) = outline.get_paths()
        assert contour.contains_points(group.probes[0].contact_positions).all()  # the probe's own outline
        assert contacts.get_zorder() > outline.get_zorder()  # contacts on top of the opaque shanks
    assert fig.get_suptitle() == "rec A\ntwo-shank test probe"
    assert small_texts(fig) == []


def test_probe_png_is_wide_sharp_and_small():
    group, channel_groups = _two_shank_probegroup()
    png = probe_png(group, channel_groups, "rec A")
    width, _height, dpi = png_size(png)
    assert width >= MIN_WIDTH_PX and round(dpi) == DPI and len(png) < MAX_PNG_BYTES


def test_recording_figure_counts_channels_per_group_and_samples_per_segment():
    fig = recording_figure(np.array([0] * 3 + [1] * 5), [30000, 15000], 30000.0, "rec A")
    by_group, by_segment = fig.axes
    assert [p.get_width() for p in by_group.patches] == [3, 5]
    assert [p.get_width() for p in by_segment.patches] == [1.0, 0.5]  # seconds
    labels = [t.get_text() for t in by_segment.texts]
    assert labels == ["1 s, 30,000 samples", "0.5 s, 15,000 samples"]
    assert by_segment.get_title() == "2 segments at 30,000 Hz"
    ticks = [t.get_text() for t in by_group.get_xticklabels()]
    assert all(t.lstrip("−-").isdigit() for t in ticks if t)  # channel counts have whole-number ticks
    assert small_texts(fig) == []
    assert png_size(recording_png(np.zeros(4, int), [10], 1000.0, "r"))[0] >= MIN_WIDTH_PX
