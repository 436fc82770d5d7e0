"""One serialisation for the plan and contract types: dataclass fields to JSON-ready dicts and back.

A type that subclasses :class:`Serialisable` gets ``to_json``/``from_json`` from its dataclass fields
and their annotations, so a new field is serialised by declaring it. Values convert by type:
:class:`~planner.resources.Address` as its text, enums as their value, nested serialisable
dataclasses as dicts, tuples and sequences as lists, frozensets as sorted lists, mappings as dicts
(keyed by address text, sorted, when the keys are addresses). Reading coerces ``int``, ``float``,
``str`` and ``bool`` fields, so a hand-edited file with ``"pid": "12"`` still loads.

What is not plain is said per field with :func:`rule` in the field's metadata (another JSON name,
a value when the key is missing, when to leave a key out, fields only saved plans carry, a
redaction hook) and per class with :meth:`Serialisable.json_extras` (keys derived from fields, such
as an address's parts, written for readers of the JSON and ignored when reading back).
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Self, TypeVar

from planner.resources import Address

__all__ = ["Options", "Serialisable", "rule"]

_UNSET: Any = object()
T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Options:
    """How a value is written: ``redact`` masks sensitive values, ``bodies`` adds what only saved plans keep."""

    redact: bool = True
    bodies: bool = False


#: ``write(value, owner, options)``: the value to write for a field (e.g. masked when sensitive).
WriteHook = Callable[[Any, Any, Options], Any]
#: ``omit(value, options)``: True leaves the key out.
OmitHook = Callable[[Any, Options], bool]
#: ``read(data)``: the field's value from the whole dict, for a field stored under another key's value.
ReadHook = Callable[[Mapping[str, Any]], Any]


def rule(
    *,
    key: str | None = None,
    missing: Any = _UNSET,
    required: bool = False,
    omit: OmitHook | None = None,
    saved_only: bool = False,
    stored: bool = True,
    write: WriteHook | None = None,
    read: ReadHook | None = None,
) -> dict[str, Any]:
    """A field's serialisation rule, for ``dataclasses.field(metadata=rule(...))``.

    ``key``: the JSON name, when it differs from the field's. ``missing``: the value read when the
    key is absent (converted like a present one); without it the field's default is used, and a
    field without a default is required, as is one marked ``required``. ``omit``: leave the key out when it says so.
    ``saved_only``: written only with ``Options.bodies``. ``stored=False``: never written.
    ``write``/``read``: hooks for a value that is not the field as it stands.
    """
    return {"codec": _Rule(key, missing, required, omit, saved_only, stored, write, read)}


@dataclasses.dataclass(frozen=True)
class _Rule:
    key: str | None = None
    missing: Any = _UNSET
    required: bool = False
    omit: OmitHook | None = None
    saved_only: bool = False
    stored: bool = True
    write: WriteHook | None = None
    read: ReadHook | None = None


_DEFAULT_RULE = _Rule()


class Serialisable:
    """Mixin for frozen dataclasses: ``to_json``/``from_json`` driven by the fields (see the module)."""

    def json_extras(self, options: Options) -> dict[str, Any]:
        """Keys derived from the fields, written after them and ignored when read back."""
        return {}

    def to_json(self, *, redact: bool = True, bodies: bool = False) -> dict[str, Any]:
        return encode(self, Options(redact, bodies))

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        return decode(cls, data)


Encoder = Callable[[Any, Options], Any]
Decoder = Callable[[Any], Any]


class _Writer(typing.NamedTuple):
    name: str
    key: str
    saved_only: bool
    omit: OmitHook | None
    write: WriteHook | None
    encode: Encoder | None  # None: written as it is


class _Reader(typing.NamedTuple):
    name: str
    key: str
    read: ReadHook | None
    missing: Any  # _UNSET: none given
    required: bool
    decode: Decoder | None  # None: taken as it is


def encode(obj: Serialisable, options: Options) -> dict[str, Any]:
    """The JSON-ready dict of ``obj``: its stored fields in declaration order, then its extras."""
    data: dict[str, Any] = {}
    for name, key, saved_only, omit, write, enc in _plan(type(obj))[0]:
        if saved_only and not options.bodies:
            continue
        value = getattr(obj, name)
        if omit is not None and omit(value, options):
            continue
        if write is not None:
            value = write(value, obj, options)
        data[key] = value if enc is None else enc(value, options)
    data.update(obj.json_extras(options))
    return data


def decode(cls: type[T], data: Mapping[str, Any], **given: Any) -> T:
    """An instance of ``cls`` from its JSON form; ``given`` values are taken as they are."""
    kwargs: dict[str, Any] = dict(given)
    for name, key, read, missing, required, dec in _plan(cls)[1]:
        if read is not None:
            value = read(data)
        elif key in data:
            value = data[key]
        elif missing is not _UNSET:
            value = missing
        elif required:
            raise KeyError(key)
        else:
            continue  # the field's default
        if name not in kwargs:
            kwargs[name] = value if dec is None else dec(value)
    return cls(**kwargs)


_PLANS: dict[type, tuple[tuple[_Writer, ...], tuple[_Reader, ...]]] = {}


def _plan(cls: type) -> tuple[tuple[_Writer, ...], tuple[_Reader, ...]]:
    """How the class's fields are written and read, worked out once per class."""
    known = _PLANS.get(cls)
    if known is not None:
        return known
    hints = typing.get_type_hints(cls)
    writers, readers = [], []
    for f in dataclasses.fields(cls):
        rule_ = f.metadata.get("codec", _DEFAULT_RULE)
        has_default = f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        enc, dec = _converters(hints[f.name])
        key = rule_.key or f.name
        if rule_.stored:
            writers.append(_Writer(f.name, key, rule_.saved_only, rule_.omit, rule_.write, _or_none(enc)))
        required = rule_.required or not has_default
        readers.append(_Reader(f.name, key, rule_.read, rule_.missing, required, _or_none(dec)))
    _PLANS[cls] = (tuple(writers), tuple(readers))
    return _PLANS[cls]


