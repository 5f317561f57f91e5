"""pipecast.actors.networks: rings of models run as runs of invocations.

`RunMachine` is the pure run machine (lockout, pace, stale continuations,
`only_when_watched`, the limits of a run) that `RunRules` configure;
`NetworkRunner` is the supervised actor that feeds it time and model results
and carries out its effects (publish, store, schedule). Models are named
callables that declare their kinds (`model`, `resolve_model`); the built-ins
make real text and images offline. `InvocationLog` keeps every invocation in
the store. `Installations` keeps named screens (a network in a display mode)
and publishes them for kiosks to follow. See docs/networks.md.
"""

from ._builtin_models import BUILTINS, caption, echo, paint, remix
from ._installations import (
    INSTALLATION_OPS,
    INSTALLATIONS,
    Installation,
    InstallationRequest,
    Installations,
    UnknownInstallation,
    check_installation,
)
from ._invocation_log import InvocationLog
from ._models import KINDS, Model, ModelError, check_ring, declared, invoke_model, model
from ._ops import NETWORK_OPS, UnknownNetwork, network_request, networks_result
from ._png import PNG_SIGNATURE, BadImage, decode_png, encode_png
from ._resolve import resolve_model
from ._run_rules import (
    DEFAULT_PACE,
    Call,
    Effect,
    EndRun,
    Forget,
    Invocation,
    LockedOut,
    Pace,
    Record,
    RunMachine,
    RunRules,
    RunStatus,
    Schedule,
    Token,
)
from ._runner import NetworkRunner, RunRequest, runner_name

__all__ = [
    "BUILTINS",
    "DEFAULT_PACE",
    "INSTALLATIONS",
    "INSTALLATION_OPS",
    "KINDS",
    "NETWORK_OPS",
    "PNG_SIGNATURE",
    "BadImage",
    "Call",
    "Effect",
    "EndRun",
    "Forget",
    "Installation",
    "InstallationRequest",
    "Installations",
    "Invocation",
    "InvocationLog",
    "LockedOut",
    "Model",
    "ModelError",
    "NetworkRunner",
    "Pace",
    "Record",
    "RunMachine",
    "RunRequest",
    "RunRules",
    "RunStatus",
    "Schedule",
    "Token",
    "UnknownInstallation",
    "UnknownNetwork",
    "caption",
    "check_installation",
    "check_ring",
    "declared",
    "decode_png",
    "echo",
    "encode_png",
    "invoke_model",
    "model",
    "network_request",
    "networks_result",
    "paint",
    "remix",
    "resolve_model",
    "runner_name",
]
