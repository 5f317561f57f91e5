"""The node's configuration: a typed schema, loading with precedence, and showing it.

`load_config` turns a TOML file, options and environment into a validated
`NodeConfig` and remembers where each value came from; `document`,
`sources` and `as_toml` show the result (`pipecast config show`). The
schema's models are the single statement of what each key allows;
`docs/config.md` follows them.
"""

from ._load import LoadedConfig, load_config, load_node_config, read_config
from ._schema import STAGE_OPTIONS, ConfigFile
from ._show import as_toml, document, sources

__all__ = [
    "STAGE_OPTIONS",
    "ConfigFile",
    "LoadedConfig",
    "as_toml",
    "document",
    "load_config",
    "load_node_config",
    "read_config",
    "sources",
]
