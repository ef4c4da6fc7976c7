"""The exporter process: posts the span batches a gateway worker writes to its standard input.

Encoding stays in the worker (it is cheap, and it needs the spans); the HTTP posts, their
waits and gzip run here, so the worker's event loop never shares its GIL with an export thread.

Standard input carries frames: a little-endian u32 length, then the payload. The first frame is
the JSON configuration (endpoint, headers, timeout, compression, log level and format: headers
may hold credentials, so they never go on the command line); every later one is a u32 span
count followed by an encoded ``ExportTraceServiceRequest``. End of input, which the worker's
exit gives too however it exits, ends the process after the batches already read are posted.
SIGINT and SIGTERM are ignored: a terminal's Ctrl-C or a group-wide stop reaches the worker as
well, and the worker closes the pipe once it has flushed.
"""

from __future__ import annotations

import json
import logging
import signal
import struct
import sys
from typing import BinaryIO

from gateway.observability.logs import configure_logging
from gateway.observability.otlp_sender import OtlpHttpSender

log = logging.getLogger("meshgate.tracing")

_LENGTH = struct.Struct("<I")
# A frame larger than this is not one the worker writes: the stream is out of step.
MAX_FRAME = 64 * 1024 * 1024


def frame(payload: bytes) -> bytes:
    return _LENGTH.pack(len(payload)) + payload


def batch_frame(count: int, body: bytes) -> bytes:
    return _LENGTH.pack(len(body) + 4) + _LENGTH.pack(count) + body


def read_frame(stream: BinaryIO) -> bytes | None:
    """The next payload; None at the end of the input (a frame cut short ends it too)."""
    head = stream.read(4)
    if len(head) < 4:
        return None
    (size,) = _LENGTH.unpack(head)
    if size > MAX_FRAME:
        raise ValueError(f"frame of {size} bytes: the span stream is out of step")
    payload = stream.read(size)
    return payload if len(payload) == size else None


def serve(stream: BinaryIO) -> int:
    first = read_frame(stream)
    if first is None:
        return 0
    config = json.loads(first)
    configure_logging(config.get("log_level", "INFO"), config.get("log_format", "text"))
    sender = OtlpHttpSender(
        config["endpoint"],
        headers=config.get("headers") or {},
        timeout=float(config.get("timeout", 10.0)),
        compression=config.get("compression"),
    )
    try:
        while (payload := read_frame(stream)) is not None:
            (count,) = _LENGTH.unpack_from(payload)
            sender.post(payload[4:], count)
    finally:
        sender.close()
    return 0


def main() -> int:
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    try:
        return serve(sys.stdin.buffer)
    except (ValueError, KeyError, OSError) as exc:
        log.error("span exporter process stopped: %s", exc)
        return 1


if __name__ == "__main__":
    sys.exit(main())
