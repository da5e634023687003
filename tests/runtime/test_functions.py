"""runtime/functions.py: handler references, loading a handler's module, reloading it when it changes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from edgeproxy.errors import HandlerLoadError
from edgeproxy.runtime.functions import Function, parse_ref
from edgeproxy.runtime.log import invocation_print


@pytest.mark.parametrize(
    ("ref", "file", "attribute"),
    [
        ("fn/app.py:handler", "fn/app.py", "handler"),
        ("app.handler", "app.py", "handler"),
        ("pkg.app.handler", "pkg/app.py", "handler"),
        ("c:/x.py:main", "c:/x.py", "main"),
    ],
)
def test_references(tmp_path: Path, ref: str, file: str, attribute: str) -> None:
    reference = parse_ref(ref, tmp_path)
    assert (reference.path, reference.attribute, reference.language) == (
        (tmp_path / file).resolve(),
        attribute,
        "python",
    )


def test_a_reference_without_a_function_is_refused(tmp_path: Path) -> None:
    with pytest.raises(HandlerLoadError, match="is not a handler reference"):
        parse_ref("nodots", tmp_path)


def test_reload_picks_up_changes_and_survives_syntax_errors(tmp_path: Path) -> None:
    source = tmp_path / "live.py"
    source.write_text("def handler(event, context):\n    return 'v1'\n")
    function = Function.load("live.py:handler", tmp_path)
    assert function.handler({}, None) == "v1"
    source.write_text("def handler(event, context):\n    return 'v2'\n")
    os.utime(source, (function.mtime + 5, function.mtime + 5))
    assert function.reload_if_changed()
    assert function.handler({}, None) == "v2"
    source.write_text("def handler(event, context):\n    return (\n")
    os.utime(source, (function.mtime + 10, function.mtime + 10))
    assert not function.reload_if_changed()
    assert function.handler({}, None) == "v2"


def test_the_module_gets_its_own_print_and_can_import_its_siblings(tmp_path: Path) -> None:
    (tmp_path / "helper.py").write_text("VALUE = 42\n")
    (tmp_path / "app.py").write_text("import helper\ndef handler(event, context):\n    return helper.VALUE\n")
    function = Function.load("app.py:handler", tmp_path)
    assert function.handler({}, None) == 42
    module_globals = function.handler.__globals__
    assert module_globals["print"] is invocation_print  # prints go to the invocation's log, not sys.stdout


def test_a_callable_is_named_after_itself() -> None:
    async def handler(event: object, context: object) -> None:
        return None

    function = Function.of(handler)
    assert (function.name, function.is_async, function.path) == ("handler", True, None)
    assert function.ref.endswith("test_a_callable_is_named_after_itself.<locals>.handler")
    with pytest.raises(HandlerLoadError, match="is not callable"):
        Function.of(42)  # type: ignore[arg-type]
