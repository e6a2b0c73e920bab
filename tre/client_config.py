"""Where the CLI's client mode finds its server and token: TRE_SERVER, TRE_TOKEN,
TRE_TOKEN_FILE and ~/.config/tre (client.yaml, token).

A module of its own, apart from `tre.client`, because every command asks "is there a
server?" before doing anything: this answer needs only the standard library and YAML,
where the client itself loads httpx and the service models (issue 27: `tre status`
answers at once).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from tre import yamlfile
from tre.errors import InputError, PermissionDenied

ENV_SERVER = "TRE_SERVER"
ENV_TOKEN = "TRE_TOKEN"  # noqa: S105 - the variable's name, not a token
ENV_TOKEN_FILE = "TRE_TOKEN_FILE"  # noqa: S105


def config_dir() -> Path:
    """Where the client's settings live: $XDG_CONFIG_HOME/tre or ~/.config/tre."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "tre"


def client_config() -> dict[str, Any]:
    """client.yaml's settings (server, token_file), or {} if there is none."""
    path = config_dir() / "client.yaml"
    if not path.exists():
        return {}
    try:
        data = yamlfile.load(path.read_bytes(), str(path))
    except (OSError, yamlfile.YamlError) as exc:
        raise InputError(f"cannot read {path}: {exc}", fix="correct or remove the file") from exc
    if data is None:
        return {}
    if not isinstance(data, dict) or set(data) - {"server", "token_file"}:
        raise InputError(
            f"{path} must hold only 'server: URL' and 'token_file: PATH'",
            fix="correct the file",
        )
    return data


def configured_server() -> str | None:
    """The server to use when --server is not given: TRE_SERVER, else client.yaml."""
    return os.environ.get(ENV_SERVER) or client_config().get("server") or None


def read_token() -> str:
    """The API token, from TRE_TOKEN or a file that only its owner may read."""
    if os.environ.get(ENV_TOKEN):
        return os.environ[ENV_TOKEN].strip()
    configured = os.environ.get(ENV_TOKEN_FILE) or client_config().get("token_file")
    path = Path(configured).expanduser() if configured else config_dir() / "token"
    try:
        info = path.stat()
    except OSError:
        raise InputError(
            "no API token to send to the server",
            fix=f"put the token a TRE admin gave you in {path} (chmod 600), or set {ENV_TOKEN}",
        ) from None
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise PermissionDenied(
            f"the token file {path} can be read by other users "
            f"(mode {stat.S_IMODE(info.st_mode):o}), so it is not used",
            fix=f"chmod 600 {path}; if others may have read it, ask an admin to revoke the token",
        )
    if info.st_uid != os.getuid():
        raise PermissionDenied(
            f"the token file {path} belongs to another user", fix="use your own token file"
        )
    return path.read_text().strip()
