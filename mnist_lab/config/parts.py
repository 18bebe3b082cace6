"""Parts: the classes a config node names with ``_target_``, imported and checked.

A part (model, optimizer, ...) is a class named by its node's ``_target_``. Before
its module is imported, the caller has decided that the name is trusted
(:mod:`.trust`); :func:`import_class` then imports it and checks that it is the kind
of class the node is for, before anything is constructed.
"""

from __future__ import annotations

import functools
import importlib
import logging
import sys

from ..errors import UserError

log = logging.getLogger(__name__)


@functools.cache
def _log_import(kind: str, target: str, origin: str | None) -> None:
    """Say once per process which file an outside class is imported from."""
    log.info("Importing %s class %s from %s", kind, target, origin)


def public_name(cls: type) -> str:
    """The shortest import path of ``cls``: ``torch.nn.Module``, not ``torch.nn.modules.module``."""
    parts = cls.__module__.split(".")
    for n in range(1, len(parts) + 1):
        module = sys.modules.get(".".join(parts[:n]))
        if getattr(module, cls.__name__, None) is cls:
            return f"{'.'.join(parts[:n])}.{cls.__name__}"
    return f"{cls.__module__}.{cls.__qualname__}"


def import_class(target: str, base: type, kind: str) -> type:
    """Import the class ``target`` names (``module.Class``) and check it subclasses ``base``.

    Only call this for a trusted ``target`` (:meth:`.trust.Trust.check`): importing
    runs the module's top-level code. A class outside mnist_lab is logged with the
    file it came from.

    Raises:
        UserError: no such module on the Python path, it cannot be imported, or it is
            not a ``base`` subclass (``kind`` names the part in the message).
    """
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
        raise UserError(f"{target!r} is not a {public_name(base)} subclass, "
                        f"so it is not loaded as the {kind}. Point _target_ at your {kind} "
                        "class.")
    if not target.startswith("mnist_lab."):
        _log_import(kind, target, getattr(module, "__file__", None))
    return cls
