from __future__ import annotations

from pathlib import Path

import pytest

from bench.wrk import wrk_command


def test_headers_go_on_the_command_line_before_the_script_and_url() -> None:
    command = wrk_command(
        "https://127.0.0.1:8443/",
        connections=50,
        duration_s=10,
        script=Path("upload.lua"),
        headers={"Connection": "close", "Authorization": "Bearer a.b.c"},
    )
    assert command[-5:] == [
        "-H",
        "Authorization: Bearer a.b.c",
        "-s",
        "upload.lua",
        "https://127.0.0.1:8443/",
    ]
    assert command[command.index("-H") + 1] == "Connection: close"
    assert "-c50" in command and "-d10s" in command and "--latency" in command


def test_no_headers_no_header_options() -> None:
    command = wrk_command("http://127.0.0.1:8080/", connections=1, duration_s=0.2)
    assert "-H" not in command
    assert "-t1" in command and "-d1s" in command


@pytest.mark.parametrize(
    ("name", "value"),
    [("X-Bad\r\nInjected", "v"), ("Bad Name", "v"), ("", "v"), ("X-Ok", "a\r\nb: c")],
)
def test_a_header_wrk_would_mangle_is_refused(name: str, value: str) -> None:
    with pytest.raises(ValueError, match="not a header wrk can send"):
        wrk_command("http://127.0.0.1:8080/", connections=1, duration_s=1, headers={name: value})
