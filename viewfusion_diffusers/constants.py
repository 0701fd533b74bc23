"""Conventions shared by the data, the model and the tools: the 24 azimuths of NMR and the shipped pipeline."""

from pathlib import Path


# NMR (and every dataset `viewfusion-render` writes) has 24 views per object, view `k` at azimuth 15 k degrees,
# all at elevation 30 degrees. Azimuths are absolute, in the frame of the data: the light is fixed in it.
NUM_VIEWS = 24
AZIMUTH_STEP_DEGREES = 360.0 / NUM_VIEWS
ELEVATION_DEGREES = 30.0

# A generated view counts as drawn from the right side when the true view it looks most like is at most one
# azimuth step from the requested one.
POSE_TOLERANCE_DEGREES = AZIMUTH_STEP_DEGREES

# The paper trains with 1 to 6 input views per sample, as every training run of this package does by default.
TRAINING_MAX_VIEWS = 6


def view_azimuth(index: int) -> float:
    """The azimuth in degrees of view `index` of an NMR-layout object (`15 * index`).

    Example:
        ```py
        >>> view_azimuth(6)
        90.0
        ```
    """
    return AZIMUTH_STEP_DEGREES * int(index)


# The pipeline shipped in this repository's `pipelines/` folder; its Hub repo id when the package is installed
# without the repository around it.
_SHIPPED_PIPELINE = Path(__file__).resolve().parent.parent / "pipelines" / "viewfusion-pybullet-64"
DEFAULT_PIPELINE = (
    str(_SHIPPED_PIPELINE) if _SHIPPED_PIPELINE.is_dir() else "viewfusion-diffusers/viewfusion-pybullet-64"
)
