"""Every public name of the package carries a docstring of its own: ``help()`` in a notebook must
explain each class, function, method, property and PyO3 getter, and each dataclass field (in its
class docstring, where ``help()`` shows it).

The walk covers ``reclaim.__all__`` and, in every public submodule found with pkgutil, its
``__all__`` (or, without one, the public functions and classes it defines). Private ``_`` names
are skipped, and so are members inherited from Python builtins (``BaseException.args``, ...):
only what a class defines itself is checked."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
import re
import types
from collections.abc import Iterator

import reclaim


def _public_modules() -> list[types.ModuleType]:
    mods = [reclaim]
    for info in pkgutil.walk_packages(reclaim.__path__, "reclaim."):
        if any(part.startswith("_") for part in info.name.split(".")):
            continue
        mods.append(importlib.import_module(info.name))
    return mods


def _ours(obj: object) -> bool:
    """Defined by this package (the engine's classes say reclaim or reclaim._reclaim)."""
    return (getattr(obj, "__module__", None) or "").split(".")[0] == "reclaim"


def _public_names(mod: types.ModuleType) -> Iterator[tuple[str, object]]:
    names = getattr(mod, "__all__", None)
    for name in names if names is not None else list(vars(mod)):
        if name.startswith("_"):
            continue
        obj = getattr(mod, name)
        if not (inspect.isclass(obj) or callable(obj)) or not _ours(obj):
            continue
        # without __all__, what the module defines (not what it imports from elsewhere)
        if names is not None or obj.__module__ == mod.__name__:
            yield f"{mod.__name__}.{name}", obj


def _own_doc(obj: object) -> str:
    if inspect.isclass(obj):
        doc = obj.__dict__.get("__doc__")
        if dataclasses.is_dataclass(obj) and doc is not None and doc.startswith(obj.__name__ + "("):
            return ""  # the signature dataclass() writes when the class has no docstring
    elif isinstance(obj, property):
        doc = obj.__doc__ or (obj.fget.__doc__ if obj.fget is not None else None)
    elif isinstance(obj, (staticmethod, classmethod)):
        doc = obj.__func__.__doc__
    else:
        doc = getattr(obj, "__doc__", None)
    return (doc or "").strip() if isinstance(doc, str) else ""


_MEMBER_KINDS = (
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodDescriptorType,
    types.ClassMethodDescriptorType,
    types.GetSetDescriptorType,
    types.MemberDescriptorType,
    property,
    staticmethod,
    classmethod,
)


def _missing_in_class(qual: str, cls: type) -> Iterator[str]:
    if not _own_doc(cls):
        yield qual
    for name, member in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(member, _MEMBER_KINDS) and not _own_doc(member):
            yield f"{qual}.{name}"
    if dataclasses.is_dataclass(cls):
        # a field is explained in the docstring of its class or of a base class of the package
        # (help() shows both)
        doc = "\n".join(_own_doc(c) for c in cls.__mro__ if _ours(c))
        for f in dataclasses.fields(cls):
            if f.name.startswith("_"):
                continue
            if not re.search(rf"\b{re.escape(f.name)}\b", doc):
                yield f"{qual}.{f.name} (field, not named in the class docstring)"


def _missing() -> list[str]:
    missing: list[str] = []
    seen: set[int] = set()
    for mod in _public_modules():
        if not (mod.__doc__ or "").strip():
            missing.append(f"{mod.__name__} (module)")
        for qual, obj in _public_names(mod):
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            if inspect.isclass(obj):
                missing.extend(_missing_in_class(qual, obj))
            elif not _own_doc(obj):
                missing.append(qual)
    return missing


def test_walk_covers_the_surface() -> None:
    # the walk itself must see the names users reach, or the test below proves nothing
    mods = {m.__name__ for m in _public_modules()}
    assert {"reclaim", "reclaim.s390", "reclaim.cli", "reclaim.studies.postcopy"} <= mods
    assert "reclaim._reclaim" not in mods
    names = {q for m in _public_modules() for q, _ in _public_names(m)}
    assert {"reclaim.Kernel", "reclaim.s390.Pte", "reclaim.cli.cmd_demo"} <= names
    assert "reclaim.Pte" not in names


def test_every_public_name_has_a_docstring() -> None:
    missing = _missing()
    assert not missing, f"{len(missing)} public names without a docstring:\n" + "\n".join(missing)
