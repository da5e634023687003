"""Handler references and the functions they name: ``file.py:function``, ``file.mjs:function`` (``.js``, ``.cjs``)
or Lambda-style ``module.function``, resolved to a source file and a language; a Python one may be loaded into this
process once (warm) and reloaded when its source changes. Or a Python callable handed over directly."""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import logging
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from edgeproxy.config import Isolation
from edgeproxy.errors import HandlerLoadError
from edgeproxy.runtime.log import invocation_print, user_traceback

log = logging.getLogger("edgeproxy.lambda")

FUNCTION_VERSION = "1"  # Lambda@Edge runs numbered versions only (§2.4)
Handler = Callable[[Any, Any], Any]


REFERENCE_FORMS = "a handler reference is 'file.py:function', 'file.mjs:function' or 'module.function'"
PYTHON_SUFFIX = ".py"
NODE_SUFFIXES = (".js", ".mjs", ".cjs")
Language = Literal["python", "node"]


@dataclass(frozen=True)
class Reference:
    """A handler reference resolved: the source ``path``, the ``attribute`` that is the handler (for Node.js, a
    property path such as ``handlers.viewer``), the ``language`` and ``lambda_handler``, the handler setting as
    Lambda would show it in ``_HANDLER`` (``index.handler``)."""

    path: Path
    attribute: str
    language: Language
    lambda_handler: str


def _language_of(path: Path) -> Language:
    return "node" if path.suffix in NODE_SUFFIXES else "python"


def node_candidates(root: Path, module: str) -> list[Path]:
    """The files the Node.js runtime tries for module ``module`` under ``root``, in its order: the name as it is
    (required), ``.js``, ``.mjs``, ``.cjs`` (aws-lambda-nodejs-runtime-interface-client, UserFunction.js
    ``_tryRequire``; lambda-runtime-facts §3.2)."""
    return [root / (module + suffix) for suffix in ("", *NODE_SUFFIXES)]


def parse_ref(ref: str, base_dir: Path) -> Reference:
    """``path/to/file.py:function`` or ``path/to/file.mjs:handler`` (``.js``, ``.cjs``), or Lambda-style
    ``package.module.function`` (a Python module) or ``index.handler`` (``index.py``, else the Node.js files Lambda's
    Node.js runtime would try: ``index``, ``index.js``, ``index.mjs``, ``index.cjs``)."""
    file_part, colon, function = ref.rpartition(":")
    named_file = file_part if colon else ref
    if colon and function and file_part:
        path = (base_dir / file_part).resolve()
        if path.suffix not in (PYTHON_SUFFIX, *NODE_SUFFIXES):
            kinds = f"{PYTHON_SUFFIX} (Python) or {', '.join(NODE_SUFFIXES)} (Node.js)"
            raise HandlerLoadError(f"{ref!r}: a handler's file is a {kinds} file, not {path.name!r}")
        return Reference(path, function, _language_of(path), f"{path.stem}.{function}")
    if colon or ref.endswith((PYTHON_SUFFIX, *NODE_SUFFIXES)):
        stem = Path(named_file).stem
        raise HandlerLoadError(
            f"{ref!r} names no function: {REFERENCE_FORMS} (for example '{named_file}:handler' or '{stem}.handler')"
        )
    module, dot, function = ref.rpartition(".")
    if not dot or not module or not function:
        raise HandlerLoadError(f"{ref!r} is not a handler reference: {REFERENCE_FORMS}")
    python = (base_dir / (module.replace(".", "/") + PYTHON_SUFFIX)).resolve()
    # Node.js splits the setting after its folder at the first dot: 'src/index.a.b' is src/index's property a.b.
    folder, _, name = ref.rpartition("/")
    node_module, _, node_attribute = name.partition(".")
    node = [path for path in node_candidates(base_dir / folder, node_module) if path.is_file()]
    if node and python.is_file():
        raise HandlerLoadError(
            f"{ref!r} could be {python.name} (Python) or {node[0].name} (Node.js): name the file, "
            f"'{python.name}:{function}' or '{node[0].name}:{node_attribute}'"
        )
    if node:
        return Reference(node[0].resolve(), node_attribute, "node", ref)
    return Reference(python, function, "python", ref)


