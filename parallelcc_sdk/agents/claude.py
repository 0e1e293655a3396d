"""The Claude Code agent: ``claude -p`` in headless stream-json mode, one process per task attempt.

The prompt goes to the CLI on stdin, never on a command line, so no quoting can change it. Each
attempt gets its own ``CLAUDE_CONFIG_DIR`` in the sandbox's private home, so parallel runs never
share sessions, settings or credentials on disk.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, get_args

from ..errors import AgentNotFoundError, CredentialsError, ValidationError
from ..models import Task
from ..redaction import secret_values
from .base import Agent, AgentContext, Invocation, OutputParser, SandboxFile
from .stream_json import StreamJsonParser

PermissionMode = Literal[
    "acceptEdits", "auto", "bypassPermissions", "default", "dontAsk", "manual", "plan"
]
AuthMethod = Literal["api_key", "oauth_token", "auth_token", "oauth", "bedrock", "vertex"]

INSTALL_HINT = "npm install -g @anthropic-ai/claude-code"
CONFIG_DIR_NAME = ".claude"
CREDENTIALS_FILE = ".credentials.json"

# The CLI retries inside the process too (10 times, ~3 minutes, by default). A couple of quick
# retries ride out a blip without losing the conversation; anything longer is the engine's call.
DEFAULT_MAX_RETRIES = "2"

# Credential variables, in the CLI's own order of precedence (an API key wins over tokens).
_TOKEN_VARS: tuple[tuple[AuthMethod, str], ...] = (
    ("api_key", "ANTHROPIC_API_KEY"),
    ("oauth_token", "CLAUDE_CODE_OAUTH_TOKEN"),
    ("auth_token", "ANTHROPIC_AUTH_TOKEN"),
)
_PROVIDER_SWITCHES: tuple[tuple[AuthMethod, str], ...] = (
    ("bedrock", "CLAUDE_CODE_USE_BEDROCK"),
    ("vertex", "CLAUDE_CODE_USE_VERTEX"),
)
_PROVIDER_PREFIXES: Mapping[str, tuple[str, ...]] = {
    "bedrock": ("AWS_", "ANTHROPIC_BEDROCK_", "CLAUDE_CODE_SKIP_BEDROCK_AUTH"),
    "vertex": ("GOOGLE_", "ANTHROPIC_VERTEX_", "CLOUD_ML_REGION", "VERTEX_REGION_",
               "CLAUDE_CODE_SKIP_VERTEX_AUTH", "GCLOUD_", "CLOUDSDK_"),
}
# Passed through whatever the credentials: where the API is and how to reach it.
_PASSTHROUGH = (
    "ANTHROPIC_BASE_URL", "ANTHROPIC_MODEL", "ANTHROPIC_DEFAULT_OPUS_MODEL",
    "ANTHROPIC_DEFAULT_SONNET_MODEL", "ANTHROPIC_DEFAULT_HAIKU_MODEL", "ANTHROPIC_SMALL_FAST_MODEL",
    "API_TIMEOUT_MS", "HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "https_proxy", "http_proxy",
    "no_proxy", "NODE_EXTRA_CA_CERTS",
)
_PERMISSION_MODES: tuple[str, ...] = get_args(PermissionMode)
_AUTH_METHODS: tuple[str, ...] = get_args(AuthMethod)


class ClaudeCode(Agent):
    """Runs each task with the Claude Code CLI (``claude -p --output-format stream-json``).

    ``model``, ``max_turns``, ``max_budget_usd`` (per task, enforced by the CLI), ``allowed_tools``,
    ``disallowed_tools``, ``permission_mode`` and ``append_system_prompt`` map to the CLI's flags;
    ``extra_args`` are appended as given. ``env`` adds environment variables (and overrides the
    host's for credential lookup). ``auth_method`` picks the credentials; by default the first found
    of Bedrock/Vertex switches, ``ANTHROPIC_API_KEY``, ``CLAUDE_CODE_OAUTH_TOKEN`` and
    ``ANTHROPIC_AUTH_TOKEN``. ``auth_method="oauth"`` uses the Claude subscription login in
    ``~/.claude/.credentials.json``, copied into each task's private config folder.
    """

    name = "claude"

    def __init__(
        self,
        model: str | None = None,
        max_turns: int | None = None,
        max_budget_usd: float | None = None,
        allowed_tools: Sequence[str] | None = None,
        disallowed_tools: Sequence[str] | None = None,
        permission_mode: PermissionMode = "bypassPermissions",
        append_system_prompt: str | None = None,
        extra_args: Sequence[str] = (),
        executable: str = "claude",
        env: Mapping[str, str] | None = None,
        auth_method: AuthMethod | None = None,
    ) -> None:
        if model is not None and (not isinstance(model, str) or not model.strip()):
            raise ValidationError("ClaudeCode(model=...) must be a model name such as 'sonnet'.")
        if max_turns is not None and (
            isinstance(max_turns, bool) or not isinstance(max_turns, int) or max_turns < 1
        ):
            raise ValidationError(
                f"ClaudeCode(max_turns={max_turns!r}) must be a positive whole number."
            )
        if max_budget_usd is not None and (
            isinstance(max_budget_usd, bool)
            or not isinstance(max_budget_usd, int | float)
            or not math.isfinite(max_budget_usd)
            or max_budget_usd <= 0
        ):
            raise ValidationError(
                f"ClaudeCode(max_budget_usd={max_budget_usd!r}) must be a positive amount in USD."
            )
        if permission_mode not in _PERMISSION_MODES:
            raise ValidationError(
                f"ClaudeCode(permission_mode={permission_mode!r}) is not a Claude Code mode; "
                f"use one of {', '.join(_PERMISSION_MODES)}."
            )
        if auth_method is not None and auth_method not in _AUTH_METHODS:
            raise ValidationError(
                f"ClaudeCode(auth_method={auth_method!r}) is not supported; "
                f"use one of {', '.join(_AUTH_METHODS)}, or None to detect it."
            )
        if isinstance(extra_args, str):
            raise ValidationError(
                "ClaudeCode(extra_args=...) must be a list of arguments, e.g. ['--effort', 'high']."
            )
        self.model = model
        self.max_turns = max_turns
        self.max_budget_usd = float(max_budget_usd) if max_budget_usd is not None else None
        self.allowed_tools = _tool_list("allowed_tools", allowed_tools)
        self.disallowed_tools = _tool_list("disallowed_tools", disallowed_tools)
        self.permission_mode = permission_mode
        self.append_system_prompt = append_system_prompt
        self.extra_args = tuple(str(a) for a in extra_args)
        self.executable = executable
        self.env = dict(env or {})
        self.auth_method = auth_method

    # -- the Agent protocol ------------------------------------------------------------------------
    def validate(self, *, on_host: bool) -> None:
        self._credentials()
        if on_host and _find_executable(self.executable, self._source_env()) is None:
            raise AgentNotFoundError(self._not_found())

    def _not_found(self) -> str:
        """Why the executable cannot run: a path is not searched on PATH, so say what it is."""
        install = f"install it with `{INSTALL_HINT}`"
        if os.sep not in self.executable:
            return (
                f"The Claude Code CLI ({self.executable!r}) was not found on PATH; {install} "
                "(or pass ClaudeCode(executable=...))."
            )
        path = Path(self.executable)
        if not path.exists():
            problem = "does not exist"
        elif path.is_dir():
            problem = "is a folder, not the CLI"
        else:
            problem = "is not an executable file"
        return (
            f"ClaudeCode(executable={self.executable!r}) {problem}; pass the path of the "
            f"`claude` executable (`command -v claude` prints it), or {install}."
        )

    def invocation(self, task: Task, context: AgentContext) -> Invocation:
        config_dir = f"{context.home.rstrip('/')}/{CONFIG_DIR_NAME}"
        creds = self._credentials()
        env: dict[str, str] = {
            # Defaults first, so ``env=`` can change any of them.
            "CLAUDE_CODE_MAX_RETRIES": DEFAULT_MAX_RETRIES,
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            **creds.env,
            **self.env,
            **task.env,
            # The CLI prefers an API key over any token: one inherited from the host or ``env=``
            # must not win over the chosen credentials.
            **{var: "" for var in creds.cleared},
            # A task never updates the CLI, and never shares its config folder with another.
            "DISABLE_AUTOUPDATER": "1",
            "CLAUDE_CONFIG_DIR": config_dir,
        }
        if context.runs_as_root:
            # Claude Code refuses bypassPermissions as root unless it is told it is sandboxed.
            env["IS_SANDBOX"] = "1"
        files = [SandboxFile(f"{config_dir}/{CREDENTIALS_FILE}", c, 0o600)
                 for c in (creds.credentials_file,) if c is not None]
        argv = [self.executable, "-p", "--output-format", "stream-json", "--verbose"]
        if self.model:
            argv += ["--model", self.model]
        if self.max_turns is not None:
            argv += ["--max-turns", str(self.max_turns)]
        if self.max_budget_usd is not None:
            argv += ["--max-budget-usd", _format_usd(self.max_budget_usd)]
        argv += ["--permission-mode", self.permission_mode]
        if self.append_system_prompt:
            # A file, not an argument: no length limit, and nothing in it can be read as a flag.
            path = f"{context.home.rstrip('/')}/.parallelcc/append-system-prompt.md"
            files.append(SandboxFile(path, self.append_system_prompt.encode(), 0o600))
            argv += ["--append-system-prompt-file", path]
        # The ``--flag=value`` form, because these options are variadic and would swallow
        # whatever follows them.
        if self.allowed_tools:
            argv.append(f"--allowedTools={','.join(self.allowed_tools)}")
        if self.disallowed_tools:
            argv.append(f"--disallowedTools={','.join(self.disallowed_tools)}")
        argv += self.extra_args
        secrets = {*self._known_secrets(creds), *secret_values(task.env)}
        return Invocation(
            argv=tuple(argv),
            stdin=task.prompt.encode(),
            env=env,
            files=tuple(files),
            secrets=tuple(sorted(secrets)),
        )

    def parser(self, task: Task) -> OutputParser:
        return StreamJsonParser()

    def secrets(self) -> tuple[str, ...]:
        try:
            creds = self._credentials()
        except CredentialsError:
            creds = _Credentials("none", {}, ())
        return tuple(sorted(self._known_secrets(creds)))

    def _known_secrets(self, creds: _Credentials) -> set[str]:
        # Every credential in sight, used or not: a key that is not chosen can still leak into
        # output (the local sandbox inherits this machine's environment).
        source = self._source_env()
        unused = {source[var] for _, var in _TOKEN_VARS if source.get(var)}
        return {*creds.secrets, *unused, *secret_values(self.env)}

    @property
    def edits_unattended(self) -> bool:
        # Only this mode lets the model run any command with no one asked; the others either ask
        # (and, headless, refuse) or are limited to edits in the workspace.
        return self.permission_mode == "bypassPermissions"

    def describe(self) -> Mapping[str, Any]:
        return {
            "name": self.name,
            "model": self.model,
            "max_turns": self.max_turns,
            "max_budget_usd": self.max_budget_usd,
            "allowed_tools": list(self.allowed_tools),
            "disallowed_tools": list(self.disallowed_tools),
            "permission_mode": self.permission_mode,
            "append_system_prompt": self.append_system_prompt is not None,
            "extra_args": list(self.extra_args),
            "executable": self.executable,
            "auth_method": self.auth_method,
            # Names only: the values may be secret.
            "env": sorted(self.env),
        }

    def __repr__(self) -> str:
        options = {k: v for k, v in (("model", self.model), ("max_turns", self.max_turns),
                                     ("max_budget_usd", self.max_budget_usd)) if v is not None}
        return f"ClaudeCode({', '.join(f'{k}={v!r}' for k, v in options.items())})"

    # -- credentials -------------------------------------------------------------------------------
    def _source_env(self) -> dict[str, str]:
        return {**os.environ, **self.env}

    def _credentials(self) -> _Credentials:
        source = self._source_env()
        method = self.auth_method or _detect_method(source)
        if method is None:
            raise CredentialsError(
                "ClaudeCode has no credentials: set ANTHROPIC_API_KEY (or CLAUDE_CODE_OAUTH_TOKEN "
                "from `claude setup-token`), use auth_method='oauth' to use your Claude login, or "
                "set CLAUDE_CODE_USE_BEDROCK or CLAUDE_CODE_USE_VERTEX with that cloud's "
                "credentials."
            )
        env = {k: source[k] for k in _PASSTHROUGH if source.get(k)}
        if method in _PROVIDER_PREFIXES:
            return _provider_credentials(method, source, env)
        if method == "oauth":
            return _login_credentials(source, env)
        var = dict(_TOKEN_VARS)[method]
        value = source.get(var)
        if not value:
            raise CredentialsError(
                f"ClaudeCode(auth_method={method!r}) needs the environment variable {var}; "
                "set it, or pass it in ClaudeCode(env={...})."
            )
        env[var] = value
        cleared = [other for _, other in _TOKEN_VARS if other != var]
        return _Credentials(method, env, (value,), cleared=cleared)


class _Credentials:
    """What one auth method puts in the sandbox: env vars, secret values, a credentials file."""

    def __init__(self, method: str, env: Mapping[str, str], secrets: Sequence[str],
                 credentials_file: bytes | None = None, cleared: Sequence[str] = ()) -> None:
        self.method = method
        self.env = dict(env)
        self.secrets = tuple(secrets)
        self.credentials_file = credentials_file
        self.cleared = tuple(cleared)
        """Variables set empty in the sandbox, so that they cannot override this method."""


def _detect_method(source: Mapping[str, str]) -> AuthMethod | None:
    for method, switch in _PROVIDER_SWITCHES:
        if _truthy(source.get(switch)):
            return method
    for method, var in _TOKEN_VARS:
        if source.get(var):
            return method
    return None


def _provider_credentials(method: str, source: Mapping[str, str],
                          env: dict[str, str]) -> _Credentials:
    # Only the chosen cloud's variables go in: an AWS key has no business in a Vertex sandbox.
    prefixes = _PROVIDER_PREFIXES[method]
    provider_env = {k: v for k, v in source.items() if k.startswith(prefixes) and v}
    env.update(provider_env)
    env[dict(_PROVIDER_SWITCHES)[method]] = "1"  # type: ignore[index]
    return _Credentials(method, env, secret_values(provider_env))


def _login_credentials(source: Mapping[str, str], env: dict[str, str]) -> _Credentials:
    config_dir = source.get("CLAUDE_CONFIG_DIR") or str(Path.home() / CONFIG_DIR_NAME)
    path = Path(config_dir) / CREDENTIALS_FILE
    try:
        content = path.read_bytes()
        login = json.loads(content).get("claudeAiOauth")
    except (OSError, ValueError, AttributeError):
        login = None
    if not isinstance(login, Mapping) or not isinstance(login.get("accessToken"), str):
        raise CredentialsError(
            f"ClaudeCode(auth_method='oauth') needs a Claude login in {path}; run `claude` and "
            "log in with /login (on macOS the login is kept in the Keychain instead: use "
            "CLAUDE_CODE_OAUTH_TOKEN from `claude setup-token`)."
        )
    secrets = [v for k, v in login.items() if k.endswith("Token") and isinstance(v, str) and v]
    # Any key or token in the environment would win over the login file.
    return _Credentials("oauth", env, secrets, content, cleared=[var for _, var in _TOKEN_VARS])


def _find_executable(executable: str, env: Mapping[str, str]) -> str | None:
    if os.sep in executable:
        return executable if os.access(executable, os.X_OK) and Path(executable).is_file() else None
    return shutil.which(executable, path=env.get("PATH"))


def _tool_list(option: str, tools: Sequence[str] | None) -> tuple[str, ...]:
    if tools is None:
        return ()
    if isinstance(tools, str):
        # A single string is accepted in the CLI's own comma-separated form.
        tools = tools.split(",")
    cleaned = tuple(t.strip() for t in tools if isinstance(t, str) and t.strip())
    if len(cleaned) != len(list(tools)):
        raise ValidationError(
            f"ClaudeCode({option}=...) must be a list of tool names, e.g. ['Read', 'Edit']."
        )
    return cleaned


def _format_usd(amount: float) -> str:
    return str(int(amount)) if amount.is_integer() else repr(amount)


def _truthy(value: str | None) -> bool:
    return value is not None and value.strip().lower() not in ("", "0", "false", "no", "off")
