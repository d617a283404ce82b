"""Resources of the ``deepsif`` group, bound once in ``deepsif_assets.definitions``."""

from resources.deepsif_paths import DeepsifPaths
from resources.octave import OctaveResource

DEEPSIF_RESOURCES = {"deepsif_paths": DeepsifPaths(), "octave": OctaveResource()}
