"""Handler references and the functions they name: ``file.py:function`` or Lambda-style ``module.function``, loaded
into this process once (warm) and reloaded when their source changes; or a Python callable handed over directly."""

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
from typing import Any

from edgeproxy.errors import HandlerLoadError
from edgeproxy.runtime.log import invocation_print, user_traceback

log = logging.getLogger("edgeproxy.lambda")

FUNCTION_VERSION = "1"  # Lambda@Edge runs numbered versions only (§2.4)
Handler = Callable[[Any, Any], Any]


REFERENCE_FORMS = "a handler reference is 'file.py:function' or 'module.function'"
NODE_SUFFIXES = (".js", ".mjs", ".cjs")
NOT_NODE_YET = "Node.js handlers are not supported yet (edgeproxy runs Python handlers)"


def parse_ref(ref: str, base_dir: Path) -> tuple[Path, str]:
    """``path/to/file.py:function`` or Lambda-style ``package.module.function`` -> (source file, function name)."""
    file_part, colon, function = ref.rpartition(":")
    named_file = file_part if colon else ref
    if named_file.endswith(NODE_SUFFIXES):
        raise HandlerLoadError(f"{ref!r} names a Node.js file: {NOT_NODE_YET}")
    if colon and function and file_part:
        return (base_dir / file_part).resolve(), function
    if colon or ref.endswith(".py"):
        stem = Path(named_file).stem
        raise HandlerLoadError(
            f"{ref!r} names no function: {REFERENCE_FORMS} (for example '{named_file}:handler' or '{stem}.handler')"
        )
    module, dot, function = ref.rpartition(".")
    if not dot or not module or not function:
        raise HandlerLoadError(f"{ref!r} is not a handler reference: {REFERENCE_FORMS}")
    return (base_dir / (module.replace(".", "/") + ".py")).resolve(), function


@dataclass
class Function:
    """One handler: loaded from its source file (``reload_if_changed`` re-executes the module on change), or a
    Python callable handed over directly (the testing API; never reloaded)."""

    ref: str
    path: Path | None
    attribute: str
    name: str
    handler: Handler = field(init=False)
    is_async: bool = field(init=False)
    mtime: float = field(init=False)
    # One log stream per warm instance, as in Lambda.
    log_stream_name: str = field(
        init=False, default_factory=lambda: f"{time.strftime('%Y/%m/%d')}/[{FUNCTION_VERSION}]{uuid.uuid4().hex}"
    )

    @classmethod
    def load(cls, ref: str, base_dir: Path) -> Function:
        path, attribute = parse_ref(ref, base_dir)
        function = cls(ref=ref, path=path, attribute=attribute, name=path.stem)
        function._load()
        return function

    @classmethod
    def of(cls, handler: Handler) -> Function:
        """A function for a callable, named after it (``module.qualname``)."""
        if not callable(handler):
            raise HandlerLoadError(f"{handler!r} is not callable")
        name = getattr(handler, "__name__", type(handler).__name__)
        ref = f"{getattr(handler, '__module__', '?')}.{getattr(handler, '__qualname__', name)}"
        function = cls(ref=ref, path=None, attribute=name, name=name)
        function.handler = handler
        function.is_async = inspect.iscoroutinefunction(handler)
        function.mtime = 0.0
        return function

    def _load(self) -> None:
        assert self.path is not None
        if not self.path.is_file():
            # A Lambda-style reference such as 'index.handler' may be meant for Node.js's index.mjs.
            node = [path for path in map(self.path.with_suffix, NODE_SUFFIXES) if path.is_file()]
            found = f" ({node[0].name} is there, but {NOT_NODE_YET})" if node else ""
            raise HandlerLoadError(f"handler file {str(self.path)!r} does not exist{found}")
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
        except Exception as exc:
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

    def reload_if_changed(self) -> bool:
        """Re-load the source if its modification time changed. Keeps the old code if the new one fails."""
        if self.path is None:
            return False
        try:
            mtime = self.path.stat().st_mtime
        except OSError:
            return False
        if mtime == self.mtime:
            return False
        try:
            self._load()
        except HandlerLoadError as exc:
            self.mtime = mtime
            log.error("reload of %s failed, keeping the previous version: %s", self.ref, exc)
            return False
        log.info("reloaded %s", self.ref)
        return True
