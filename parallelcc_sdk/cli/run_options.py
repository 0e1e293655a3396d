"""``parallelcc run``'s flags: their definitions, and their translation into ``pcc.submit`` inputs.

Every value is checked by the SDK's own validators, named by its flag, before anything starts.
A flag that does not apply to the chosen backend or agent is an error: parallel-cc accepted many
such flags and silently did nothing with them.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from dataclasses import dataclass
from typing import Any

from ..agents.base import Agent
from ..backends.base import Backend
from ..errors import ValidationError
from ..models import Task
from ..tasks import load_task_file, load_tasks
from ..validation import non_negative_int, positive_float, positive_int

DEFAULT_OUTPUT_DIR = "./parallel-results"

# Flags of one agent or backend only: (flag, attribute on the parsed namespace).
_CLAUDE_ONLY = (
    ("--model", "model"),
    ("--max-turns", "max_turns"),
    ("--budget", "budget"),
    ("--auth-method", "auth_method"),
)
_COMMAND_ONLY = (("--command", "shell_command"),)
_LOCAL_ONLY = (("--isolation", "isolation"),)
_E2B_ONLY = (
    ("--template", "template"),
    ("--ssh-key", "ssh_key"),
    ("--npm-token", "npm_token"),
    ("--npm-registry", "npm_registry"),
)
# parallel-cc's --auth-method values, and the Claude Code agent's names for them.
_AUTH_METHODS = {"api-key": "api_key", "oauth": "oauth"}
# parallel-cc options this tool does not have, and what to do instead.
_UNSUPPORTED = {
    "--prompt": "pass the prompt with --task",
    "--prompt-file": "pass a task file with --task-file (one task per line)",
    "--dry-run": "there is no dry run; start with one --task to try a setup",
    "--branch": "each task's changes are saved as changes.patch in its folder; apply it to a "
    "branch with `git apply`",
    "--git-live": "each task's changes are saved as changes.patch in its folder; open pull "
    "requests from there",
    "--target-branch": "each task's changes are saved as changes.patch in its folder",
    "--use-template": "pass an E2B template with --template",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    tasks = parser.add_argument_group("tasks")
    tasks.add_argument(
        "--task",
        action="extend",
        nargs="+",
        default=[],
        metavar="TEXT",
        help="a task's prompt; repeat the flag (or give several values) for more tasks",
    )
    tasks.add_argument(
        "--task-file",
        metavar="PATH",
        help="a file of tasks, run after the --task ones: one per line (blank lines and lines "
        "starting with # skipped), or .jsonl/.json/.yaml/.csv with a 'prompt' field",
    )
    tasks.add_argument(
        "--multi",
        action="store_true",
        help="accepted for parallel-cc scripts; has no effect (every run is a multi-task run)",
    )

    run = parser.add_argument_group("the run")
    run.add_argument("--repo", default=".", metavar="PATH", help="the git repository (default: .)")
    run.add_argument(
        "--max-concurrent",
        default="3",
        metavar="N",
        help="tasks running at the same time (default: 3)",
    )
    run.add_argument(
        "--fail-fast", action="store_true", help="after the first failed task, cancel the others"
    )
    run.add_argument(
        "--output-dir",
        default=DEFAULT_OUTPUT_DIR,
        metavar="PATH",
        help=f"where the run's folder is made (default: {DEFAULT_OUTPUT_DIR})",
    )
    run.add_argument("--timeout", metavar="SECONDS", help="time limit of each task")
    run.add_argument(
        "--retries",
        default="0",
        metavar="N",
        help="retries of a task after a transient failure, such as a rate limit (default: 0)",
    )
    run.add_argument(
        "--run-budget",
        metavar="USD",
        help="stop starting tasks, and cancel running ones, once the run has cost this",
    )
    run.add_argument(
        "--json",
        action="store_true",
        help="print one JSON document (parallel-cc's keys) on stdout; progress goes to stderr",
    )
    run.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="no progress display (the summary or JSON is still printed)",
    )

    agent = parser.add_argument_group("agent")
    agent.add_argument(
        "--agent",
        choices=("claude", "command"),
        default="claude",
        help="claude: Claude Code (default); command: a shell command per task",
    )
    agent.add_argument(
        "--command",
        dest="shell_command",
        metavar="CMD",
        help="--agent command: the shell command each task runs in its workspace; "
        "the prompt arrives on stdin and in $PARALLELCC_PROMPT",
    )
    agent.add_argument("--model", metavar="M", help="--agent claude: the model, e.g. sonnet")
    agent.add_argument("--max-turns", metavar="N", help="--agent claude: turns per task")
    agent.add_argument(
        "--budget",
        metavar="USD",
        help="--agent claude: the most one task may cost (enforced by Claude Code)",
    )
    agent.add_argument(
        "--auth-method",
        choices=tuple(_AUTH_METHODS),
        help="--agent claude: api-key ($ANTHROPIC_API_KEY) or oauth (the login "
        "of `claude /login`); default: whichever is found",
    )
    agent.add_argument(
        "--git-user",
        metavar="NAME",
        help="git author and committer name of commits a task makes (with --git-email)",
    )
    agent.add_argument("--git-email", metavar="EMAIL", help="their e-mail (with --git-user)")

    backend = parser.add_argument_group("backend")
    backend.add_argument(
        "--backend",
        choices=("local", "e2b"),
        default="local",
        help="local: workspaces on this machine (default); e2b: E2B cloud sandboxes",
    )
    backend.add_argument(
        "--isolation",
        choices=("auto", "bubblewrap", "none"),
        help="--backend local: how tasks are isolated (default: auto, bubblewrap where it works)",
    )
    backend.add_argument(
        "--template",
        metavar="NAME",
        help="--backend e2b: the sandbox template (default: $E2B_TEMPLATE, "
        "then anthropic-claude-code)",
    )
    backend.add_argument(
        "--ssh-key",
        metavar="PATH",
        help="--backend e2b: a private key for git over SSH inside sandboxes",
    )
    backend.add_argument(
        "--confirm-ssh-key",
        action="store_true",
        help="accepted with --ssh-key for parallel-cc scripts (nothing asks)",
    )
    backend.add_argument(
        "--npm-token",
        metavar="TOKEN",
        help="--backend e2b: a token for private npm packages (default: $PARALLEL_CC_NPM_TOKEN)",
    )
    backend.add_argument(
        "--npm-registry", metavar="URL", help="--backend e2b: the registry of --npm-token"
    )

    for flag in _UNSUPPORTED:
        parser.add_argument(
            flag, dest=_unsupported_dest(flag), nargs="?", const=True, help=argparse.SUPPRESS
        )


@dataclass(frozen=True)
class RunInputs:
    """Everything ``pcc.submit`` is given, already checked."""

    tasks: list[Task]
    options: dict[str, Any]


def run_inputs(args: argparse.Namespace) -> RunInputs:
    """Checks every flag and builds the tasks, agent and backend; raises ValidationError."""
    _check_unsupported(args)
    _check_applicable(args)
    options: dict[str, Any] = {
        "repo": args.repo,
        "max_concurrent": positive_int("--max-concurrent", args.max_concurrent),
        "fail_fast": args.fail_fast,
        "output_dir": args.output_dir,
        "task_timeout": _optional(positive_float, "--timeout", args.timeout),
        "retries": non_negative_int("--retries", args.retries),
        "budget_usd": _optional(positive_float, "--run-budget", args.run_budget),
        "agent": _agent(args),
        "backend": _backend(args),
    }
    return RunInputs(tasks=_tasks(args), options=options)


def _unsupported_dest(flag: str) -> str:
    return "unsupported_" + flag.lstrip("-").replace("-", "_")


def _check_unsupported(args: argparse.Namespace) -> None:
    for flag, instead in _UNSUPPORTED.items():
        if getattr(args, _unsupported_dest(flag)) is not None:
            raise ValidationError(
                f"{flag} is a parallel-cc option that parallelcc does not have; {instead}."
            )


def _given(args: argparse.Namespace, flags: tuple[tuple[str, str], ...]) -> list[str]:
    return [flag for flag, name in flags if getattr(args, name) is not None]


def _check_applicable(args: argparse.Namespace) -> None:
    wrong: list[tuple[list[str], str]] = []
    if args.agent == "command":
        wrong.append((_given(args, _CLAUDE_ONLY), "--agent claude"))
        if args.shell_command is None:
            raise ValidationError(
                "--agent command needs --command 'CMD', the shell command each "
                "task runs (the prompt arrives on its stdin)."
            )
    else:
        wrong.append((_given(args, _COMMAND_ONLY), "--agent command"))
    if args.backend == "local":
        wrong.append((_given(args, _E2B_ONLY), "--backend e2b"))
    else:
        wrong.append((_given(args, _LOCAL_ONLY), "--backend local"))
    for flags, applies_to in wrong:
        if flags:
            raise ValidationError(
                f"{flags[0]} only applies to {applies_to}; remove it, or choose {applies_to}."
            )
    if args.confirm_ssh_key and args.ssh_key is None:
        raise ValidationError("--confirm-ssh-key only applies with --ssh-key; remove it.")
    if (args.git_user is None) != (args.git_email is None):
        raise ValidationError("--git-user and --git-email go together; pass both, or neither.")


def _optional(check: Any, flag: str, value: str | None) -> Any:
    return None if value is None else check(flag, value)


def _git_identity(args: argparse.Namespace) -> dict[str, str]:
    """Git reads these variables before any configuration, so every commit a task makes carries
    this identity, on any backend."""
    if args.git_user is None:
        return {}
    for flag, value in (("--git-user", args.git_user), ("--git-email", args.git_email)):
        if not value.strip() or "\n" in value or "\0" in value:
            raise ValidationError(f"{flag} must be one non-empty line, got {value!r}.")
    return {
        "GIT_AUTHOR_NAME": args.git_user,
        "GIT_COMMITTER_NAME": args.git_user,
        "GIT_AUTHOR_EMAIL": args.git_email,
        "GIT_COMMITTER_EMAIL": args.git_email,
    }


def _agent(args: argparse.Namespace) -> Agent:
    env = _git_identity(args)
    if args.agent == "command":
        from ..agents.command import Command

        return Command(args.shell_command, env=env)
    from ..agents.claude import ClaudeCode

    auth = _AUTH_METHODS[args.auth_method] if args.auth_method is not None else None
    return ClaudeCode(
        model=args.model,
        max_turns=_optional(positive_int, "--max-turns", args.max_turns),
        max_budget_usd=_optional(positive_float, "--budget", args.budget),
        auth_method=auth,  # type: ignore[arg-type]  # one of the checked choices
        env=env or None,
    )


def _backend(args: argparse.Namespace) -> Backend:
    from ..api import resolve_backend

    if args.backend == "local":
        from ..backends.local import LocalBackend

        return LocalBackend(isolation=args.isolation or "auto")
    options = {
        name: value
        for name, value in (
            ("template", args.template),
            ("ssh_key", args.ssh_key),
            ("npm_token", args.npm_token or os.environ.get("PARALLEL_CC_NPM_TOKEN") or None),
            ("npm_registry", args.npm_registry),
        )
        if value is not None
    }
    if not options:
        return resolve_backend("e2b")
    import parallelcc_sdk

    e2b_backend = getattr(parallelcc_sdk, "E2BBackend", None)
    if e2b_backend is None:
        return resolve_backend("e2b")  # says why E2B is not available
    backend: Backend = e2b_backend(**options)
    return backend


def _tasks(args: argparse.Namespace) -> list[Task]:
    """The --task prompts, then the --task-file tasks, numbered task-1 … task-N in that order."""
    for n, prompt in enumerate(args.task, start=1):
        try:
            prompt.encode("utf-8")
        except UnicodeEncodeError:
            raise ValidationError(
                f"--task number {n} is not valid UTF-8 text; pass prompts in UTF-8."
            ) from None
    if args.task_file is None:
        if not args.task:
            raise ValidationError(
                "no tasks to run: pass --task TEXT (repeatable) or --task-file PATH."
            )
        return load_tasks(list(args.task))
    from_file = load_task_file(args.task_file)
    if not args.task:
        return from_file
    # The file's tasks were numbered from 1; a task whose id is its default number takes its
    # place after the --task ones instead, so ids follow the order tasks are given in.
    renumbered = [
        dataclasses.replace(task, id=None) if task.id == f"task-{n}" else task
        for n, task in enumerate(from_file, start=1)
    ]
    return load_tasks([*args.task, *renumbered])