def python_module(path: Path) -> tuple[Path, str]:
    """Where a Python handler's file is imported from, as Lambda's runtime imports it from its task root, and under
    what name: its folder and its name; for a file in a package (folders holding an ``__init__.py``), the folder
    above the outermost package and the dotted name (``pkg/app.py``: ``pkg.app``, so that ``from . import util``
    and ``from pkg import util`` work as they do on Lambda)."""
    root, names = path.parent, [path.stem]
    while (root / "__init__.py").is_file() and root.parent != root:
        names.insert(0, root.name)
        root = root.parent
    return root, ".".join(names)


def log_stream_name(edge: bool = True) -> str:
    """A log stream name as Lambda makes one for each environment, dated in UTC and naming the version it runs:
    ``2026/12/01/[1]<32 hex>`` at the edge (a numbered version), ``2026/12/01/[$LATEST]<32 hex>`` behind an ALB."""
    version = FUNCTION_VERSION if edge else "$LATEST"
    return f"{time.strftime('%Y/%m/%d', time.gmtime())}/[{version}]{uuid.uuid4().hex}"


@dataclass(eq=False)  # one function is one object: its environments are keyed by it
class Function:
    """One function. A reference to a source file is resolved (:meth:`resolve`) and, to run in this process
    (``isolation = "thread"``, Python only), loaded (:meth:`load`; ``reload_if_changed`` re-executes the module on
    change); one that runs in environments of its own is only resolved here (its environments load it). Or a Python
    callable handed over directly (the testing API; always in this process, never reloaded).

    ``edge`` says whether it runs at the edge (a Lambda@Edge replica, ``us-east-1.<name>``, version ``1``) or behind
    an ALB (``<name>``, ``$LATEST``); ``memory`` (MB), ``concurrency`` and ``interpreter`` (the python or node of its
    environments, ``None`` for the default) are its settings."""

    ref: str
    path: Path | None
    attribute: str
    name: str
    language: Language = "python"
    lambda_handler: str = ""
    isolation: Isolation = "thread"
    interpreter: str | None = None
    memory: int = 128
    concurrency: int = 32
    edge: bool = True
    handler: Handler = field(init=False)
    is_async: bool = field(init=False)
    mtime: float = field(init=False, default=0.0)
    # One log stream per warm instance, as in Lambda (an environment of its own has its own).
    log_stream_name: str = field(init=False, default="")
    # Its environments' task root (their working directory, first on the import path) and, for Python, the module
    # the handler's file is imported as there (python_module).
    task_root: Path | None = field(init=False, default=None)
    module: str = field(init=False, default="")

    def __post_init__(self) -> None:
        self.log_stream_name = log_stream_name(self.edge)

    @classmethod
    def resolve(cls, ref: str, base_dir: Path, **settings: Any) -> Function:
        """The function ``ref`` names, its source file checked to exist but not imported. ``settings`` are fields
        (``isolation``, ``interpreter``, ``memory``, ``concurrency``, ``edge``)."""
        reference = parse_ref(ref, base_dir)
        function = cls(
            ref=ref,
            path=reference.path,
            attribute=reference.attribute,
            name=reference.path.stem,
            language=reference.language,
            lambda_handler=reference.lambda_handler,
            **settings,
        )
        function._check_exists()
        function.mtime = reference.path.stat().st_mtime
        if function.language == "python":
            function.task_root, function.module = python_module(reference.path)
        else:
            function.task_root, function.module = reference.path.parent, reference.path.stem
        return function

    @classmethod
    def load(cls, ref: str, base_dir: Path, **settings: Any) -> Function:
        """:meth:`resolve`, then import the handler's module into this process (a Python function)."""
        function = cls.resolve(ref, base_dir, **settings)
        if function.language == "node":
            raise HandlerLoadError(
                f'{ref!r} is a Node.js handler: it runs in environments of its own (isolation = "process"); '
                'isolation = "thread" runs Python handlers in the proxy\'s process'
            )
        function._load()
        return function

    @classmethod
    def of(cls, handler: Handler) -> Function:
        """A function for a callable, named after it (``module.qualname``)."""
        if not callable(handler):
            raise HandlerLoadError(f"{handler!r} is not callable")
        name = getattr(handler, "__name__", type(handler).__name__)
        ref = f"{getattr(handler, '__module__', '?')}.{getattr(handler, '__qualname__', name)}"
        function = cls(ref=ref, path=None, attribute=name, name=name, lambda_handler=f"{name}.{name}")
        function.handler = handler
        function.is_async = inspect.iscoroutinefunction(handler)
        function.mtime = 0.0
        return function

    @property
    def isolated(self) -> bool:
        """Whether it runs in processes of its own: it gets events as JSON, never the invoker's objects."""
        return self.isolation == "process"

    def _check_exists(self) -> None:
        assert self.path is not None
        if self.path.is_file():
            return
        if self.lambda_handler == self.ref:  # Lambda-style: Node.js's files were looked for too
            module = self.ref.rpartition("/")[2].partition(".")[0]
            *others, last = (path.name for path in node_candidates(Path(), module))
            nodes = f"{', '.join(others)} or {last}"
            raise HandlerLoadError(f"handler file {str(self.path)!r} does not exist (nor, for Node.js, {nodes})")
        raise HandlerLoadError(f"handler file {str(self.path)!r} does not exist")

    def _load(self) -> None:
        assert self.path is not None
        self._check_exists()
        mtime = self.path.stat().st_mtime
        digest = hashlib.sha1(str(self.path).encode()).hexdigest()[:12]
        module_name = f"edgeproxy_handler_{self.path.stem}_{digest}"
        spec = importlib.util.spec_from_file_location(module_name, self.path)
        if spec is None or spec.loader is None:
            raise HandlerLoadError(f"{str(self.path)!r} cannot be imported as a Python module")
        module = importlib.util.module_from_spec(spec)
        # The module's prints go to the log of the invocation that makes them (no process-wide sys.stdout swap).
        module.print = invocation_print  # type: ignore[attr-defined]
        # Like Lambda's task root: the handler's folder is importable, so it can import its siblings.
        folder = str(self.path.parent)
        if folder not in sys.path:
            sys.path.insert(0, folder)
        try:
            spec.loader.exec_module(module)
        except BaseException as exc:  # sys.exit() or KeyboardInterrupt at import fail the import, not the proxy
            raise HandlerLoadError(
                f"importing {str(self.path)!r} failed: {type(exc).__name__}: {exc}\n{user_traceback(exc)}"
            ) from exc
        handler = getattr(module, self.attribute, None)
        if handler is None:
            raise HandlerLoadError(f"{str(self.path)!r} has no function {self.attribute!r}")
        if not callable(handler):
            raise HandlerLoadError(f"{self.path.name}:{self.attribute} is not callable")
        sys.modules[module_name] = module
        self.handler = handler
        self.is_async = inspect.iscoroutinefunction(handler)
        self.mtime = mtime

    def changed(self) -> bool:
        """Whether the source file changed since it was last seen (and take note of the change)."""
        mtime = self._new_mtime()
        if mtime is None:
            return False
        self.mtime = mtime
        return True

    def _new_mtime(self) -> float | None:
        """The source file's modification time if it is not the one last seen; ``None`` if unchanged (or unreadable)."""
        if self.path is None:
            return None
        try:
            mtime = self.path.stat().st_mtime
        except OSError:
            return None
        return None if mtime == self.mtime else mtime

    def reload_if_changed(self) -> bool:
        """Re-load the source if its modification time changed. Keeps the old code if the new one fails."""
        mtime = self._new_mtime()
        if mtime is None:
            return False
        try:
            self._load()
        except HandlerLoadError as exc:
            self.mtime = mtime
            log.error("reload of %s failed, keeping the previous version: %s", self.ref, exc)
            return False
        log.info("reloaded %s", self.ref)
        return True
