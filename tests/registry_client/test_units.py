"""The pure parts: gzip for push, challenge parsing, the credentials file."""

from __future__ import annotations

import gzip
import io
import json
import os
import stat
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dockyard.registry import credentials
from dockyard.registry.auth import parse_challenge
from dockyard.registry.compress import BLOCK, gzip_stream, zstd_stream


def _gz(data: bytes) -> bytes:
    return b"".join(gzip_stream(io.BytesIO(data)))


@settings(max_examples=25, deadline=None)
@given(st.binary(max_size=3 * BLOCK // 2))
def test_gzip_round_trips(data: bytes) -> None:
    assert gzip.decompress(_gz(data)) == data


def test_gzip_is_deterministic_valid_and_adaptive(tmp_path: Path) -> None:
    text = b"a layer full of text compresses well\n" * 200_000
    noise = os.urandom(3 * BLOCK)
    mixed = text + noise + text
    out = _gz(mixed)
    assert out == _gz(mixed)  # the same layer always has the same digest
    assert gzip.decompress(out) == mixed
    path = tmp_path / "x.gz"
    path.write_bytes(out)
    assert subprocess.run(["gzip", "-t", str(path)]).returncode == 0
    assert len(_gz(text)) < len(text) / 20
    assert len(_gz(noise)) < len(noise) * 1.01  # stored, not inflated


def test_zstd_is_deterministic_whatever_the_threads(tmp_path: Path) -> None:
    # A layer pushed from a 2-core laptop and a 64-core builder must get one digest.
    mixed = b"text of a layer\n" * 300_000 + os.urandom(2 * BLOCK)
    outs = {t: b"".join(zstd_stream(io.BytesIO(mixed), threads=t)) for t in (1, 2, 4)}
    assert len(set(outs.values())) == 1
    path = tmp_path / "x.zst"
    path.write_bytes(outs[1])
    unpacked = subprocess.run(["zstd", "-dc", str(path)], capture_output=True, check=True)
    assert unpacked.stdout == mixed
    assert b"".join(zstd_stream(io.BytesIO(b""))) != b""  # an empty layer is one frame too


@pytest.mark.parametrize(
    "header, scheme, params",
    [
        (
            'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
            'scope="repository:library/busybox:pull,push"',
            "bearer",
            {
                "realm": "https://auth.docker.io/token",
                "service": "registry.docker.io",
                "scope": "repository:library/busybox:pull,push",
            },
        ),
        ('Basic realm="basic-realm"', "basic", {"realm": "basic-realm"}),
        (
            "BEARER realm=http://x/token, service=svc",
            "bearer",
            {"realm": "http://x/token", "service": "svc"},
        ),
        ('Bearer realm="a\\"b"', "bearer", {"realm": 'a"b'}),
    ],
)
def test_parse_challenge(header: str, scheme: str, params: dict[str, str]) -> None:
    assert parse_challenge(header) == (scheme, params)


def test_credentials_file(docker_config: Path) -> None:
    assert credentials.get("127.0.0.1:5001") is None
    credentials.store("127.0.0.1:5001", "alice", "pw:with:colons")
    credentials.store("docker.io", "bob", "hub-pw")
    path = docker_config / "config.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = json.loads(path.read_text())
    assert set(data["auths"]) == {"127.0.0.1:5001", "https://index.docker.io/v1/"}
    assert credentials.get("127.0.0.1:5001") == ("alice", "pw:with:colons")
    assert credentials.get("docker.io") == ("bob", "hub-pw")
    assert credentials.erase("127.0.0.1:5001") is True
    assert credentials.erase("127.0.0.1:5001") is False
    assert credentials.get("127.0.0.1:5001") is None
    # Keys written by other tools with a scheme are found too.
    data = json.loads(path.read_text())
    data["auths"]["http://10.1.2.3:5000"] = {"auth": "dTpw"}  # u:p
    path.write_text(json.dumps(data))
    assert credentials.get("10.1.2.3:5000") == ("u", "p")


def test_broken_config_json_is_a_clear_error(docker_config: Path) -> None:
    from dockyard.errors import InvalidArgument

    docker_config.mkdir()
    (docker_config / "config.json").write_text("{not json")
    with pytest.raises(InvalidArgument, match="cannot read"):
        credentials.get("127.0.0.1:5001")
