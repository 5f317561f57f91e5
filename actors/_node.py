"""A node: store, bridge, supervisor, stages and the control server, together.

`Node.start()` brings the parts up in dependency order and `Node.stop()`
takes them down in reverse, bounded in time: the supervisor stops restarting,
the control socket closes, each stage stops (its final state is published),
and the bridge goes last so those final states and its final heartbeat reach
the watchers. Both run in the caller's thread (an edge: the CLI's main
thread, or a test) and block.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pykka
import zmq

from pipecast.transport import (
    NODE_TOPIC,
    BadRequest,
    ClientSecurity,
    ControlClient,
    HistoryLimits,
    Limits,
    NodeAuthenticator,
    PipecastError,
    ServerSecurity,
    is_local_endpoint,
    serve_with_curve,
)

from ._control_server import CONTROL, ControlServer
from .cluster import Database, PathMap, PostgresDatabase, SqliteDatabase, open_database
from .media import (
    AnalyzeStage,
    CrfSearchStage,
    EncodeSettings,
    EncodeStage,
    FixedCrfStage,
    Library,
    MediaPolicy,
    MediaStage,
    resolve_roots,
)
from .networks import (
    INSTALLATIONS,
    Installations,
    InvocationLog,
    NetworkRunner,
    RunRules,
    check_ring,
    resolve_model,
    runner_name,
)
from .presence import (
    WATCH_HUB,
    PresenceCounts,
    PresenceTracker,
    WatcherBook,
    WatchHub,
    WatchHubHandle,
)
from .runtime import (
    BRIDGE,
    Bridge,
    BridgeConfig,
    BridgeHandle,
    ChildSpec,
    Registry,
    RestartPolicy,
    Stage,
    Store,
    Supervisor,
    begin_shutdown,
    start_child,
)

__all__ = ["DEMO_NETWORK", "MEDIA_STAGES", "STAGE_KINDS", "Node", "NodeConfig", "StageConfig"]

log = logging.getLogger("pipecast.node")

# the stage kinds a config may name; harnesses add their own (`NodeConfig.stage_kinds`)
STAGE_KINDS: Mapping[str, type[Stage]] = MappingProxyType(
    {
        "analyze": AnalyzeStage,
        "crf": FixedCrfStage,
        "crf_search": CrfSearchStage,
        "encode": EncodeStage,
    }
)

PRESENCE = "presence"  # the presence tracker's name in the registry
_NODE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
# names of the node's own actors, which no stage may take
RESERVED = frozenset({PRESENCE, BRIDGE, CONTROL, WATCH_HUB, INSTALLATIONS})
# paint a prompt, caption the picture, remix the caption into the next prompt, ...
DEMO_NETWORK = RunRules("demo", ("paint", "caption", "remix"))


@dataclass(frozen=True, slots=True)
class StageConfig:
    """One stage of a node: its name (its topic is `stage/<name>`), kind and options.

    The kind and options are checked against the node's stage kinds when the
    `NodeConfig` is made.
    """

    name: str
    kind: str
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name or self.name in RESERVED:
            raise BadRequest(
                f"stage name {self.name!r} must be non-empty, without '/', and not one of "
                f"{', '.join(sorted(RESERVED))}"
            )

    def check(self, kinds: Mapping[str, type[Stage]]) -> None:
        """`BadRequest` unless `kinds` has this stage's kind and it takes these options."""
        if self.kind not in kinds:
            raise BadRequest(
                f"stage kind {self.kind!r} unknown (known: {', '.join(sorted(kinds))})"
            )
        unknown = set(self.options) - kinds[self.kind].OPTIONS
        if unknown:
            raise BadRequest(f"stage {self.name!r} has unknown option(s) {sorted(unknown)}")


# the media pipeline: analyze -> choose a CRF -> encode, verify, commit
MEDIA_STAGES = (
    StageConfig("analyze", "analyze"),
    StageConfig("crf_search", "crf_search"),
    StageConfig("encode", "encode"),
)


