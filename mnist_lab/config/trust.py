"""Which classes a run folder may name: trust decided on the target string, before any import.

A run folder (a colleague's sweep, a checkpoint from a paper, a folder downloaded
from W&B) names the classes that rebuild it: ``checkpoint.pt``'s model target and
the ``_target_`` nodes of its saved config. Importing a module runs its top-level
code, so a name is trusted before anything is imported, from the string alone:

- the parts mnist_lab ships (:data:`BUILT_IN`, from
  :data:`mnist_lab.config.parts.KINDS`: ``mnist_lab.models.`` for models,
  ``mnist_lab.data.`` for datasets, ``torch.optim.`` for optimizers,
  ``mnist_lab.training.schedules.`` and ``mnist_lab.training.tracking.``);
- a target the command's own composed config names (``model=tiny`` with the user's
  own ``conf/model/tiny.yaml``): the user chose it for this command;
- a prefix the user gives: ``--trust PREFIX`` (predict, evaluate, app) or the
  environment variable ``MNIST_LAB_TRUST=p1,p2`` (every command, ``run.py`` included).

Trust is never read from the run folder or its saved config. A prefix matches whole
name components: ``my_models`` trusts ``my_models.Tiny`` and ``my_models.zoo.Big``,
not ``my_models_evil.X``.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

from ..errors import UserError
from .parts import KINDS

TRUST_ENV = "MNIST_LAB_TRUST"
BUILT_IN = {kind: spec.trusted for kind, spec in KINDS.items()}
DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+")


def _matches(target: str, prefix: str) -> bool:
    prefix = prefix.strip()
    return bool(prefix) and (target == prefix.rstrip(".")
                             or target.startswith(prefix if prefix.endswith(".")
                                                  else prefix + "."))


@dataclass(frozen=True)
class Trust:
    """The targets a command may import: built in, its own, and the user's prefixes.

    Attributes:
        prefixes: from ``--trust`` and :data:`TRUST_ENV` (module paths, e.g. ``my_models``).
        own: exact targets of the command's own composed config.
    """

    prefixes: tuple[str, ...] = ()
    own: frozenset[str] = frozenset()

    @classmethod
    def from_env(cls, prefixes: Iterable[str] = (), own: Iterable[str] = ()) -> "Trust":
        """``prefixes`` (a command's ``--trust``) plus those in ``MNIST_LAB_TRUST``."""
        env = [p for p in os.environ.get(TRUST_ENV, "").split(",") if p.strip()]
        return cls(tuple(p.strip() for p in [*prefixes, *env]), frozenset(own))

    def allows(self, target: str, kind: str) -> bool:
        """Whether ``target`` (``module.Class``) may be imported as a ``kind``."""
        if not isinstance(target, str) or not DOTTED.fullmatch(target):
            return False
        return (target in self.own
                or any(_matches(target, p) for p in (*BUILT_IN.get(kind, ()), *self.prefixes)))

    def check(self, target: Any, kind: str, source: str) -> None:
        """Refuse ``target`` unless trusted; nothing is imported here.

        Args:
            target: the class name read from ``source`` (a file or saved config).
            kind: ``model``, ``optimizer``, ... (what the built-in trust covers).

        Raises:
            UserError: one line naming the target, where it was read and how to trust it.
        """
        if self.allows(target, kind):
            return
        if not isinstance(target, str) or not DOTTED.fullmatch(target):
            raise UserError(f"{source} names the {kind} class {target!r}, which is not a "
                            "module path (module.Class): refusing to load it.")
        module = target.rpartition(".")[0]
        raise UserError(
            f"{source} names the {kind} class {target!r}, which is not trusted: loading it "
            f"would import and run the module {module!r}. If you trust that code, pass "
            f"--trust {module} (predict, evaluate, app) or set {TRUST_ENV}={module} "
            "(run.py); mnist_lab never takes trust from a run folder.")


def targets(node: Any) -> Iterator[str]:
    """Every ``_target_`` value in a config node (plain containers), at any depth."""
    if isinstance(node, dict):
        if "_target_" in node:
            yield node["_target_"]
        for value in node.values():
            yield from targets(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            yield from targets(value)


def add_trust_option(parser: Any) -> None:
    """``--trust PREFIX`` (repeatable) for a command that opens run folders."""
    parser.add_argument(
        "--trust", action="append", default=[], metavar="PREFIX",
        help="also import model classes under this module path (e.g. my_models); mnist_lab's "
             f"own are always trusted. Also ${TRUST_ENV}=p1,p2. Trust only code you know.")


def forget_working_directory() -> None:
    """Take the working directory off the module search path of a ``python -m`` command.

    ``python -m`` puts the current directory first on ``sys.path`` (unless ``-P`` or
    ``PYTHONSAFEPATH``), so a module shipped inside a run folder one has ``cd``-ed into
    could be imported by a name its checkpoint gives. Folders the user puts on
    ``PYTHONPATH`` stay. Call it only from a command's ``__main__`` block.
    """
    if not sys.flags.safe_path and sys.path and os.path.abspath(sys.path[0] or ".") == \
            os.getcwd():
        del sys.path[0]
