"""The synthetic-source asset; resources (``deepsif_paths``, ``octave``) are bound where the domains merge."""

import dagster as dg

from deepsif_assets.synthetic.assets import synthetic_source

defs = dg.Definitions(assets=[synthetic_source])
