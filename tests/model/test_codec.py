"""The stored form of a container: every Container survives encode -> decode unchanged, a
row from a newer dockyard or a broken row is a clear error, and rows written before the
typed model (Docker's inspect JSON) are read as the model."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dockyard.errors import CorruptData
from dockyard.model import codec
from dockyard.model.container import (
    Container,
    ContainerSpec,
    ContainerState,
    Endpoint,
    EndpointSpec,
    Healthcheck,
    LogConfig,
    Mount,
    PortBinding,
    PublishedPort,
    Resources,
    RestartPolicy,
    Security,
    Ulimit,
)

text = st.text(alphabet="abc/=:-_.0123 é", max_size=8)
texts = st.lists(text, max_size=3).map(tuple)
pairs = st.lists(st.tuples(text, text), max_size=3).map(tuple)
small = st.integers(0, 70000)

mounts = st.builds(
    Mount,
    st.sampled_from(["bind", "volume", "tmpfs"]),
    text,
    source=text,
    read_only=st.booleans(),
    origin=st.sampled_from(["bind", "mount", "tmpfs", "image", "anonymous"]),
    mode=text,
    tmpfs_size=small,
    tmpfs_options=texts,
    volume_labels=pairs,
)
specs = st.builds(
    ContainerSpec,
    text,
    name=text,
    cmd=st.none() | texts,
    entrypoint=st.none() | texts,
    env=texts,
    tty=st.booleans(),
    labels=pairs,
    exposed_ports=texts,
    stop_timeout=st.none() | small,
    healthcheck=st.none() | st.builds(Healthcheck, texts, small, small, small, small),
    mounts=st.lists(mounts, max_size=3).map(tuple),
    networks=st.lists(st.builds(EndpointSpec, text, texts, text), max_size=2).map(tuple),
    ports=st.lists(st.builds(PortBinding, small, text, text, text), max_size=2).map(tuple),
    resources=st.builds(
        Resources,
        memory=small,
        memory_swap=st.integers(-1, 10),
        ulimits=st.lists(st.builds(Ulimit, text, small, small), max_size=2).map(tuple),
    ),
    security=st.builds(
        Security,
        privileged=st.booleans(),
        cap_add=texts,
        seccomp=text,
        masked_paths=st.none() | texts,
    ),
    restart_policy=st.builds(RestartPolicy, text, small),
    log_config=st.builds(LogConfig, text, pairs),
    sysctls=pairs,
)
containers = st.builds(
    Container,
    text,
    text,
    text,
    text,
    specs,
    state=st.builds(
        ContainerState, text, small, small, text, st.booleans(), text, text, small, text
    ),
    endpoints=st.lists(
        st.tuples(text, st.builds(Endpoint, text, texts, text, text, text, small)), max_size=2
    ).map(tuple),
    published=st.lists(st.builds(PublishedPort, text, text, small, small), max_size=2).map(tuple),
    sandbox_key=text,
    restart_count=small,
)


@settings(max_examples=300)
@given(containers)
def test_every_container_survives_a_round_trip(c: Container) -> None:
    assert codec.decode(codec.encode(c)) == c


def test_defaults_are_not_written() -> None:
    c = Container("a" * 64, "n", "2026-01-01T00:00:00Z", "sha256:x", ContainerSpec("busybox"))
    doc = json.loads(codec.encode(c))
    assert doc == {
        "id": "a" * 64,
        "name": "n",
        "created": "2026-01-01T00:00:00Z",
        "image_id": "sha256:x",
        "spec": {"image": "busybox"},
        "v": codec.SCHEMA_VERSION,
    }


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (b"{not json", "container record is not JSON"),
        (b"[1, 2]", "container record is not a JSON object"),
        (b'{"v": 99, "id": "abc"}', "written by a newer dockyard (record version 99"),
        (b'{"v": 1, "id": "abc", "spec": {"image": "b"}}', "container record abc"),
    ],
)
def test_a_broken_row_is_a_clear_error(row: bytes, message: str) -> None:
    with pytest.raises(CorruptData, match=message.replace("(", r"\(")):
        codec.decode(row)
