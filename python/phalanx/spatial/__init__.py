"""Spatial (fused-tile) partitioning of the early, feature-map-heavy layers (issue 13).

See docs/spatial.md."""

from .geometry import LayerGeometry, TilePlan, plan_tiles, split  # noqa: F401
from .planner import plan, spatial_prefix  # noqa: F401
from .tile_parallel import TileParallel, tile_plans  # noqa: F401

__all__ = [
    "LayerGeometry",
    "TilePlan",
    "TileParallel",
    "plan",
    "plan_tiles",
    "spatial_prefix",
    "tile_plans",
    "split",
]