@dataclass(frozen=True, slots=True)
class NodeConfig:
    status_endpoint: str = "tcp://127.0.0.1:7701"
    sync_endpoint: str = "tcp://127.0.0.1:7702"
    control_endpoint: str = "tcp://127.0.0.1:7703"
    data_dir: Path = field(default_factory=lambda: Path.home() / ".local/share/pipecast")
    heartbeat_interval: float = 1.0
    history: HistoryLimits = field(default_factory=HistoryLimits)
    stages: tuple[StageConfig, ...] = MEDIA_STAGES
    restart: RestartPolicy = field(default_factory=RestartPolicy)
    networks: tuple[RunRules, ...] = (DEMO_NETWORK,)
    media: MediaPolicy = field(default_factory=MediaPolicy)
    encode: EncodeSettings = field(default_factory=EncodeSettings)
    stage_kinds: Mapping[str, type[Stage]] = field(default_factory=lambda: STAGE_KINDS)
    limits: Limits = field(default_factory=Limits)
    insecure: bool = False  # no CURVE: only with loopback or ipc endpoints
    # a cluster: this node's name in the shared store, the store (empty: this node's own
    # SQLite file; postgresql://...: shared), how long a hold lasts unrenewed, and where
    # this node finds the shared library folders
    name: str = "local"
    store_url: str = ""
    lease: float = 60.0
    paths: PathMap = field(default_factory=PathMap)
    batch: bool = True  # status batches (docs/PROTOCOL.md); off only to measure them

    def __post_init__(self) -> None:
        endpoints = (self.status_endpoint, self.sync_endpoint, self.control_endpoint)
        if self.insecure and not all(is_local_endpoint(e) for e in endpoints):
            raise BadRequest(
                "insecure (no CURVE) is allowed only when every endpoint is loopback or ipc: "
                + ", ".join(e for e in endpoints if not is_local_endpoint(e))
            )
        if not _NODE_NAME.fullmatch(self.name):
            raise BadRequest(f"a node name is 1-64 of A-Z a-z 0-9 _ . -, not {self.name[:80]!r}")
        if not 1.0 <= self.lease <= 3600.0:
            raise BadRequest(f"lease must be within 1..3600 seconds, not {self.lease}")
        if self.store_url and not self.store_url.startswith(
            ("postgresql://", "postgres://", "sqlite:///")
        ):
            raise BadRequest(
                "store must be left out (this node's own SQLite), sqlite:///PATH or "
                "postgresql://..."
            )
        if self.store_url and self.name == "local":
            # two nodes of one store under one name would each take the other's jobs
            # for its own: a shared store needs each node named
            raise BadRequest("a node of a shared store needs a name of its own (--name)")
        names = [s.name for s in self.stages]
        if len(set(names)) != len(names):
            raise BadRequest(f"stage names must be unique: {names}")
        for stage in self.stages:
            stage.check(self.stage_kinds)
        media = [s for s in self.stages if issubclass(self.stage_kinds[s.kind], MediaStage)]
        kinds = [s.kind for s in media]
        if len(set(kinds)) != len(kinds):
            raise BadRequest(
                "at most one media stage of each kind (analyze, crf/crf_search, encode)"
            )
        if {"crf", "crf_search"} <= set(kinds):
            raise BadRequest("one CRF stage: crf (fixed) or crf_search")
        if "analyze" in kinds and self.stages[0].kind != "analyze":
            raise BadRequest("the media pipeline's first stage must be of kind analyze")
        if media and "analyze" not in kinds and not self.store_url:
            # a node without analysis only works on jobs other nodes analyzed
            raise BadRequest("a media pipeline without analyze needs a shared store")
        networks = [n.network for n in self.networks]
        if len(set(networks)) != len(networks):
            raise BadRequest(f"network names must be unique: {networks}")
        for rules in self.networks:
            try:
                check_ring([resolve_model(m) for m in rules.models])
            except BadRequest as exc:
                raise BadRequest(f"network {rules.network!r}: {exc}") from None


def network_info(rules: RunRules) -> dict[str, Any]:
    """A network's configuration as the `networks` op shows it."""
    return {
        "models": list(rules.models),
        "lockout": rules.lockout,
        "pace": [list(step) for step in rules.pace.steps],
        "max_invocations": rules.max_invocations,
        "max_duration": rules.max_duration,
        "timeout": rules.timeout,
        "retries": rules.retries,
        "only_when_watched": rules.only_when_watched,
    }


