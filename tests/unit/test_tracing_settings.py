"""The tracing environment: what each variable sets, and errors that name the variable."""

from __future__ import annotations

import io

import pytest

from gateway.observability.span_exporter_process import MAX_FRAME, batch_frame, frame, read_frame
from gateway.observability.tracing import TracingSettings

ENDPOINT = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}


def test_defaults_are_the_exporter_process_and_opentelemetrys_batch_values() -> None:
    settings = TracingSettings.from_env(ENDPOINT, "edge")
    assert settings.enabled and settings.endpoint == "http://127.0.0.1:4318/v1/traces"
    assert settings.exporter == "process"
    assert (settings.schedule_delay, settings.queue_size, settings.batch_size) == (5.0, 2048, None)
    assert settings.timeout == 10.0


def test_each_variable_is_read() -> None:
    settings = TracingSettings.from_env(
        {
            **ENDPOINT,
            "GATEWAY_TRACING_EXPORTER": "Thread",
            "OTEL_BSP_SCHEDULE_DELAY": "250",
            "OTEL_BSP_MAX_QUEUE_SIZE": "100",
            "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "10",
            "OTEL_EXPORTER_OTLP_TIMEOUT": "3000",
            "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "1500",
        },
        "edge",
    )
    assert settings.exporter == "thread"
    assert (settings.schedule_delay, settings.queue_size, settings.batch_size) == (0.25, 100, 10)
    assert settings.timeout == 1.5  # the traces-specific variable wins


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("GATEWAY_TRACING_EXPORTER", "grpc", "GATEWAY_TRACING_EXPORTER: use process or thread"),
        ("OTEL_BSP_SCHEDULE_DELAY", "5s", "OTEL_BSP_SCHEDULE_DELAY: not a whole number"),
        ("OTEL_BSP_MAX_QUEUE_SIZE", "0", "OTEL_BSP_MAX_QUEUE_SIZE: must be positive"),
        ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "4096", "must not exceed OTEL_BSP_MAX_QUEUE_SIZE"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "-1", "OTEL_EXPORTER_OTLP_TIMEOUT: must be positive"),
    ],
)
def test_a_bad_value_names_its_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TracingSettings.from_env({**ENDPOINT, name: value}, "edge")


def test_frames_read_back_and_a_stream_out_of_step_is_refused() -> None:
    stream = io.BytesIO(frame(b"{}") + batch_frame(3, b"body") + batch_frame(1, b"cut")[:-1])
    assert read_frame(stream) == b"{}"
    assert read_frame(stream) == b"\x03\x00\x00\x00body"
    assert read_frame(stream) is None  # cut short: the end
    assert read_frame(io.BytesIO(b"")) is None
    with pytest.raises(ValueError, match="out of step"):
        read_frame(io.BytesIO((MAX_FRAME + 1).to_bytes(4, "little")))
