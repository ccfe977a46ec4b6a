"""The configuration file: parsed, validated and with secrets resolved, or refused.

``load_config`` returns a :class:`Config` or raises :class:`ConfigError`, whose ``str()`` is
the message a user reads: it names the file, the key and what was expected. Secrets are held
in :class:`Secret`, whose ``repr()`` and ``str()`` never show the value.
"""

from .load import load_config, parse_config
from .schema import (
    API_KEYS,
    JOB_KEYS,
    MAX_CONFIG_FILE_BYTES,
    MAX_TOKEN_FILE_CHARS,
    REGIONS,
    WORKSPACE_KEYS,
    ApiConfig,
    Config,
    ConfigError,
    JobRef,
    Secret,
    Workspace,
    is_identifier,
)

__all__ = [
    "API_KEYS",
    "JOB_KEYS",
    "MAX_CONFIG_FILE_BYTES",
    "MAX_TOKEN_FILE_CHARS",
    "REGIONS",
    "WORKSPACE_KEYS",
    "ApiConfig",
    "Config",
    "ConfigError",
    "JobRef",
    "Secret",
    "Workspace",
    "is_identifier",
    "load_config",
    "parse_config",
]
