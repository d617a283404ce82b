"""The three pictures a DeepSIF region attaches (cortex views, activity, clips): CPU seconds to make each PNG with
``figure_png`` against the former way, ``savefig`` to a full-colour PNG that is then decoded for the palette.

    .venv/bin/python benchmarks/pictures_benchmark.py [--repeats 5]

Both ways are timed alternately in one run on the bundled anatomy (region 7) and synthetic traces; the best of
``--repeats`` is printed per picture with the ratio, and the pixels are checked to be the same. Run it on an idle
machine (``flock /tmp/neuro-bench.lock …``).
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from deepsif_assets import plots  # noqa: E402
from neuro_core.plots import DPI, figure_pixels, styled  # noqa: E402


def _savefig_pixels(fig):
    """The former way: a full-colour PNG from ``savefig``, decoded again."""
    from PIL import Image

    with styled():
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=DPI, facecolor="white")
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    surface = plots.load_cortex(REPO / "data" / "deepsif-anatomy")
    rng = np.random.default_rng(0)
    time_ms = np.arange(20_000) * 0.5
    trace = 5.0 * np.sin(time_ms / 50.0) + rng.normal(size=time_ms.size)
    clips = rng.normal(size=(8, 500)).cumsum(axis=1)
    pictures = {
        "cortex views": lambda: plots.region_figure(surface, 7, "Region 7 on the inflated cortex"),
        "activity": lambda: plots.activity_figure(time_ms, trace, "Region 7: excitable node"),
        "clips": lambda: plots.clips_figure(clips, 500.0, 120, "Region 7"),
    }
    ways = {"savefig round trip": _savefig_pixels, "figure_pixels": figure_pixels}
    best = {(picture, way): float("inf") for picture in pictures for way in ways}
    for _ in range(args.repeats):
        for picture, make in pictures.items():
            pixels = {}
            for way, render in ways.items():
                fig = make()  # drawing the figure's artists is common to both ways: not timed
                start = time.process_time()
                pixels[way] = np.asarray(render(fig))
                best[picture, way] = min(best[picture, way], time.process_time() - start)
            if not np.array_equal(*pixels.values()):
                print(f"{picture}: the pixels differ", file=sys.stderr)
                return 1
    print(f"{'picture':14s} {'savefig round trip':>20s} {'figure_pixels':>15s} {'ratio':>7s}   (CPU-s, best of "
          f"{args.repeats}; pixels identical)")
    for picture in pictures:
        old, new = best[picture, "savefig round trip"], best[picture, "figure_pixels"]
        print(f"{picture:14s} {old:20.3f} {new:15.3f} {old / new:6.2f}×")
    old = sum(best[p, "savefig round trip"] for p in pictures)
    new = sum(best[p, "figure_pixels"] for p in pictures)
    print(f"{'per region':14s} {old:20.3f} {new:15.3f} {old / new:6.2f}×")
    return 0


if __name__ == "__main__":
    sys.exit(main())
