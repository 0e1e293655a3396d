"""``E2BBackend``: one E2B cloud sandbox per task attempt, through the official ``e2b`` SDK."""

from __future__ import annotations

import asyncio
import dataclasses
import math
import os
import socket
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any, get_args

from ...contract import Invocation, LineHandler
from ...errors import CredentialsError, ValidationError
from ...redaction import secret_values
from .._process import owner_token
from ..base import LABEL_RUN_ID, Backend, PreparedRun, RunSpec, Sandbox, SandboxSpec
from .archive import DEFAULT_SECRET_PATTERNS, pack_run_archive
from .pricing import E2BRates
from .private import (
    check_npm_registry,
    check_npm_token,
    private_files,
    read_ssh_key,
    secret_parts,
)
from .ratelimit import CreationRate
from .runstate import E2BRun, PrepareMode
from .sandbox import E2BSandbox
from .scripts import HOME
from .sdk import KEY_HINT, Connection, api_key_from, require_sdk

__all__ = ["DEFAULT_TEMPLATE", "LABEL_OWNER", "E2BBackend"]

DEFAULT_TEMPLATE = "anthropic-claude-code"
LABEL_OWNER = "parallelcc_owner"
"""``<host>:<pid>:<start time>`` of the process running the run, so a cleanup without a run
folder can tell a dead run's sandboxes from a live one's."""
DEFAULT_CREATE_RATE = 1.0
"""Sandboxes per second: E2B's Hobby limit (Pro allows 5)."""
COLLECT_MARGIN_S = 300
"""Added to a task's time limit for the sandbox's lifetime: preparing and collecting."""
DEFAULT_LIFETIME_S = 600
"""Lifetime of a sandbox whose task has no time limit (renewed while the task runs)."""
MAX_LIFETIME_S = 3600
"""The longest lifetime E2B accepts on every plan (Hobby's limit); renewals carry a longer task
further where the plan allows it."""
_PREPARE_MODES: tuple[str, ...] = get_args(PrepareMode)


