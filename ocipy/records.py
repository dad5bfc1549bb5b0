"""`dataclass` and `field` for the modules on `exec`'s path, without importing `dataclasses`.

`dataclasses` imports `inspect` (and with it `ast`, `dis`, `tokenize`, `linecache`): ~10-25 ms per command on this
host, paid by every `ocipy exec` (a Kubernetes exec probe runs one every few seconds in every pod). The planner's
records need only what this module gives: `__init__` with defaults and `field(default_factory=...)`, `__repr__`,
`__eq__`, and `frozen=True` (`__setattr__` refused, `__hash__` from the fields); `replace()` stands in for
`dataclasses.replace`. Fields are the class's own
annotations, in order (no inheritance of fields, no ClassVar, no `__post_init__`: none of the users needs them).

Modules use it as

    TYPE_CHECKING = False
    if TYPE_CHECKING:
        from dataclasses import dataclass, field
    else:
        from ocipy.records import dataclass, field

so mypy checks them as real dataclasses.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TypeVar

    _T = TypeVar("_T")

_MISSING = object()


class FrozenInstanceError(AttributeError):
    pass


class _Field:
    __slots__ = ("default", "default_factory")

    def __init__(self, default: object, default_factory: object) -> None:
        self.default = default
        self.default_factory = default_factory


def field(*, default: object = _MISSING, default_factory: object = _MISSING) -> object:
    return _Field(default, default_factory)


def _frozen_setattr(self: object, name: str, value: object) -> None:
    raise FrozenInstanceError(f"cannot assign to field {name!r}")


def _frozen_delattr(self: object, name: str) -> None:
    raise FrozenInstanceError(f"cannot delete field {name!r}")


def _make(cls: type, frozen: bool) -> type:
    names = list(cls.__dict__.get("__annotations__", {}))  # noqa: RUF063 (inspect is what this module avoids)
    defaults: dict[str, object] = {}
    factories: dict[str, object] = {}
    for name in names:
        value = cls.__dict__.get(name, _MISSING)
        if isinstance(value, _Field):
            if value.default_factory is not _MISSING:
                factories[name] = value.default_factory
            elif value.default is not _MISSING:
                defaults[name] = value.default
            delattr(cls, name)
            if name in defaults:
                setattr(cls, name, defaults[name])
        elif value is not _MISSING:
            defaults[name] = value
    required = [n for n in names if n not in defaults and n not in factories]
    optional = [n for n in names if n in defaults or n in factories]
    if names[: len(required)] != required:
        raise TypeError(f"{cls.__name__}: a field without a default follows one with a default")

    def __init__(self: object, *args: object, **kwargs: object) -> None:
        if len(args) > len(names):
            raise TypeError(f"{cls.__name__}() takes {len(names)} positional arguments but {len(args)} were given")
        values = dict(zip(names, args))
        for key, value in kwargs.items():
            if key not in names:
                raise TypeError(f"{cls.__name__}() got an unexpected keyword argument {key!r}")
            if key in values:
                raise TypeError(f"{cls.__name__}() got multiple values for argument {key!r}")
            values[key] = value
        for name in required:
            if name not in values:
                raise TypeError(f"{cls.__name__}() missing required argument: {name!r}")
        for name in optional:
            if name not in values:
                values[name] = factories[name]() if name in factories else defaults[name]  # type: ignore[operator]
        for name in names:
            object.__setattr__(self, name, values[name])

    def _astuple(self: object) -> tuple[object, ...]:
        return tuple(getattr(self, n) for n in names)

    def __repr__(self: object) -> str:
        inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in names)
        return f"{type(self).__qualname__}({inner})"

    def __eq__(self: object, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return _astuple(self) == _astuple(other)

    cls.__init__ = __init__  # type: ignore[misc]
    cls.__repr__ = __repr__  # type: ignore[method-assign,assignment]
    cls.__eq__ = __eq__  # type: ignore[method-assign,assignment]
    if frozen:
        cls.__setattr__ = _frozen_setattr  # type: ignore[method-assign,assignment]
        cls.__delattr__ = _frozen_delattr  # type: ignore[method-assign,assignment]

        def __hash__(self: object) -> int:
            return hash(_astuple(self))

        cls.__hash__ = __hash__  # type: ignore[method-assign,assignment]
    else:
        cls.__hash__ = None  # type: ignore[assignment]
    setattr(cls, "__match_args__", tuple(names))  # noqa: B010
    setattr(cls, "__record_fields__", tuple(names))  # noqa: B010
    return cls


def dataclass(cls: type | None = None, /, *, frozen: bool = False) -> object:
    if cls is None:
        return lambda c: _make(c, frozen)
    return _make(cls, frozen)


def replace(obj: _T, /, **changes: object) -> _T:
    """`dataclasses.replace` for a record of this module: a copy with `changes` applied."""
    names: tuple[str, ...] = type(obj).__record_fields__  # type: ignore[attr-defined]
    values = {n: getattr(obj, n) for n in names}
    values.update(changes)
    return type(obj)(**values)
