"""The test suite mirrors the package (mitmproxy's rule): every module of ``edgeproxy/`` has a test module of its
own name, ``edgeproxy/a/b.py`` -> ``tests/a/test_b.py`` and a package's ``__init__.py`` -> ``tests/test_<package>.py``.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "edgeproxy"
# Modules with nothing of their own to test: re-exports (the package's lazy ones and the record package's, tested
# through every import of them in the suite) and an empty package marker.
EXCEPTIONS = {"edgeproxy/__init__.py", "edgeproxy/events/__init__.py", "edgeproxy/record/__init__.py"}


def expected_test_module(module: Path) -> Path:
    relative = module.relative_to(PACKAGE)
    if relative.name == "__init__.py":
        return ROOT / "tests" / relative.parent.parent / f"test_{relative.parent.name}.py"
    return ROOT / "tests" / relative.parent / f"test_{relative.name}"


def test_every_module_has_a_test_module_of_its_name() -> None:
    missing = [
        f"{module.relative_to(ROOT)} -> {expected_test_module(module).relative_to(ROOT)}"
        for module in sorted(PACKAGE.rglob("*.py"))
        if str(module.relative_to(ROOT)) not in EXCEPTIONS and not expected_test_module(module).is_file()
    ]
    assert missing == []


def test_exceptions_are_still_modules() -> None:
    assert all((ROOT / exception).is_file() for exception in EXCEPTIONS)