class E2BBackend(Backend):
    """Runs each task attempt in its own E2B sandbox (a Firecracker micro-VM in E2B's cloud).

    ``template``: the sandbox template (default: ``$E2B_TEMPLATE``, else
    ``anthropic-claude-code``, which has Claude Code installed). ``api_key``: default
    ``$E2B_API_KEY``. ``sandbox_timeout``: a sandbox's lifetime in seconds, renewed every half of
    it while its task runs, so it never cuts a task off and a crashed run's sandboxes end on their
    own (default: the task's time limit plus 300 s, or 600 s). ``envs`` and ``metadata``: extra
    environment variables and labels for every sandbox. ``create_rate``: sandbox creations per
    second for the whole run (default 1, E2B's Hobby limit; Pro allows 5). ``prepare``: how a
    sandbox gets the run's snapshot, ``"fork"`` (of one prepared base sandbox), ``"upload"`` (of
    the prebuilt archive into each sandbox) or ``"auto"`` (fork unless E2B refuses).
    ``ssh_key``, ``npm_token``, ``npm_registry``: private dependencies (an SSH key for git, a
    token for npm) put into each sandbox and removed before it is killed. ``rates``: per-second
    prices for ``sandbox_cost_usd``. ``exclude_secrets``: secret files never sent (``True``: the
    default patterns, ``False``: none, or a list of patterns). ``domain``: E2B's domain, for a
    self-hosted deployment.

    See ``docs/e2b.md``.
    """

    name = "e2b"

    def __init__(
        self,
        template: str | None = None,
        api_key: str | None = None,
        sandbox_timeout: float | None = None,
        envs: Mapping[str, str] | None = None,
        metadata: Mapping[str, str] | None = None,
        create_rate: float | None = None,
        prepare: PrepareMode = "auto",
        *,
        ssh_key: str | os.PathLike[str] | None = None,
        npm_token: str | None = None,
        npm_registry: str | None = None,
        rates: E2BRates | None = None,
        exclude_secrets: bool | Sequence[str] = True,
        domain: str | None = None,
    ) -> None:
        chosen = template if template is not None else os.environ.get("E2B_TEMPLATE", "").strip()
        if not isinstance(chosen, str) or (template is not None and not template.strip()):
            raise ValidationError("E2BBackend(template=...) must be a template name or id.")
        self.template = chosen.strip() or DEFAULT_TEMPLATE
        if api_key is not None and (not isinstance(api_key, str) or not api_key.strip()):
            raise ValidationError("E2BBackend(api_key=...) must be an E2B API key (a string).")
        self._api_key = api_key.strip() if api_key is not None else None
        self.sandbox_timeout = _seconds("sandbox_timeout", sandbox_timeout)
        self.envs = _strings("envs", envs)
        self.metadata = _strings("metadata", metadata)
        taken = [k for k in self.metadata if k.startswith("parallelcc_")]
        if taken:
            raise ValidationError(
                f"E2BBackend(metadata=...) cannot set {taken[0]!r}: labels starting with "
                "'parallelcc_' are the SDK's own."
            )
        self.create_rate = _rate(create_rate)
        if prepare not in _PREPARE_MODES:
            raise ValidationError(
                f"E2BBackend(prepare={prepare!r}) is not supported; use 'auto', 'fork' or 'upload'."
            )
        self.prepare: PrepareMode = prepare
        self.ssh_key = Path(ssh_key).expanduser() if ssh_key is not None else None
        self._npm_token = check_npm_token(npm_token) if npm_token is not None else None
        self.npm_registry = check_npm_registry(npm_registry) if npm_registry is not None else None
        if self.npm_registry is not None and self._npm_token is None:
            raise ValidationError(
                "E2BBackend(npm_registry=...) needs npm_token=...: the registry is where the "
                "token is sent."
            )
        if rates is not None and not isinstance(rates, E2BRates):
            raise ValidationError("E2BBackend(rates=...) must be an E2BRates(...).")
        self.rates = rates or E2BRates()
        self.exclude_secrets = _patterns(exclude_secrets)
        if domain is not None and (not isinstance(domain, str) or not domain.strip()):
            raise ValidationError("E2BBackend(domain=...) must be a domain such as 'e2b.app'.")
        self.domain = domain

    # -- checks and descriptions ----------------------------------------------------------------

    def _key(self) -> str:
        key = api_key_from(self._api_key)
        if key is None:
            raise CredentialsError(f"E2BBackend has no E2B API key: {KEY_HINT}.")
        return key

    def validate(self) -> None:
        require_sdk()
        self._key()
        if self.ssh_key is not None:
            read_ssh_key(self.ssh_key)

    def secrets(self) -> tuple[str, ...]:
        key = api_key_from(self._api_key)
        ssh = _quiet_key(self.ssh_key)
        return (
            *((key,) if key else ()),
            *secret_parts(ssh, self._npm_token),
            *secret_values(self.envs),
        )

    def describe(self) -> Mapping[str, Any]:
        return {
            "name": self.name,
            "template": self.template,
            "prepare": self.prepare,
            "sandbox_timeout": self.sandbox_timeout,
            "create_rate": self.create_rate,
            # Names only: values may be secret.
            "envs": sorted(self.envs),
            "metadata": dict(self.metadata),
            "ssh_key": str(self.ssh_key) if self.ssh_key is not None else None,
            "npm_token": self._npm_token is not None,
            "npm_registry": self.npm_registry,
            "rates": dict(self.rates.describe()),
            "exclude_secrets": list(self.exclude_secrets),
            "domain": self.domain,
        }

    def describe_run(self, run: PreparedRun) -> Mapping[str, Any]:
        state = run.state
        return state.describe() if isinstance(state, E2BRun) else {}

    def __repr__(self) -> str:
        return f"E2BBackend(template={self.template!r}, prepare={self.prepare!r})"

    # -- the run --------------------------------------------------------------------------------

    async def start_run(self, run: RunSpec) -> PreparedRun:
        require_sdk()
        connection = Connection(self._key(), self.domain)
        ssh = await asyncio.to_thread(read_ssh_key, self.ssh_key) if self.ssh_key else None
        files = private_files(
            HOME, ssh_key=ssh, npm_token=self._npm_token, npm_registry=self.npm_registry
        )
        prepared = await super().start_run(run)
        state: E2BRun | None = None
        try:
            archive = await pack_run_archive(
                prepared.snapshot, prepared.scratch_dir, self.exclude_secrets
            )
            state = E2BRun(
                connection=connection,
                template=self.template,
                envs=self.envs,
                labels={
                    **self.metadata,
                    **run.labels,
                    LABEL_RUN_ID: run.run_id,
                    LABEL_OWNER: f"{socket.gethostname()}:{owner_token()}",
                },
                prepare=self.prepare,
                archive=archive,
                private_files=files,
                rates=self.rates,
                rate=CreationRate(self.create_rate),
                base_lifetime_s=math.ceil(self.sandbox_timeout or DEFAULT_LIFETIME_S),
                scratch_dir=prepared.scratch_dir,
            )
            await state.start()
        except BaseException:
            if state is not None:
                await asyncio.shield(state.close())
            await asyncio.shield(super().end_run(prepared))
            raise
        return dataclasses.replace(prepared, state=state)

    supports_setup = True

    def check_setup(self) -> None:
        if self.prepare == "upload":
            raise ValidationError(
                "E2BBackend(prepare='upload') cannot run a set-up command once (every sandbox "
                "would have to run it again); use prepare='fork' or 'auto' with setup=."
            )

    async def run_setup(
        self, run: PreparedRun, invocation: Invocation, on_line: LineHandler
    ) -> int:
        """Runs the command in the run's base sandbox, before any fork (see E2BRun.run_setup)."""
        state = run.state
        if not isinstance(state, E2BRun):
            raise TypeError("E2BBackend.run_setup needs a run started by E2BBackend.start_run")
        return await state.run_setup(invocation, on_line)

    async def end_run(self, run: PreparedRun) -> None:
        if isinstance(run.state, E2BRun):
            await run.state.close()
        await super().end_run(run)

    async def open(self, spec: SandboxSpec) -> Sandbox:
        state = spec.run.state
        if not isinstance(state, E2BRun):
            raise TypeError("E2BBackend.open needs a run started by E2BBackend.start_run")
        lifetime = self.sandbox_lifetime(spec.time_limit_s)
        labels = {**state.labels, **spec.labels}
        sdk, how = await state.task_sandbox(labels, lifetime)
        try:
            return E2BSandbox(
                sdk=sdk,
                run=state,
                how=how,
                lifetime_s=lifetime,
                exclude_changes=spec.exclude_changes,
            )
        except BaseException:
            await asyncio.shield(state.kill(sdk))
            raise

    def sandbox_lifetime(self, time_limit_s: float | None) -> int:
        """Seconds a task's sandbox is created to live (and renewed to, while the task runs)."""
        if self.sandbox_timeout is not None:
            return math.ceil(self.sandbox_timeout)
        if time_limit_s is not None:
            return min(math.ceil(time_limit_s) + COLLECT_MARGIN_S, MAX_LIFETIME_S)
        return DEFAULT_LIFETIME_S

    supports_reattach = True

    async def reattach(self, spec: SandboxSpec, described: Mapping[str, Any]) -> Sandbox | None:
        """Connects to the sandbox of an attempt whose run's process died, and finds its agent's
        command still running there (``commands.list``); ``None`` (the sandbox killed, if it is
        there) when either is gone. See :meth:`Backend.reattach`."""
        from .reattach import reattach_sandbox

        state = spec.run.state
        if not isinstance(state, E2BRun):
            raise TypeError("E2BBackend.reattach needs a run started by E2BBackend.start_run")
        return await reattach_sandbox(
            state, described, self.sandbox_lifetime(spec.time_limit_s), spec.exclude_changes
        )

    @classmethod
    async def cleanup(
        cls, run_dir: Path | None = None, *, spare: Collection[str] = ()
    ) -> list[str]:
        """Kills the sandboxes runs that died left behind (by journal and by label).

        With ``run_dir``: every sandbox the run's journal names and every sandbox labelled with
        its run id (but those in ``spare``), unless its process is still running. Without: every
        sandbox whose ``parallelcc_owner`` label names a process of this machine that is gone;
        sandboxes of other machines are left alone. Needs ``E2B_API_KEY``.
        """
        from .cleanup import cleanup_orphans, cleanup_run

        if run_dir is None:
            return await cleanup_orphans()
        return await cleanup_run(run_dir, spare=spare)


def _quiet_key(path: Path | None) -> bytes | None:
    if path is None:
        return None
    try:
        return read_ssh_key(path)
    except ValidationError:
        return None


def _seconds(name: str, value: float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValidationError(f"E2BBackend({name}={value!r}) must be a number of seconds.")
    if value < 1:
        raise ValidationError(f"E2BBackend({name}={value!r}) must be at least 1 second.")
    return float(value)


def _rate(value: float | None) -> float:
    if value is None:
        return DEFAULT_CREATE_RATE
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValidationError(
            f"E2BBackend(create_rate={value!r}) must be a positive number of sandboxes per second."
        )
    return float(value)


def _strings(name: str, value: Mapping[str, str] | None) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ValidationError(f"E2BBackend({name}=...) must map names to strings.")
    return dict(value)


def _patterns(value: bool | Sequence[str]) -> tuple[str, ...]:
    if value is True:
        return DEFAULT_SECRET_PATTERNS
    if value is False:
        return ()
    if isinstance(value, str) or not all(isinstance(p, str) and p.strip() for p in value):
        raise ValidationError(
            "E2BBackend(exclude_secrets=...) must be True, False or a list of patterns "
            "such as ['.env', '*.pem']."
        )
    return tuple(p.strip() for p in value)
