"""Backends by name: the ones that ship with the SDK, and any other ``Backend`` subclass loaded.

``cleanup`` reads a run's backend name from its journal and finds the class here.
"""

from __future__ import annotations

import importlib

from ..errors import ValidationError
from .base import Backend

__all__ = ["backend_class", "known_backend_classes"]

# name -> (module, class); imported only when asked for, so optional extras stay optional.
_BUILTIN: dict[str, tuple[str, str]] = {
    "local": ("parallelcc_sdk.backends.local", "LocalBackend"),
    "e2b": ("parallelcc_sdk.backends.e2b", "E2BBackend"),
}


def backend_class(name: str) -> type[Backend]:
    """The backend class called ``name``; a one-sentence error if there is none here."""
    if name in _BUILTIN:
        module_name, class_name = _BUILTIN[name]
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ValidationError(
                f"backend {name!r} cannot be loaded here ({exc}); install its extra, "
                f"e.g. pip install 'parallelcc-sdk[{name}]'."
            ) from exc
        cls = getattr(module, class_name)
        assert isinstance(cls, type) and issubclass(cls, Backend)
        return cls
    for cls in _loaded_backends():
        if getattr(cls, "name", None) == name:
            return cls
    raise ValidationError(
        f"backend {name!r} is unknown here; import the module that defines it first."
    )


def known_backend_classes() -> list[type[Backend]]:
    """Every backend class that can be loaded: the built-in ones, then any other loaded one."""
    classes: list[type[Backend]] = []
    for name in _BUILTIN:
        try:
            classes.append(backend_class(name))
        except ValidationError:
            continue
    for cls in _loaded_backends():
        if cls not in classes and isinstance(getattr(cls, "name", None), str):
            classes.append(cls)
    return classes


def _loaded_backends() -> list[type[Backend]]:
    """Every subclass of Backend imported so far, depth first."""
    found: list[type[Backend]] = []
    pending = list(Backend.__subclasses__())
    while pending:
        cls = pending.pop(0)
        found.append(cls)
        pending[:0] = cls.__subclasses__()
    return found
