"""Parts: everything a researcher swaps, registered and built one way.

A part is a class named by its config node's ``_target_``, built with the node's
other keys as keyword arguments. Five kinds (:data:`KINDS`): ``model``, ``data``,
``optimizer``, ``scheduler`` and ``logger`` (trackers). For each, mnist_lab's own
parts live in one place, which is also what is trusted by default
(:mod:`.trust`), and each module there lists its options in ``SCHEMAS``
(``{option name: schema dataclass}``); :func:`register_schemas` stores every one
in Hydra's ConfigStore as ``schema/<kind>/<name>``, which ``conf/<kind>/<name>.yaml``
extends, restating none of its defaults. A part of a user's own needs no schema:
one class on their ``PYTHONPATH`` and one YAML file with ``_target_``.

Where a part is mnist_lab's own class, its schema is derived from the constructor
(:func:`schema_of`): the signature holds each default once, and the annotations
give the types Hydra checks at composition.

Before a class is imported, the caller has decided that its name is trusted
(:mod:`.trust`); :func:`import_class` then imports it and checks that it is the
kind of class the node is for, before anything is constructed.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
import logging
import sys
import types
import typing
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from ..errors import ConfigError, UserError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Kind:
    """One kind of part.

    Attributes:
        base: import path of the class every part of this kind subclasses.
        trusted: module prefixes of mnist_lab's own parts (and torch's optimizers).
        schemas: modules (or packages, scanned) whose ``SCHEMAS`` list the options.
    """

    base: str
    trusted: tuple[str, ...]
    schemas: tuple[str, ...]


KINDS = {
    "model": Kind("torch.nn.Module", ("mnist_lab.models.",), ("mnist_lab.models",)),
    "data": Kind("mnist_lab.data.datasets.Dataset", ("mnist_lab.data.",),
                 ("mnist_lab.data.datasets",)),
    "optimizer": Kind("torch.optim.Optimizer", ("torch.optim.",),
                      ("mnist_lab.training.optimizers",)),
    "scheduler": Kind("mnist_lab.training.schedules.Schedule", ("mnist_lab.training.schedules.",),
                      ("mnist_lab.training.schedules",)),
    "logger": Kind("mnist_lab.training.tracking.base.Tracker", ("mnist_lab.training.tracking.",),
                   ("mnist_lab.training.tracking",)),
}


def _modules(name: str) -> list[types.ModuleType]:
    """``name``, or every module of the package ``name``."""
    import pkgutil

    module = importlib.import_module(name)
    if not hasattr(module, "__path__"):
        return [module]
    return [importlib.import_module(f"{name}.{info.name}")
            for info in pkgutil.iter_modules(module.__path__)]


@functools.cache
def schemas(kind: str) -> dict[str, type]:
    """The options of ``kind`` mnist_lab ships: ``{name: schema dataclass}``."""
    found: dict[str, type] = {}
    for module_name in KINDS[kind].schemas:
        for module in _modules(module_name):
            found.update(getattr(module, "SCHEMAS", {}))
    return found


def schema_for(target: str) -> type | None:
    """The registered schema (of any kind) whose ``_target_`` is ``target``."""
    every = [s for kind in KINDS for s in schemas(kind).values()]
    return next((s for s in every if getattr(s, "_target_", None) == target), None)


def register_schemas() -> None:
    """Store every kind's schemas in Hydra's ConfigStore as ``schema/<kind>/<name>``
    (idempotent). In their own groups, so that ``'model=glob(*)'`` sweeps only real
    model options."""
    store = ConfigStore.instance()
    for kind in KINDS:
        for name, schema in schemas(kind).items():
            store.store(group=f"schema/{kind}", name=name, node=schema)


# -- schemas derived from constructors ---------------------------------------------------

def _config_type(annotation: Any) -> Any:
    """The type OmegaConf checks for a constructor annotation (``Sequence[int]`` →
    ``List[int]``, ``X | None`` → ``Optional[X]``; what it cannot check: ``Any``)."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation in (int, float, bool, str):
        return annotation
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return Optional[_config_type(rest[0])] if len(rest) == 1 else Any
    if origin in (list, tuple, typing.Sequence, __import__("collections.abc").abc.Sequence):
        item = args[0] if args and args[0] is not Ellipsis else Any
        return List[_config_type(item)]
    if origin is dict or annotation is dict:
        return Dict[str, Any]
    return Any


def schema_of(cls: type, supplied: tuple[str, ...] = ("in_shape", "num_classes"),
              base: type | None = None) -> type:
    """A dataclass schema from ``cls``'s constructor: ``_target_`` and one field per
    keyword argument, typed from its annotation, defaulting to its default (an
    argument without one is ``???``, which the YAML must give).

    ``supplied``: arguments the trainer passes itself (for models, what comes from the
    data), left out. ``base``: a schema dataclass whose fields come first (keys of the
    node the trainer reads, not the class). Each default is written once, in the
    constructor's signature.
    """
    hints = typing.get_type_hints(cls.__init__)
    fields = [("_target_", str, dataclasses.field(default=f"{cls.__module__}.{cls.__name__}"))]
    for name, param in list(inspect.signature(cls.__init__).parameters.items())[1:]:
        if name in supplied or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        default = param.default
        if default is param.empty:
            spec = dataclasses.field(default=MISSING)
        elif isinstance(default, (list, tuple, dict)):
            value = list(default) if isinstance(default, tuple) else default
            spec = dataclasses.field(default_factory=lambda v=value: type(v)(v))
        else:
            spec = dataclasses.field(default=default)
        fields.append((name, _config_type(hints.get(name, Any)), spec))
    schema = dataclasses.make_dataclass(f"{cls.__name__}Config", fields,
                                        bases=(base,) if base else ())
    schema.__doc__ = (f"The config of :class:`{cls.__module__}.{cls.__name__}`, from its "
                      "constructor.")
    schema.__module__ = cls.__module__
    return schema


