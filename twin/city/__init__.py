"""The city: one local metric frame and the layers loaded into it (see ``City`` and ``load``)."""

from twin.city.city import City, detect_format, load
from twin.city.frame import Frame, Placement, parse_crs

__all__ = ["City", "Frame", "Placement", "detect_format", "load", "parse_crs"]
