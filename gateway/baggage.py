"""The W3C ``baggage`` header for lanes. The wire format lives in ``discovery.baggage``, so the
gateway's forwarder and the in-process mesh client read and write it the same way; this module
keeps the gateway's import path."""

from __future__ import annotations

from discovery.baggage import LANE, NAME, Field, inbound_lane, member_key, outbound

__all__ = ["LANE", "NAME", "Field", "inbound_lane", "member_key", "outbound"]