def _or_none(converter: Any) -> Any:
    return None if converter is _same else converter


def _same(value: Any, options: Options | None = None) -> Any:
    return value


def _converters(tp: Any) -> tuple[Encoder, Decoder]:
    """How a value of annotation ``tp`` is written and read back."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any or origin is typing.Literal:
        return _same, _same
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        if len(inner) != 1:
            return _same, _same
        enc, dec = _converters(inner[0])
        if enc is _same and dec is _same:
            return _same, _same
        return (lambda v, o: None if v is None else enc(v, o)), (lambda v: None if v is None else dec(v))
    if tp is Address:
        return (lambda v, o: str(v)), Address.parse
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return (lambda v, o: v.value), tp
    if isinstance(tp, type) and issubclass(tp, Serialisable):
        return encode, lambda v: tp.from_json(v)
    if tp in (int, float, str, bool):
        return _same, tp
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            enc, dec = _converters(args[0])
            return (lambda v, o: [enc(x, o) for x in v]), (lambda v: tuple(dec(x) for x in v))
        return (lambda v, o: list(v)), tuple
    if origin in (list, Sequence):
        enc, dec = _converters(args[0]) if args else (_same, _same)
        return (lambda v, o: [enc(x, o) for x in v]), (lambda v: [dec(x) for x in v])
    if origin is frozenset:
        return (lambda v, o: sorted(v)), frozenset
    if origin in (dict, Mapping):
        return _mapping(*args) if args else ((lambda v, o: dict(v)), dict)
    return _same, _same


def _mapping(key_type: Any, value_type: Any) -> tuple[Encoder, Decoder]:
    key_enc, key_dec = _converters(key_type)
    enc, dec = _converters(value_type)
    if key_type is Address:

        def write(v: Mapping[Any, Any], o: Options) -> dict[str, Any]:
            return {str(k): enc(x, o) for k, x in sorted(v.items(), key=lambda kv: str(kv[0]))}

        return write, lambda v: {key_dec(k): dec(x) for k, x in dict(v).items()}
    return (lambda v, o: {key_enc(k, o): enc(x, o) for k, x in v.items()}), (
        lambda v: {key_dec(k): dec(x) for k, x in dict(v).items()}
    )
