"""The cameras of the NMR layout: 24 azimuths on a circle at elevation 30 degrees, framing by bounding sphere.

Conventions (as NMR's ``cameras.npz``):

- the world is z up; view `k` looks at the origin from azimuth `view_azimuth(k)` (15 k degrees, measured from
  +x towards +y), so view 0 looks from +x and, in it, +y is to the right of the image;
- ``world_mat_k`` (4x4) maps world to camera coordinates, OpenCV-style: x right, y down, z forward;
- ``camera_mat_k`` (4x4) maps camera coordinates to normalised image coordinates: ``u = f x / z``,
  ``v = f y / z`` with ``f = 1 / tan(fov / 2)``; ``(u, v)`` in [-1, 1] span the image, (-1, -1) the top-left
  corner. The pixel column is ``(u + 1) / 2 * W`` and the row ``(v + 1) / 2 * H``.

The object's bounding-box centre sits at the origin and the camera at `distance = radius / sin(fov / 2)`,
where `radius` is the half-diagonal of the bounding box: the bounding sphere touches the edges of the image,
so nothing is clipped at any azimuth.
"""

import math

import numpy as np

from ..constants import ELEVATION_DEGREES, NUM_VIEWS, view_azimuth


FOV_DEGREES = 40.0


def camera_matrices(
    azimuth_degrees: float, elevation_degrees: float, distance: float, fov_degrees: float = FOV_DEGREES
):
    """`(world_mat, camera_mat, eye)` of a camera on a sphere around the origin, looking at it, z up.

    Example:
        ```py
        >>> world_mat, camera_mat, eye = camera_matrices(0.0, 30.0, 2.0)
        >>> eye.round(3)  # azimuth 0 is +x; 30 degrees up
        array([1.732, 0.   , 1.   ])
        >>> point = camera_mat @ world_mat @ np.array([0, 0, 0, 1.0])
        >>> (point[:2] / point[2]).round(3)  # the origin lands on the image centre
        array([0., 0.])
        >>> point = camera_mat @ world_mat @ np.array([0, 0.5, 0, 1.0])
        >>> (point[:2] / point[2]).round(3)  # +y is to the right in view 0
        array([0.687, 0.   ])
        ```
    """
    azimuth, elevation = math.radians(azimuth_degrees), math.radians(elevation_degrees)
    eye = distance * np.array(
        [math.cos(elevation) * math.cos(azimuth), math.cos(elevation) * math.sin(azimuth), math.sin(elevation)]
    )
    forward = -eye / np.linalg.norm(eye)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    rotation = np.stack([right, down, forward])  # rows: camera axes in world coordinates
    world_mat = np.eye(4)
    world_mat[:3, :3] = rotation
    world_mat[:3, 3] = -rotation @ eye
    focal = 1.0 / math.tan(math.radians(fov_degrees) / 2)
    camera_mat = np.diag([focal, focal, 1.0, 1.0])
    return world_mat, camera_mat, eye


def bounding_sphere(lower, upper) -> tuple[np.ndarray, float]:
    """`(center, radius)` of the sphere through the corners of the box `lower .. upper`; raises on an empty box.

    Example:
        ```py
        >>> bounding_sphere([0, 0, 0], [2, 0, 0])
        (array([1., 0., 0.]), 1.0)
        ```
    """
    lower, upper = np.asarray(lower, dtype=np.float64), np.asarray(upper, dtype=np.float64)
    radius = float(np.linalg.norm(upper - lower) / 2)
    if not np.isfinite(radius) or radius <= 0:
        raise ValueError(f"empty or invalid bounding box {lower} .. {upper}")
    return (lower + upper) / 2, radius


def camera_distance(radius: float, fov_degrees: float = FOV_DEGREES) -> float:
    """How far from the centre the camera stands for a bounding sphere of `radius` to just fill the image.

    Example:
        ```py
        >>> round(camera_distance(1.0), 3)  # 1 / sin(20 degrees)
        2.924
        ```
    """
    return radius / math.sin(math.radians(fov_degrees) / 2)


def nmr_cameras(distance: float) -> dict[str, np.ndarray]:
    """The `cameras.npz` dictionary of the 24 views at `distance`: `world_mat_k`, `camera_mat_k` and inverses.

    Example:
        ```py
        >>> cameras = nmr_cameras(3.0)
        >>> cameras["world_mat_6"].shape
        (4, 4)
        ```
    """
    cameras = {}
    for k in range(NUM_VIEWS):
        world_mat, camera_mat, _ = camera_matrices(view_azimuth(k), ELEVATION_DEGREES, distance)
        cameras[f"world_mat_{k}"] = world_mat
        cameras[f"camera_mat_{k}"] = camera_mat
        cameras[f"world_mat_inv_{k}"] = np.linalg.inv(world_mat)
        cameras[f"camera_mat_inv_{k}"] = np.linalg.inv(camera_mat)
    return cameras
