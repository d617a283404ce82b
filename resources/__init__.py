"""Dagster resources shared by the code location (paths, the Octave/MATLAB engine)."""
