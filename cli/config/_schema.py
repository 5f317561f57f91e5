"""The config file's schema: every section, key, type and bound, in one place.

Pydantic models, strict (a string is not a number, a number not a bool) and
closed (an unknown key is an error). A key left out is None here and takes
the built-in default when the `NodeConfig` is made, so the defaults live only
in the dataclasses they configure. Each field's description is what
`docs/config.md` says of it; a test holds the two together.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["STAGE_OPTIONS", "ConfigFile", "NetworkTable", "StageTable"]

_Endpoint = Annotated[str, Field(pattern=r"^(tcp|ipc|inproc)://\S+$", max_length=4096)]
_Path = Annotated[str, Field(min_length=1, max_length=4096)]
_Seconds = Annotated[float, Field(gt=0, le=86400)]
_Count = Annotated[int, Field(ge=1)]
_Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]


class _Section(BaseModel):
    # strict, but a TOML integer may stand for a float (heartbeat = 2)
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    def given(self) -> dict[str, Any]:
        """The keys the file set."""
        return self.model_dump(exclude_unset=True)


class NodeSection(_Section):
    status: _Endpoint | None = Field(None, description="status PUB endpoint")
    sync: _Endpoint | None = Field(None, description="sync ROUTER endpoint (snapshots, replays)")
    control: _Endpoint | None = Field(None, description="control ROUTER endpoint (requests)")
    data_dir: _Path | None = Field(None, description="the store, keys and work files")
    heartbeat: Annotated[float, Field(ge=0.01, le=60)] | None = Field(
        None, description="seconds between heartbeats; watchers go stale after three"
    )
    insecure: bool | None = Field(
        None, description="no CURVE: allowed only when every endpoint is loopback or ipc"
    )
    batch: bool | None = Field(
        None, description="send waiting updates of a topic in one message (off: to measure)"
    )
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")] | None = Field(
        None, description="this node's name in a shared store (and on the relay: NAME/)"
    )
    store: (
        Annotated[str, Field(pattern=r"^(postgres(ql)?://|sqlite:///)", max_length=4096)] | None
    ) = Field(
        None,
        description="the library's store: left out, this node's own SQLite; sqlite:///PATH: "
        "that file (nodes of one machine); postgresql://...: shared by the nodes of a cluster",
    )
    lease: Annotated[float, Field(ge=1, le=3600)] | None = Field(
        None, description="seconds a node's hold on a job lasts without a renewal"
    )


class HistorySection(_Section):
    max_updates: _Count | None = Field(None, description="updates kept per topic for replays")
    max_age: _Seconds | None = Field(None, description="seconds an update is kept for replays")


class LimitsSection(_Section):
    request_bytes: _Count | None = Field(None, description="one sync or control request")
    frame_bytes: _Count | None = Field(None, description="one frame; larger cuts the peer off")
    value_bytes: _Count | None = Field(None, description="one published value or watcher meta")
    depth: _Count | None = Field(None, description="nesting of maps and lists received")
    width: _Count | None = Field(None, description="entries of one map or list received")
    key_chars: _Count | None = Field(None, description="a key of a topic or of a map")
    topic_chars: _Count | None = Field(None, description="a topic name or snapshot prefix")
    prefixes: _Count | None = Field(None, description="prefixes of one snapshot request")
    live_topics: _Count | None = Field(None, description="topics with a live key")
    client_topics: _Count | None = Field(None, description="live topics clients made (ext/)")
    known_topics: _Count | None = Field(None, description="topics ever published in an epoch")
    retained_bytes: _Count | None = Field(None, description="live values and history kept")
    reply_bytes: _Count | None = Field(None, description="one sync reply")
    queued_replies: _Count | None = Field(None, description="replies queued for one peer")


class NoOptions(_Section):
    """A stage kind that takes no options."""


class CrfSearchOptions(_Section):
    target: Annotated[float, Field(ge=50, le=100)] | None = Field(
        None, description="the VMAF the search aims at (default 95)"
    )
    max_percent: Annotated[float, Field(gt=0, le=1000)] | None = Field(
        None, description="largest output, in percent of the source, worth encoding (80)"
    )
    max_probes: Annotated[int, Field(ge=1, le=20)] | None = Field(
        None, description="CRF probes before the search settles or gives up (6)"
    )


# the options of each production stage kind (a test holds these to each kind's OPTIONS)
STAGE_OPTIONS: dict[str, type[_Section]] = {
    "analyze": NoOptions,
    "crf": NoOptions,
    "crf_search": CrfSearchOptions,
    "encode": NoOptions,
}


class StageTable(_Section):
    name: _Name = Field(description="the stage's name; its topic is stage/<name>")
    kind: _Name = Field(description="analyze, crf, crf_search or encode")
    options: dict[str, Any] = Field(
        default_factory=dict, description="the kind's options (see [stage.NAME])"
    )


class MediaSection(_Section):
    roots: list[_Path] | None = Field(
        None, description="the only folders it enqueues from, reads and writes in"
    )
    replace: bool | None = Field(None, description="replace the original once verified")
    suffix: Annotated[str, Field(pattern=r"^\.[A-Za-z0-9_-]{1,32}$")] | None = Field(
        None, description="keep mode: <name><suffix>.mkv beside the original"
    )
    min_bytes: Annotated[int, Field(ge=0)] | None = Field(
        None, description="smaller sources are skipped (too_small)"
    )
    min_output_bytes: Annotated[int, Field(ge=0)] | None = Field(
        None, description="a smaller output is a failed encode"
    )
    max_output_ratio: Annotated[float, Field(gt=0, le=10)] | None = Field(
        None, description="outputs not below source size * this are skipped"
    )
    stall_timeout: Annotated[float, Field(ge=0.1, le=86400)] | None = Field(
        None, description="seconds without progress before an encode is stalled"
    )
    max_attempts: _Count | None = Field(None, description="tries of a retryable failure")
    duration_tolerance: Annotated[float, Field(ge=0, lt=1)] | None = Field(
        None, description="allowed duration difference, as a fraction (at least 2 s)"
    )
    verify_decode: bool | None = Field(None, description="decode the whole output before use")
    work_dir: str | None = Field(None, description="partial outputs (default <data_dir>/work)")


class EncodeSection(_Section):
    encoder: Literal["libsvtav1", "libaom-av1", "librav1e", "libx264", "libx265"] | None = Field(
        None, description="the ffmpeg encoder"
    )
    preset: Annotated[int, Field(ge=-2, le=13)] | None = Field(
        None, description="speed preset: lower is slower and smaller"
    )
    crf: Annotated[float, Field(ge=0, le=70)] | None = Field(
        None, description="the CRF used where no search chose one"
    )
    audio: Literal["copy", "drop"] | None = Field(None, description="audio streams")
    subtitles: Literal["copy", "drop"] | None = Field(None, description="subtitle streams")
    extra: list[str] | None = Field(None, description="more ffmpeg output options")


class PaceStep(_Section):
    until: Annotated[float, Field(gt=0)] | None = Field(
        None, description="seconds into the run this step lasts (last step: none)"
    )
    delay: Annotated[float, Field(ge=0, le=86400)] = Field(
        description="seconds between invocations"
    )


class NetworkTable(_Section):
    name: _Name = Field(description="the network's name")
    models: list[Annotated[str, Field(min_length=1)]] = Field(
        min_length=1, description="built-in models, entry points or module:attr"
    )
    lockout: Annotated[float, Field(ge=0, le=86400)] | None = Field(
        None, description="seconds after a genesis during which prompts are refused"
    )
    pace: list[PaceStep] | None = Field(None, description="the delay between invocations")
    max_invocations: _Count | None = Field(None, description="a run ends after this many")
    max_duration: _Seconds | None = Field(None, description="a run ends after this long")
    timeout: Annotated[float, Field(ge=0.001, le=86400)] | None = Field(
        None, description="seconds per invocation"
    )
    retries: Annotated[int, Field(ge=0, le=10)] | None = Field(
        None, description="tries again of a failed invocation"
    )
    only_when_watched: bool | None = Field(None, description="run only while someone watches")
    keep_live: _Count | None = Field(None, description="invocations kept on the live topic")


class ConfigFile(_Section):
    """A whole config file."""

    node: NodeSection = Field(default_factory=NodeSection, description="the node's sockets")
    history: HistorySection = Field(default_factory=HistorySection, description="replays")
    limits: LimitsSection = Field(default_factory=LimitsSection, description="input bounds")
    stages: list[StageTable] | None = Field(None, description="the pipeline, replacing it")
    stage: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="options of one stage of the pipeline, by name"
    )
    media: MediaSection = Field(default_factory=MediaSection, description="the library")
    encode: EncodeSection = Field(default_factory=EncodeSection, description="the encode")
    networks: list[NetworkTable] | None = Field(None, description="the networks, replacing them")
    paths: dict[_Path, _Path] = Field(
        default_factory=dict,
        description="shared storage: this node's folder = the folder's name in the store",
    )
