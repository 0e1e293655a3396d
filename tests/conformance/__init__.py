"""The backend conformance suite: what every backend must do, checked the same way for each.

A backend is done when it passes this suite. It talks to the backend only through the public
protocol (``start_run`` → ``open`` → ``prepare`` → ``exec`` → ``collect`` → ``close`` →
``end_run``, and the class-level ``cleanup``), and looks into sandboxes only by running
``/bin/sh`` commands in them, so a remote backend is checked exactly like the local one.

What it checks (``checks.py``):

- ``prepare`` fills the workspace with the run's snapshot (uncommitted and untracked files too);
- ``exec`` streams lines in order, keeps stdout and stderr apart, carries a 10 MB line and
  invalid UTF-8, feeds stdin, sets the environment, writes the invocation's files, returns the
  exit code;
- ``collect`` over the adversarial change matrix (edits, new folders, deletions, renames, binary
  files, mode changes, symlinks inside and pointing outside, odd names, agent commits, a hostile
  ``.git``): ``changes.patch`` applies with ``git apply --binary`` onto the snapshot and
  reproduces the workspace, ``changed-files/`` holds exactly the changed files, counts are exact;
- ``collect`` leaves out what is never source (a virtualenv, ``node_modules/``, caches,
  ``*.pyc``) unless the snapshot tracks it, names it and measures its size, and obeys the run's
  own ``RunSpec.exclude_changes`` (so pass ``spec.exclude_changes`` to ``collect_command``);
- cancelling ``exec`` kills everything the command started, background and ``setsid`` children
  included;
- ``close`` is safe twice, and after ``async with``;
- ``cleanup`` finds and closes a sandbox whose run process was killed with SIGKILL.

Adding a backend (``registry.py``): write a factory ``def make_x(work_dir: Path) -> Backend``
in ``registry.py`` (``work_dir`` is a private folder of the test, for backends that keep files
on this machine), a ``leftovers(run_dir, sandbox_id, sandbox_info) -> list[str]`` probe that
says what of a sandbox still exists (for the ``cleanup`` check), and one entry in ``BACKENDS``::

    BackendUnderTest("e2b", "conformance.registry:make_e2b", e2b_leftovers),

(``marks=`` adds pytest marks to every test of that backend, as ``bwrap`` does for
``local-bubblewrap``; ``fixtures=`` names pytest fixtures its tests need, as ``e2b_env`` starts
the local E2B server for ``e2b-fork`` and ``e2b-upload``). Every test in
``test_backend_conformance.py`` then runs on it. A test file may also run a subset of the checks
on a backend of its own (see ``tests/test_extension_points.py``).
"""