class Node:
    """One running node (see module docstring)."""

    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.stop_requested = threading.Event()
        self.registry = Registry()
        self.store: Store | None = None
        self.bridge: BridgeHandle | None = None
        self.supervisor: pykka.ActorRef[Supervisor] | None = None
        self.control_endpoint = ""
        self.presence = PresenceCounts()
        self.watchers: WatchHubHandle | None = None
        self.context: zmq.Context[zmq.Socket[bytes]] | None = None
        self.security: ServerSecurity | None = None
        self.authenticator: NodeAuthenticator | None = None
        self.roots: tuple[str, ...] = ()  # the library roots, resolved at start
        self.database: Database | None = None  # the library's (media stages only)
        self.library: Library | None = None

    def start(self, timeout: float = 10.0) -> Node:
        """Bring the node up; raises `BindError` (nothing left running) on a busy endpoint,
        `BadRequest` on a library root that is not a folder."""
        cfg = self.config
        self.roots = resolve_roots(cfg.media.roots)
        try:
            cfg.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            self.store = Store(cfg.data_dir / "pipecast.db")
            self.context = zmq.Context()
            self._secure()
            self.bridge = BridgeHandle(
                BridgeConfig(
                    cfg.status_endpoint,
                    cfg.sync_endpoint,
                    cfg.heartbeat_interval,
                    cfg.history,
                    limits=cfg.limits,
                    batch=cfg.batch,
                ),
                self.context,
                self.security,
            )
            self.supervisor = Supervisor.start(self.bridge, self.registry)
            start_child(self.supervisor, ChildSpec(BRIDGE, Bridge, {}, cfg.restart))
            self.bridge.wait_ready(timeout)
            start_child(
                self.supervisor,
                ChildSpec(
                    PRESENCE,
                    PresenceTracker,
                    {"counts": self.presence},
                    cfg.restart,
                ),
            )
            media = self._media_kwargs()
            for stage in cfg.stages:
                kind = cfg.stage_kinds[stage.kind]
                extra = media if issubclass(kind, MediaStage) else {}
                start_child(
                    self.supervisor,
                    ChildSpec(
                        stage.name,
                        kind,
                        {"store": self.store, **extra, **stage.options},
                        cfg.restart,
                    ),
                )
            invocations = InvocationLog(self.store)
            for rules in cfg.networks:
                start_child(
                    self.supervisor,
                    ChildSpec(
                        runner_name(rules.network),
                        NetworkRunner,
                        {
                            "rules": rules,
                            "log": invocations,
                            "images": cfg.data_dir / "images",
                            "counts": self.presence,
                        },
                        cfg.restart,
                    ),
                )
            start_child(
                self.supervisor,
                ChildSpec(
                    INSTALLATIONS,
                    Installations,
                    {"store": self.store, "networks": {n.network: n for n in cfg.networks}},
                    cfg.restart,
                ),
            )
            book = WatcherBook()
            start_child(
                self.supervisor,
                ChildSpec(WATCH_HUB, WatchHub, {"registry": self.registry, "book": book}),
            )
            self.watchers = WatchHubHandle(self.registry, book)
            if not self.registry.wait_for(self._children(), timeout):
                log.warning("not every stage started within %s s; see actor/<name>", timeout)
            ready: concurrent.futures.Future[str] = concurrent.futures.Future()
            start_child(
                self.supervisor,
                ChildSpec(
                    CONTROL,
                    ControlServer,
                    {
                        "endpoint": cfg.control_endpoint,
                        "registry": self.registry,
                        "stage_names": tuple(s.name for s in cfg.stages),
                        "on_shutdown": self.stop_requested.set,
                        "ready": ready,
                        "networks": {n.network: network_info(n) for n in cfg.networks},
                        "limits": cfg.limits,
                        "context": self.context,
                        "security": self.security,
                    },
                    cfg.restart,
                ),
            )
            self.control_endpoint = ready.result(timeout=timeout)
            # registered by the supervisor a moment after it binds; stop() finds it there,
            # and must: the context it shares cannot end while its sockets are open
            if not self.registry.wait_for([CONTROL], timeout):
                raise PipecastError(f"the control server did not register within {timeout} s")
            # where to reach this node, for whoever follows it (a relay shows the
            # control endpoint and forwards its watchers' presence there)
            self.bridge.publish(
                NODE_TOPIC,
                "endpoints",
                {
                    "status": self.bridge.status_endpoint,
                    "sync": self.bridge.sync_endpoint,
                    "control": self.control_endpoint,
                },
            )
            self._register()
        except BaseException:
            self.stop()
            raise
        log.info(
            "node up: status %s, sync %s, control %s",
            self.bridge.status_endpoint,
            self.bridge.sync_endpoint,
            self.control_endpoint,
        )
        return self

    def _register(self) -> None:
        """Say in the library's store where this node is and what it runs, so the other
        nodes of a cluster (and `pipecast nodes`, `--node NAME`) find it."""
        if self.library is None:
            return
        assert self.bridge is not None
        public = self.security.keys.public if self.security is not None else None
        self.library.registry.register(
            {
                "status": self.bridge.status_endpoint,
                "sync": self.bridge.sync_endpoint,
                "control": self.control_endpoint,
            },
            public,
            [s.name for s in self.config.stages],
        )
        self.library.release()  # the start-up thread's connection

    def _secure(self) -> None:
        """CURVE on every socket, with the data directory's keys (made if missing), and
        the ZAP handler on the node's context; or, insecure, a warning."""
        if self.config.insecure:
            log.warning(
                "INSECURE: this node runs without CURVE; any local user can watch and steer it"
            )
            return
        assert self.context is not None
        self.security, self.authenticator = serve_with_curve(self.context, self.config.data_dir)

    @property
    def owner(self) -> ClientSecurity | None:
        """The owner's client keys (None for an insecure node): what the CLI uses."""
        if self.security is None:
            return None
        return ClientSecurity.owner(self.config.data_dir)

    def client(self, timeout: float = 5.0) -> ControlClient:
        """A control client of this node with the owner's key (an edge: tests, tools)."""
        return ControlClient(self.control_endpoint, timeout, self.owner)

    def _media_kwargs(self) -> dict[str, Any]:
        """What the media stages share: the library, the policy, the encoder settings."""
        cfg = self.config
        assert self.store is not None
        names = {
            kind.RUNNING_STATE.value: s.name
            for s in cfg.stages
            if issubclass(kind := cfg.stage_kinds[s.kind], MediaStage)
        }
        if not names:
            return {}
        work = Path(cfg.media.work_dir) if cfg.media.work_dir else cfg.data_dir / "work"
        self.database = open_database(cfg.store_url, self.store)
        self.library = Library(self.database, cfg.name, cfg.lease, cfg.paths)
        return {
            "library": self.library,
            "policy": replace(cfg.media, roots=self.roots),
            "settings": cfg.encode,
            "work_dir": work,
            "registry": self.registry,
            "stage_names": names,
        }

    def _children(self) -> list[str]:
        """Supervised children in start order (stopped in reverse)."""
        cfg = self.config
        return [
            PRESENCE,
            *(s.name for s in cfg.stages),
            *(runner_name(n.network) for n in cfg.networks),
            INSTALLATIONS,
        ]

    def wait(self) -> None:
        """Block until a stop is requested (signal handler or the shutdown op)."""
        while not self.stop_requested.wait(0.5):
            pass

    def stop(self, timeout: float = 2.0, work_timeout: float = 60.0) -> None:
        """Take the node down in reverse order. Idempotent.

        Stages and runners get `work_timeout`: one may be in the middle of a
        step that must not be cut (a commit); the store stays open until they
        are done. Everything else gets `timeout`.
        """
        if self.supervisor is not None:
            with contextlib.suppress(pykka.ActorDeadError):
                begin_shutdown(self.supervisor)
        control = self.registry.get(CONTROL)
        if control is not None:
            with contextlib.suppress(pykka.ActorDeadError, pykka.Timeout):
                control.stop(block=True, timeout=timeout)
        if self.watchers is not None:
            with contextlib.suppress(pykka.Timeout):
                self.watchers.stop(timeout)
            self.watchers = None
        for name in reversed(self._children()):
            ref = self.registry.get(name)
            if ref is not None:
                with contextlib.suppress(pykka.ActorDeadError, pykka.Timeout):
                    ref.stop(block=True, timeout=work_timeout)
        if self.supervisor is not None:
            with contextlib.suppress(pykka.ActorDeadError, pykka.Timeout):
                self.supervisor.stop(block=True, timeout=timeout)
            self.supervisor = None
        if self.bridge is not None:
            self.bridge.stop(timeout=timeout)
            self.bridge = None
        if self.authenticator is not None:
            self.authenticator.stop()
            self.authenticator = None
        if self.context is not None:
            self.context.term()
            self.context = None
        if isinstance(self.database, PostgresDatabase | SqliteDatabase):
            self.database.close()
        self.database = None
        self.library = None
        if self.store is not None:
            self.store.close()
            self.store = None