# -- a node's class and arguments ---------------------------------------------------------

def component(node: Any, key: str) -> tuple[str, dict[str, Any]]:
    """A part's node → (``_target_``, the other keyword arguments).

    ``node``: a schema dataclass instance or a plain mapping (a user's class
    without a schema). Keys starting with ``_`` (Hydra's ``_target_``,
    ``_partial_`` ...) are not arguments.

    Raises:
        ConfigError: the node has no ``_target_`` (``key`` names the node).
    """
    values = dataclasses.asdict(node) if dataclasses.is_dataclass(node) else dict(node)
    if not isinstance(values.get("_target_"), str):
        raise ConfigError(f"{key}._target_", values.get("_target_"),
                          "must name the class to build, as module.Class",
                          f"Add '_target_: my_package.MyClass' to the {key} config file.")
    kwargs = {k: v for k, v in values.items() if not k.startswith("_")}
    return values["_target_"], kwargs


def public_name(cls: type) -> str:
    """The shortest import path of ``cls``: ``torch.nn.Module``, not ``torch.nn.modules.module``."""
    parts = cls.__module__.split(".")
    for n in range(1, len(parts) + 1):
        module = sys.modules.get(".".join(parts[:n]))
        if getattr(module, cls.__name__, None) is cls:
            return f"{'.'.join(parts[:n])}.{cls.__name__}"
    return f"{cls.__module__}.{cls.__qualname__}"


@functools.cache
def _log_import(kind: str, target: str, origin: str | None) -> None:
    """Say once per process which file an outside class is imported from."""
    log.info("Importing %s class %s from %s", kind, target, origin)


def import_class(target: str, kind: str) -> type:
    """Import the class ``target`` names (``module.Class``) and check it is a ``kind``
    (a subclass of that kind's base class, :data:`KINDS`).

    Only call this for a trusted ``target`` (:meth:`.trust.Trust.check`): importing
    runs the module's top-level code. A class from outside mnist_lab (and torch's
    optimizers) is logged with the file it came from.

    Raises:
        UserError: no such module on the Python path, it cannot be imported, or it is
            not a subclass of the kind's base class.
    """
    base = _class(KINDS[kind].base)
    module_name, _, name = target.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name and (module_name + ".").startswith(error.name + "."):
            raise UserError(f"{kind} class {target!r}: no module {module_name!r} on the Python "
                            "path. Install it or add its folder to PYTHONPATH.") from None
        raise UserError(f"{kind} class {target!r} cannot be imported: {error}") from None
    except Exception as error:  # an error in the module's own code
        raise UserError(f"{kind} class {target!r} cannot be imported: {type(error).__name__}: "
                        f"{' '.join(str(error).split())}") from None
    cls = getattr(module, name, None)
    if cls is None:
        raise UserError(f"{kind} class {target!r} cannot be imported: module {module_name!r} "
                        f"has no {name!r}.")
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise UserError(f"{target!r} is not a {public_name(base)} subclass, so it is not "
                        f"loaded as the {kind}. Point _target_ at your {kind} class.")
    if not target.startswith(("mnist_lab.", *KINDS[kind].trusted)):  # a user's own code
        _log_import(kind, target, getattr(module, "__file__", None))
    return cls


def _class(path: str) -> type:
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def build(node: Any, kind: str, *args: Any, **supplied: Any) -> Any:
    """The part a node describes: ``_target_(*args, **supplied, **node's arguments)``,
    with Hydra's ``instantiate``.

    The class is checked (:func:`import_class`) before anything is constructed; the
    node's arguments are plain values, never instantiated themselves
    (``_recursive_=False``: a ``_target_`` nested in them is passed on as a dict,
    never called).

    Raises:
        ConfigError: the part's own value checks refused an argument.
        UserError: the class cannot be imported or is not a ``kind``, or its
            constructor refused the arguments (names the class and the error).
    """
    from hydra.utils import instantiate

    target, kwargs = component(node, kind)
    import_class(target, kind)
    try:  # the class with the node's arguments; the supplied objects are passed as they are
        factory = instantiate({"_target_": target, "_partial_": True, **kwargs},
                              _convert_="all", _recursive_=False)
        return factory(*args, **supplied)
    except Exception as error:
        cause = error.__cause__ or error  # instantiate wraps the constructor's error
        if isinstance(cause, ConfigError):
            raise cause from None
        raise UserError(f"{kind} {target} with {kwargs}: {type(cause).__name__}: "
                        f"{' '.join(str(cause).split())}") from None
