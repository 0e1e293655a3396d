"""The checks of the conformance suite, each a coroutine over a :class:`~.harness.Harness`.

They only use the backend protocol and ``/bin/sh`` commands inside sandboxes, so they apply to
any backend. ``test_backend_conformance.py`` runs them all on every registered backend.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import parallelcc_sdk as pcc
from parallelcc_sdk.collection import CHANGED_FILES_DIR, PATCH_FILE

from .harness import BASE_FILES, UNCOMMITTED, Harness, State, host_state

# ------------------------------------------------------------------------------------------------
# prepare


async def check_prepare_fills_the_workspace_with_the_snapshot(h: Harness) -> None:
    sandbox = await h.prepared()
    seen = await h.state(sandbox)
    assert seen == host_state(h.snapshot_tree(h.root / "expected"))
    # The snapshot is the user's work as it was, not only their last commit.
    assert set(BASE_FILES) | set(UNCOMMITTED) | {"link-to-d"} == set(seen)
    assert seen["script.sh"][0] == "exec"
    assert seen["link-to-d"] == ("link", "src/d.py")
    done = await h.sh(sandbox, "cat c.txt untracked/new.txt")
    assert done.stdout == ["c1", "uncommitted", "untracked"]


# ------------------------------------------------------------------------------------------------
# exec


async def check_exec_streams_lines_in_order_with_stdout_and_stderr_apart(h: Harness) -> None:
    sandbox = await h.prepared()
    done = await h.sh(
        sandbox, 'i=1; while [ $i -le 300 ]; do echo "out $i"; echo "err $i" >&2; i=$((i+1)); done'
    )
    assert done.code == 0
    assert done.stdout == [f"out {i}" for i in range(1, 301)]
    assert done.stderr == [f"err {i}" for i in range(1, 301)]


async def check_exec_carries_a_ten_megabyte_line_and_invalid_utf8(h: Harness) -> None:
    sandbox = await h.prepared()
    done = await h.sh(
        sandbox,
        "head -c 10485760 /dev/zero | tr '\\0' x; echo; "
        "printf 'bad \\377\\376 end\\r\\n'; printf 'no newline at the end'",
    )
    assert done.code == 0
    lengths = [len(line) for line in done.stdout]
    assert lengths == [10485760, 10, 21]
    assert done.stdout[0] == "x" * 10485760, "the long line is not intact"
    assert done.stdout[1:] == ["bad \ufffd\ufffd end", "no newline at the end"]


async def check_exec_passes_stdin_env_files_and_the_exit_code(h: Harness) -> None:
    sandbox = await h.prepared()
    prompt = "it's \"quoted\" $(not run) `nor this`\nline two é 🚀\n".encode()
    secret_file = pcc.SandboxFile(f"{sandbox.context.home}/conf/creds.json", b'{"k": 1}', 0o600)
    done = await h.sh(
        sandbox,
        'cat; printf "%s\\n" "$SOME_VAR"; cat "$HOME/conf/creds.json"; echo; '
        'stat -c %a "$HOME/conf/creds.json"; pwd; exit 7',
        stdin=prompt,
        env={"SOME_VAR": "value with spaces"},
        files=(secret_file,),
    )
    assert done.code == 7
    assert done.stdout == [
        *prompt.decode().splitlines(),
        "value with spaces",
        '{"k": 1}',
        "600",
        sandbox.context.workspace,
    ]


async def check_exec_that_ignores_stdin_still_completes(h: Harness) -> None:
    sandbox = await h.prepared()
    done = await h.sh(sandbox, "echo done", stdin=b"x" * 1_000_000)
    assert (done.code, done.stdout) == (0, ["done"])


# ------------------------------------------------------------------------------------------------
# collect: the adversarial change matrix


@dataclass(frozen=True)
class Scenario:
    name: str
    script: str
    """Run with /bin/sh in the workspace; must exit 0."""
    expected: pcc.ChangeStats | None = None
    """The exact counts and paths, or None where only their sets are checked (``paths``)."""
    paths: frozenset[str] = frozenset()
    deleted: frozenset[str] = frozenset()
    patch_has: tuple[bytes, ...] = ()
    patch_lacks: tuple[bytes, ...] = ()
    needs_git: bool = False
    """Uses git in the workspace (agent commits, a planted .git)."""
    after: str = ""
    """A script run after collecting; its stdout must be empty (e.g. no planted command ran)."""
    extra: dict[str, str] = field(default_factory=dict)


def _write(path: str, text: str) -> str:
    quoted = shlex.quote(f"./{path}")  # ./: a leading dash is a name, not an option
    return f'mkdir -p "$(dirname {quoted})" && printf %s {shlex.quote(text)} > {quoted}'



ODD_NEW = [
    'dq"uote.txt',
    "sq'uote.txt",
    "é.txt",
    "-dash.txt",
    "new\nline.txt",
    "tab\tname.txt",
    "star*?[x].txt",
    "back\\slash.txt",
    "日本/語.txt",
    "-new dir/it's here.txt",
    " leading space.txt",
]

SCENARIOS = [
    Scenario(
        "edits",
        "printf 'a1\\nA2\\na3\\nA4\\n' > a.txt; printf 'c1\\nuncommitted\\nc3\\n' > c.txt; "
        "printf 'x = 1\\n' > src/d.py",
        pcc.ChangeStats(3, 3, 2, ("a.txt", "c.txt", "src/d.py")),
    ),
    Scenario(
        "new-folders",
        "mkdir -p new/deep/er src/util && printf '1\\n2\\n3\\n' > new/deep/er/x.txt && "
        "printf 'y\\n' > new/y.md && : > empty.txt && printf 'z\\n' > src/util/z.py",
        pcc.ChangeStats(
            4, 5, 0, ("empty.txt", "new/deep/er/x.txt", "new/y.md", "src/util/z.py")
        ),
    ),
    Scenario(
        "deletions",
        "rm b.txt && rm -r pkg",
        pcc.ChangeStats(3, 0, 7, (), ("b.txt", "pkg/one.py", "pkg/sub/two.py")),
    ),
    Scenario(
        "renames",
        "mkdir docs && mv doc.md docs/guide.md && rm a.txt && "
        "printf 'a1\\na2\\nA3\\n' > renamed.txt",
        pcc.ChangeStats(2, 1, 1, ("docs/guide.md", "renamed.txt")),
        patch_has=(
            b"rename from doc.md\nrename to docs/guide.md\n",
            b"rename from a.txt\nrename to renamed.txt\n",
        ),
    ),
    Scenario(
        "binary",
        "{ head -c 10 img.bin; printf '\\377\\377\\377'; tail -c +14 img.bin; printf '\\0tail'; }"
        " > img.new && cat img.new > img.bin && rm img.new && mkdir assets && "
        "printf '\\211PNG\\r\\n\\032\\n\\0\\0\\0\\rIHDR\\0\\1\\2' > assets/photo.png && "
        "printf 'c1\\nuncommitted\\nc3\\n' > c.txt",
        pcc.ChangeStats(3, 1, 0, ("assets/photo.png", "c.txt", "img.bin")),
        patch_has=(b"GIT binary patch",),
    ),
    Scenario(
        "modes",
        "chmod +x c.txt && chmod -x script.sh",
        pcc.ChangeStats(2, 0, 0, ("c.txt", "script.sh")),
        patch_has=(b"old mode 100644\nnew mode 100755\n", b"old mode 100755\nnew mode 100644\n"),
    ),
    Scenario(
        "symlinks",
        "ln -s src/d.py latest && ln -s src srcdir && ln -s /etc/passwd outward-abs && "
        "ln -s ../../../../outside outward-rel && rm b.txt && ln -s a.txt b.txt && "
        "rm link-to-d && ln -s pkg/one.py link-to-d",
        pcc.ChangeStats(
            6, 6, 3, ("b.txt", "latest", "link-to-d", "outward-abs", "outward-rel", "srcdir")
        ),
    ),
    Scenario(
        "odd-names",
        " && ".join(
            [_write(name, "new\n") for name in ODD_NEW]
            + ["printf 'space\\nmore\\n' > 'with space.txt'", "mv doc.md './-moved doc.md'"]
        ),
        paths=frozenset([*ODD_NEW, "with space.txt", "-moved doc.md"]),
    ),
    Scenario(
        "agent-commits",
        "printf 'a4\\n' >> a.txt && git add a.txt && "
        "git -c user.name=agent -c user.email=agent@example.com commit -qm 'agent: a' && "
        "printf 'n\\n' > committed.txt && git add committed.txt && "
        "git -c user.name=agent -c user.email=agent@example.com commit -qm 'agent: add' && "
        "git rm -q --cached b.txt && git checkout -q -b side && printf 'later\\n' >> c.txt",
        pcc.ChangeStats(3, 3, 0, ("a.txt", "c.txt", "committed.txt")),
        needs_git=True,
    ),
    Scenario(
        "hostile-git",
        # Repository config, hooks, attributes and excludes planted by the task: obeying any of
        # them would change the collected bytes or leave a trace in the workspace.
        "git config core.fsmonitor \"touch $PWD/ran-fsmonitor\" && "
        "git config filter.evil.clean 'sed s/a/PWNED/' && git config filter.evil.required true && "
        "git config diff.noprefix true && git config diff.context 0 && "
        "git config core.hooksPath \"$PWD/.git/hooks\" && mkdir -p .git/hooks .git/info && "
        "printf '#!/bin/sh\\ntouch \"%s/ran-hook\"\\n' \"$PWD\" > .git/hooks/post-index-change && "
        "chmod +x .git/hooks/post-index-change && "
        "printf '* binary\\n' > .git/info/attributes && printf '*.txt\\n' > .git/info/exclude && "
        "printf '* filter=evil\\n' > .gitattributes && printf 'a4\\n' >> a.txt && "
        "printf 'new\\n' > new-file.txt",
        pcc.ChangeStats(3, 3, 0, (".gitattributes", "a.txt", "new-file.txt")),
        patch_has=(b"diff --git a/a.txt b/a.txt\n", b" a3\n+a4\n"),
        patch_lacks=(b"PWNED", b"Binary files"),
        needs_git=True,
        after="ls ran-* 2>/dev/null || true",
    ),
    Scenario(
        "git-redirected",
        "rm -rf .git && printf 'gitdir: /nonexistent/elsewhere\\n' > .git && "
        "printf 'a4\\n' >> a.txt",
        pcc.ChangeStats(1, 1, 0, ("a.txt",)),
    ),
]
SCENARIO_IDS = [s.name for s in SCENARIOS]


async def check_collect_scenario(h: Harness, scenario: Scenario) -> pcc.ChangeStats:
    sandbox = await h.prepared()
    done = await h.sh(sandbox, scenario.script)
    assert done.code == 0, done.stderr
    workspace = await h.state(sandbox)
    dest = h.run.spec.run_dir / "task-1"
    stats = await sandbox.collect(dest)
    if scenario.after:
        after = await h.sh(sandbox, scenario.after)
        assert after.stdout == [], f"a command the task planted ran: {after.stdout}"
    verify_collected(h, dest, stats, workspace)
    if scenario.expected is not None:
        assert stats == scenario.expected
    else:
        assert set(stats.paths) == scenario.paths
        assert set(stats.deleted_paths) == scenario.deleted
    patch = (dest / PATCH_FILE).read_bytes()
    for needle in scenario.patch_has:
        assert needle in patch, needle
    for needle in scenario.patch_lacks:
        assert needle not in patch, needle
    return stats


def verify_collected(h: Harness, dest: Path, stats: pcc.ChangeStats, workspace: State) -> None:
    """The patch applied to the snapshot reproduces the workspace, but what was left out; the
    copies are exact."""
    workspace = {
        path: entry
        for path, entry in workspace.items()
        if not any(_under(path, excluded) for excluded in stats.excluded_paths)
    }
    fresh = h.snapshot_tree(h.root / f"fresh-{len(list(h.root.glob('fresh-*')))}")
    patch = dest / PATCH_FILE
    subprocess.run(["git", "init", "--quiet"], cwd=fresh, check=True)
    if patch.stat().st_size:
        applied = subprocess.run(
            ["git", "apply", "--binary", "--whitespace=nowarn", str(patch)],
            cwd=fresh,
            capture_output=True,
            check=False,
        )
        assert applied.returncode == 0, applied.stderr.decode()
    assert host_state(fresh) == workspace, "the patch applied to the snapshot differs"
    copies_dir = dest / CHANGED_FILES_DIR
    copies = host_state(copies_dir) if copies_dir.exists() else {}
    assert copies == {path: workspace[path] for path in stats.paths}
    assert stats.files_changed == len(stats.paths) + len(stats.deleted_paths)
    assert len(set(stats.paths)) == len(stats.paths)
    assert not set(stats.paths) & set(stats.deleted_paths)


def _under(path: str, excluded: str) -> bool:
    """``path`` is the left-out file ``excluded``, or lies in the left-out folder ``excluded/``."""
    return path.startswith(excluded) if excluded.endswith("/") else path == excluded


# A virtualenv, caches and compiled files a task leaves behind, beside two real edits: one of
# them in lib/node_modules/, which the snapshot tracks (so it is kept; a new file there is not).
NEVER_SOURCE = " && ".join(
    [
        "mkdir -p .venv/bin .venv/lib/python3/site-packages/big",
        "ln -s /usr/bin/python3 .venv/bin/python",
        "for i in $(seq 40); do head -c 50000 /dev/zero | tr '\\0' v"
        " > .venv/lib/python3/site-packages/big/m$i.py; done",
        "mkdir -p src/__pycache__ node_modules/left-pad .pytest_cache sub/.mypy_cache",
        "printf c > src/__pycache__/d.cpython-311.pyc",
        "printf p > stray.pyc",
        "printf j > node_modules/left-pad/index.js",
        "printf x > .pytest_cache/README.md",
        "printf m > sub/.mypy_cache/x.json",
        "printf 'x = 2\\ny = 2\\n' > src/d.py",
        "printf 'k2\\n' > lib/node_modules/kept.js",
        "printf n > lib/node_modules/new.js",
    ]
)


async def check_collect_leaves_out_what_is_never_source(h: Harness) -> None:
    sandbox = await h.prepared()
    done = await h.sh(sandbox, NEVER_SOURCE)
    assert done.code == 0, done.stderr
    workspace = await h.state(sandbox)
    dest = h.run.spec.run_dir / "task-1"
    stats = await sandbox.collect(dest)
    verify_collected(h, dest, stats, workspace)
    assert stats.paths == ("lib/node_modules/kept.js", "src/d.py")
    assert set(stats.excluded_paths) == {
        ".venv/",
        ".pytest_cache/",
        "lib/node_modules/new.js",
        "node_modules/",
        "src/__pycache__/",
        "stray.pyc",
        "sub/",  # a new folder holding only a cache is one entry
    }
    assert stats.excluded_bytes is not None and 2_000_000 <= stats.excluded_bytes < 3_000_000
    patch = (dest / PATCH_FILE).read_bytes()
    assert b".venv" not in patch and b"pyc" not in patch and b"left-pad" not in patch


async def check_collect_obeys_the_runs_exclude_changes(h: Harness) -> None:
    run = dataclasses.replace(
        h.run, spec=dataclasses.replace(h.run.spec, exclude_changes=("*.log", "build/"))
    )
    sandbox = await h.open("task-1", run=run)
    await sandbox.prepare()
    done = await h.sh(
        sandbox,
        "mkdir -p build .venv && printf 'l' > out.log && printf 'b' > build/x && "
        "printf 'v' > .venv/kept && printf 'a4\\n' >> a.txt",
    )
    assert done.code == 0, done.stderr
    stats = await sandbox.collect(h.run.spec.run_dir / "task-1")
    assert stats.paths == (".venv/kept", "a.txt")
    assert stats.excluded_paths == ("build/", "out.log")
    assert stats.excluded_bytes is not None and stats.excluded_bytes >= 2


async def check_collect_twice_replaces_the_earlier_copies(h: Harness) -> None:
    sandbox = await h.prepared()
    dest = h.run.spec.run_dir / "task-1"
    await h.sh(sandbox, "printf 'first\\n' > first.txt")
    assert (await sandbox.collect(dest)).paths == ("first.txt",)
    await h.sh(sandbox, "rm first.txt && printf 'second\\n' > second.txt")
    stats = await sandbox.collect(dest)
    assert stats.paths == ("second.txt",)
    assert sorted(p.name for p in (dest / CHANGED_FILES_DIR).iterdir()) == ["second.txt"]


# ------------------------------------------------------------------------------------------------
# cancellation, close


# Two heartbeats, one from a background child, one from a child that left the process group;
# each beat is written aside and renamed, so a kill never leaves an empty file.
_BEAT = 'while :; do date +%s%N > "$HOME/$0.new"; mv "$HOME/$0.new" "$HOME/$0"; sleep 0.05; done'
KILLABLE = (
    f"sh -c '{_BEAT}' beat-bg & "
    f"setsid sh -c '{_BEAT}' beat-setsid & "
    'while [ ! -s "$HOME/beat-bg" ] || [ ! -s "$HOME/beat-setsid" ]; do sleep 0.05; done; '
    "echo started; sleep 300"
)


async def check_cancel_kills_everything_the_command_started(h: Harness) -> None:
    sandbox = await h.prepared()
    started = asyncio.Event()

    def on_line(stream: pcc.Stream, line: str) -> None:
        if line == "started":
            started.set()

    invocation = pcc.Invocation(argv=("/bin/sh", "-c", KILLABLE))
    job = asyncio.create_task(sandbox.exec(invocation, on_line))
    await asyncio.wait_for(started.wait(), 30)
    job.cancel()
    cancelled = False
    try:
        await asyncio.wait_for(job, 15)
    except asyncio.CancelledError:
        cancelled = True
    assert cancelled, "exec must re-raise the cancellation"
    # Nothing is left writing its heartbeat, in the same sandbox, before it is closed.
    first = await h.sh(sandbox, 'cat "$HOME/beat-bg" "$HOME/beat-setsid"')
    await asyncio.sleep(0.5)
    second = await h.sh(sandbox, 'cat "$HOME/beat-bg" "$HOME/beat-setsid"')
    assert first.code == 0 and len(first.stdout) == 2
    assert first.stdout == second.stdout, "a process the command started is still running"


async def check_close_is_safe_twice_and_after_async_with(h: Harness) -> None:
    unprepared = await h.open("never-prepared")
    await unprepared.close()
    await unprepared.close()
    sandbox = await h.open("task-1")
    async with sandbox as same:
        assert same is sandbox
        await sandbox.prepare()
        assert (await h.sh(sandbox, "true")).code == 0
    await sandbox.close()
    await sandbox.close()


async def check_describe_and_ids(h: Harness) -> None:
    first = await h.open("task-1")
    second = await h.open("task-2")
    assert first.sandbox_id and second.sandbox_id and first.sandbox_id != second.sandbox_id
    for sandbox in (first, second):
        info = sandbox.describe()
        # The journal stores it as JSON.
        assert all(isinstance(k, str) for k in info)
    assert os.path.isabs(first.context.workspace) and os.path.isabs(first.context.home)
