"""Private dependencies: an SSH key for git and a token for npm, put into each sandbox's home.

The key is checked on this machine before the run (it exists, is a private key without a
passphrase, and only its owner can read it). In the sandbox it becomes ``~/.ssh/id_parallelcc``
(mode 0600) with an ``~/.ssh/config`` that uses it and a ``known_hosts`` holding github.com's and
gitlab.com's published host keys, so git over SSH works without trusting whoever answers; the
token becomes ``~/.npmrc``. Their contents are secrets: they are redacted from every output and
removed from the sandbox before it is killed.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import stat
from pathlib import Path
from urllib.parse import urlsplit

from ...contract import SandboxFile
from ...errors import ValidationError

__all__ = [
    "DEFAULT_NPM_REGISTRY",
    "HOST_KEYS",
    "KNOWN_HOSTS",
    "check_npm_registry",
    "check_npm_token",
    "private_files",
    "read_ssh_key",
    "secret_parts",
]

DEFAULT_NPM_REGISTRY = "https://registry.npmjs.org/"
KEY_NAME = "id_parallelcc"

# Published by GitHub (api.github.com/meta, "GitHub's SSH key fingerprints") and GitLab ("SSH
# host keys fingerprints"); tests check each against its published SHA256 fingerprint.
HOST_KEYS: tuple[tuple[str, str, str], ...] = (
    (
        "github.com",
        "ssh-ed25519",
        "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
    ),
    (
        "github.com",
        "ecdsa-sha2-nistp256",
        "AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBEmKSENjQEezOmxkZMy7"
        "opKgwFB9nkt5YRrYMjNuG5N87uRgg6CLrbo5wAdT/y6v0mKV0U2w0WZ2YB/++Tpockg="
    ),
    (
        "gitlab.com",
        "ssh-ed25519",
        "AAAAC3NzaC1lZDI1NTE5AAAAIAfuCHKVTjquxvt6CM6tdG4SLp1Btn/nOeHHE5UOzRdf"
    ),
    (
        "gitlab.com",
        "ecdsa-sha2-nistp256",
        "AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBFSMqzJeV9rUzU4kWitG"
        "jeR4PWSa29SPqJ1fVkhtj3Hw9xjLVXVYrU9QlYWrOLXBpQ6KWjbjTDTdDkoohFzgbEY="
    ),
    (
        "gitlab.com",
        "ssh-rsa",
        "AAAAB3NzaC1yc2EAAAADAQABAAABAQCsj2bNKTBSpIYDEGk9KxsGh3mySTRgMtXL583qmBpz"
        "eQ+jqCMRgBqB98u3z++J1sKlXHWfM9dyhSevkMwSbhoR8XIq/U0tCNyokEi/ueaBMCvbcTHh"
        "O7FcwzY92WK4Yt0aGROY5qX2UKSeOvuP4D6TPqKF1onrSzH9bx9XUf2lEdWT/ia1NEKjunUq"
        "u1xOB/StKDHMoX4/OKyIzuS0q/T1zOATthvasJFoPrAjkohTyaDUz2LN5JoH839hViyEG82y"
        "B+MjcFV5MU3N1l1QL3cVUCh93xSaua1N85qivl+siMkPGbO5xR/En4iEY6K2XPASUEMaieWV"
        "NTRCtJ4S8H+9"
    ),
)
KNOWN_HOSTS = "".join(f"{host} {kind} {key}\n" for host, kind, key in HOST_KEYS)

_SSH_CONFIG = (
    "Host *\n"
    f"  IdentityFile ~/.ssh/{KEY_NAME}\n"
    "  IdentitiesOnly yes\n"
    "  UserKnownHostsFile ~/.ssh/known_hosts\n"
    # Pinned hosts must match; a host nobody pinned is learned on first use.
    "  StrictHostKeyChecking accept-new\n"
)

_PEM_BEGIN = re.compile(rb"-----BEGIN ((?:RSA |EC |DSA |OPENSSH |ENCRYPTED )?PRIVATE KEY)-----")
_OPENSSH_MAGIC = b"openssh-key-v1\0"
_MAX_KEY_BYTES = 64 * 1024


def read_ssh_key(path: str | os.PathLike[str]) -> bytes:
    """The private key at ``path``, checked; one clear :class:`ValidationError` if unusable."""
    shown = str(path)
    key_path = Path(path).expanduser()
    what = f"E2BBackend(ssh_key={shown!r})"
    try:
        info = key_path.stat()
    except FileNotFoundError:
        raise ValidationError(
            f"{what}: there is no such file; pass the path of a private key."
        ) from None
    except OSError as exc:
        raise ValidationError(f"{what} cannot be read ({exc.strerror}).") from None
    if not stat.S_ISREG(info.st_mode):
        raise ValidationError(f"{what} is not a file; pass the path of a private key.")
    if info.st_mode & 0o077:
        raise ValidationError(
            f"{what} can be read or changed by other users (mode "
            f"{stat.S_IMODE(info.st_mode):04o}); run `chmod 600 {shown}` first."
        )
    if key_path.suffix == ".pub":
        raise ValidationError(f"{what} is a public key; pass the private key (without .pub).")
    if info.st_size == 0 or info.st_size > _MAX_KEY_BYTES:
        raise ValidationError(f"{what} is empty or too large to be a private key.")
    try:
        content = key_path.read_bytes()
    except OSError as exc:
        raise ValidationError(f"{what} cannot be read ({exc.strerror}).") from None
    match = _PEM_BEGIN.search(content)
    if match is None:
        raise ValidationError(
            f"{what} is not a private key in OpenSSH or PEM form "
            "(it has no '-----BEGIN ... PRIVATE KEY-----' line)."
        )
    if _has_passphrase(content, match.group(1)):
        raise ValidationError(
            f"{what} is protected by a passphrase, which no task can type; use a key without "
            "one (e.g. a deploy key: ssh-keygen -t ed25519 -N '' -f deploy_key)."
        )
    return content


def _has_passphrase(content: bytes, kind: bytes) -> bool:
    if kind == b"ENCRYPTED PRIVATE KEY" or b"Proc-Type: 4,ENCRYPTED" in content:
        return True
    if kind != b"OPENSSH PRIVATE KEY":
        return False
    body = content.split(b"-----BEGIN OPENSSH PRIVATE KEY-----", 1)[1]
    body = body.split(b"-----END", 1)[0]
    try:
        blob = base64.b64decode(b"".join(body.split()), validate=True)
    except (binascii.Error, ValueError):
        return False
    if not blob.startswith(_OPENSSH_MAGIC):
        return False
    # The cipher's name is the first string after the magic: "none" means no passphrase.
    offset = len(_OPENSSH_MAGIC)
    length = int.from_bytes(blob[offset : offset + 4], "big")
    return blob[offset + 4 : offset + 4 + length] != b"none"


def check_npm_token(token: str) -> str:
    if not isinstance(token, str) or not token.strip() or any(c in token for c in "\r\n\0 "):
        raise ValidationError(
            "E2BBackend(npm_token=...) must be one token with no spaces or line breaks."
        )
    return token.strip()


def check_npm_registry(url: str) -> str:
    """The registry URL, ending with ``/``; a :class:`ValidationError` for anything else."""
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc or any(
        c in url for c in "\r\n\0 "
    ):
        raise ValidationError(
            f"E2BBackend(npm_registry={url!r}) must be an http(s) URL such as "
            f"{DEFAULT_NPM_REGISTRY!r}."
        )
    return url if url.endswith("/") else url + "/"


def _npmrc(token: str, registry: str) -> bytes:
    # npm matches a token to a registry by the URL without its scheme.
    parts = urlsplit(registry)
    scope = f"//{parts.netloc}{parts.path}"
    return f"registry={registry}\n{scope}:_authToken={token}\n".encode()


def private_files(
    home: str, *, ssh_key: bytes | None, npm_token: str | None, npm_registry: str | None
) -> tuple[SandboxFile, ...]:
    """The files that carry the private dependencies into a sandbox (its user's home: ``home``)."""
    files: list[SandboxFile] = []
    if ssh_key is not None:
        ssh = f"{home}/.ssh"
        files += [
            SandboxFile(f"{ssh}/{KEY_NAME}", ssh_key, 0o600),
            SandboxFile(f"{ssh}/known_hosts", KNOWN_HOSTS.encode(), 0o600),
            SandboxFile(f"{ssh}/config", _SSH_CONFIG.encode(), 0o600),
        ]
    if npm_token is not None:
        registry = npm_registry or DEFAULT_NPM_REGISTRY
        files.append(SandboxFile(f"{home}/.npmrc", _npmrc(npm_token, registry), 0o600))
    return tuple(files)


def secret_parts(ssh_key: bytes | None, npm_token: str | None) -> tuple[str, ...]:
    """What must be masked wherever output goes: the token, the key, and each line of the key
    (a command that prints the key prints it line by line)."""
    parts: list[str] = []
    if npm_token:
        parts.append(npm_token)
    if ssh_key:
        text = ssh_key.decode(errors="replace")
        parts.append(text.strip())
        parts += [
            line.strip()
            for line in text.splitlines()
            if len(line.strip()) >= 16 and not line.startswith("-----")
        ]
    return tuple(parts)
