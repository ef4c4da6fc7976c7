"""The W3C ``baggage`` header (https://www.w3.org/TR/baggage/) as far as lanes need it: the
inbound ``lane`` entry, and the outbound fields with our ``lane`` entry merged in.

The one wire format for lanes: the gateway's forwarder (through ``gateway.baggage``) and the
in-process mesh client (``discovery.mesh``) both read and write baggage with it.

A baggage value is a comma-separated list of members ``key=value`` with optional
``;property`` parts; values hold no comma, so splitting on commas is exact. A request may carry
several ``baggage`` fields, which mean their comma-joined list. Members other than ``lane`` are
kept byte for byte; when nothing needs to change, the fields go on exactly as they came.
"""

from __future__ import annotations

from resilience.lanes import valid_lane

NAME = b"baggage"
LANE = b"lane"
_OWS = b" \t"

Field = tuple[bytes, bytes]


def member_key(member: bytes) -> bytes:
    """A member's key, without surrounding whitespace (``b""`` for an empty member)."""
    return member.split(b"=", 1)[0].split(b";", 1)[0].strip(_OWS)


def _is_lane(member: bytes) -> bool:
    # Any spelling of the key counts as ours to remove; only ``lane`` exactly is honoured.
    return member_key(member).lower() == LANE


def inbound_lane(fields: list[Field]) -> str | None:
    """The lane a request's baggage names: the first ``lane`` member whose value is a valid
    lane name (its properties ignored); None when there is none."""
    for name, value in fields:
        if name.lower() != NAME or LANE not in value:
            continue
        for member in value.split(b","):
            key, sep, rest = member.partition(b"=")
            if sep and key.strip(_OWS) == LANE:
                lane = rest.split(b";", 1)[0].strip(_OWS).decode("latin-1")
                if valid_lane(lane):
                    return lane
    return None


def outbound(fields: list[Field] | None, lane: str | None) -> list[Field]:
    """The baggage fields to send upstream: ``fields`` (the request's own, or None) without any
    ``lane`` member, plus ``lane=<lane>`` when ``lane`` is given (None: the stable lane, which
    is never written). One field when anything changed; none when nothing is left."""
    if fields is None:
        return [] if lane is None else [(NAME, LANE + b"=" + lane.encode("ascii"))]
    if lane is None and fields is not None and not any(LANE in v.lower() for _, v in fields):
        return fields  # nothing of ours in it: as it came
    members: list[bytes] = []
    for _, value in fields or ():
        members.extend(m for m in value.split(b",") if m.strip(_OWS) and not _is_lane(m))
    if lane is not None:
        members.append(LANE + b"=" + lane.encode("ascii"))
    if not members:
        return []
    return [(NAME, b",".join(members).strip(_OWS))]
