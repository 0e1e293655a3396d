"""Landing a run's work: the conflict map of its patches, applying them to a branch, pushing it.

Reached through :class:`~parallelcc_sdk.results.RunResult` (``conflicts()``, ``apply()``,
``push()``); see ``docs/landing.md``.
"""
