"""What a starting service loads: the bundler's parsers only once something needs them."""

from __future__ import annotations

import json
import subprocess
import sys

PARSERS = ("tree_sitter", "tree_sitter_javascript", "selectolax", "minify", "tinycss2")


def loaded_after(code: str) -> list[str]:
    probe = (f"{code}; import json, sys; "
             f"print(json.dumps(sorted(m for m in {PARSERS!r} if m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    names: list[str] = json.loads(out.stdout)
    return names


def test_importing_the_service_loads_neither_the_old_routes_nor_the_bundlers_parsers() -> None:
    # The old routes load when a service with compat on builds its app (a worker never does).
    assert loaded_after("import oven._service, oven._grab_cli, oven.supervisor") == []
    assert loaded_after("import oven._service, sys; assert 'oven.compat' not in sys.modules") == []


def test_the_bundle_errors_load_without_the_parsers_and_the_bundler_brings_them() -> None:
    assert loaded_after("from oven.bundles import BundleRefused, FetchFailed, TooLarge") == []
    assert loaded_after("from oven.bundles import Bundler, BUNDLE_FORMAT") == sorted(PARSERS)


def test_the_old_routes_load_without_the_parsers() -> None:
    # With compat on (the default) the service imports the old routes as it builds its app;
    # the bundle routes' bundler is made on the first bundle asked for.
    assert loaded_after("import oven.compat, oven.compat._bundles") == []
