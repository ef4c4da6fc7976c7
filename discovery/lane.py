"""Which gray-release lane an instance is in, from what discovery knows of it: the metadata
key ``lane`` (Consul's ``ServiceMeta.lane``, ``metadata: {lane: NAME}`` in a route file's
``services:``), else a tag ``lane=NAME``, else ``stable``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from resilience.lanes import STABLE

LANE_KEY = "lane"
LANE_TAG = "lane="


def lane_of(metadata: Mapping[str, str], tags: Iterable[str] = ()) -> str:
    """The instance's lane. Metadata wins over a tag; an empty value names no lane. Names are
    compared as written (case-sensitive); one no route can name simply receives no traffic."""
    lane = metadata.get(LANE_KEY, "").strip()
    if lane:
        return lane
    for tag in tags:
        if tag.startswith(LANE_TAG):
            lane = tag[len(LANE_TAG) :].strip()
            if lane:
                return lane
    return STABLE
