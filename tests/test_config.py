from __future__ import annotations

from pathlib import Path

import pytest

from oven.config import ConfigError, Settings, defaults_toml, diff, load

ROOT = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "oven.toml"
    path.write_text(text)
    return path


def test_config_oven_toml_holds_exactly_the_embedded_defaults() -> None:
    shipped = load(ROOT / "config" / "oven.toml", env={}).settings
    assert shipped == Settings()
    assert (ROOT / "config" / "oven.toml").read_text().endswith(defaults_toml())


def test_unknown_key_names_file_and_key_and_suggests(tmp_path: Path) -> None:
    path = write(tmp_path, "[browser]\npagez = 3\n")
    with pytest.raises(ConfigError) as info:
        load(path, env={})
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message and "[browser] pagez" in message
    assert "did you mean 'pages'" in message


def test_wrong_type_names_file_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, '[server]\nport = "eighty"\n')
    with pytest.raises(ConfigError, match=rf"{path}: \[server\] port: .*integer.*'eighty'"):
        load(path, env={})


def test_out_of_range_value_says_what_was_expected(tmp_path: Path) -> None:
    path = write(tmp_path, "[browser]\npages = 40\n")
    with pytest.raises(ConfigError, match=r"\[browser\] pages: .*less than or equal to 16"):
        load(path, env={})


def test_bad_file_path_is_a_one_line_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match=f"^{missing}: config file not found$"):
        load(missing, env={})


def test_invalid_toml_is_reported_with_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[server\nport = 1\n")
    with pytest.raises(ConfigError, match=f"{path}: not valid TOML"):
        load(path, env={})


def test_env_override_wins_over_the_file_and_is_shown_as_its_source(tmp_path: Path) -> None:
    path = write(tmp_path, "[browser]\npages = 3\n[supervisor]\nintensity = 7\n")
    loaded = load(path, env={"OVEN_BROWSER__PAGES": "5"})
    assert loaded.settings.browser.pages == 5
    assert loaded.settings.supervisor.intensity == 7
    assert loaded.source_of("browser.pages") == "env OVEN_BROWSER__PAGES"
    assert loaded.source_of("supervisor.intensity") == f"file {path}"
    shown = loaded.show()
    assert "pages = 5  # env OVEN_BROWSER__PAGES" in shown


def test_bad_env_override_names_the_variable() -> None:
    with pytest.raises(ConfigError, match=r"environment OVEN_BROWSER__PAGES: .*pages"):
        load(None, env={"OVEN_BROWSER__PAGES": "0"})


def test_oven_config_variable_selects_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[server]\nport = 9999\n")
    assert load(None, env={"OVEN_CONFIG": str(path)}).settings.server.port == 9999


def test_secrets_are_masked_when_shown(tmp_path: Path) -> None:
    path = write(tmp_path, '[server]\nadmin_token = "hunter2"\n')
    shown = load(path, env={}).show()
    assert "hunter2" not in shown and "admin_token = \"********\"" in shown


def test_reload_diff_separates_live_keys_from_restart_keys() -> None:
    old = Settings()
    new = Settings.model_validate({"browser": {"pages": 4}, "server": {"port": 9000}})
    live, restart = diff(old, new)
    assert live == ["browser.pages"]
    assert restart == ["server.port"]


def test_the_old_routes_settings_they_read_per_request_reload_live() -> None:
    old = Settings()
    new = Settings.model_validate({"compat": {
        "og": {"kidlisp_pieces": ["clock"]}, "grabs": {"skip_cache_min_interval_s": 5},
        "app_screenshots": {"force_interval_s": 5}, "bundles": {"concurrency": 1},
        "bakes": {"scale": 2}}})
    live, restart = diff(old, new)
    assert sorted(live) == ["compat.app_screenshots.force_interval_s",
                            "compat.bundles.concurrency", "compat.grabs.skip_cache_min_interval_s",
                            "compat.og.kidlisp_pieces"]
    assert restart == ["compat.bakes.scale"]


def test_the_production_example_is_a_valid_config() -> None:
    loaded = load(ROOT / "config" / "production.example.toml", env={})
    assert loaded.settings.storage.backend == "s3"
    assert loaded.settings.store.backend == "mongodb"
    shown = loaded.show()
    assert "oven:secret@" not in shown and "change-me" not in shown


def test_the_default_service_does_not_load_the_s3_or_mongodb_clients() -> None:
    # aioboto3/botocore (~35 MB) and pymongo (~26 MB) load only when their backend is chosen.
    import subprocess
    import sys

    code = ("import sys, oven._service, oven._grab_cli; "
            "print(sorted(m for m in ('aioboto3', 'botocore', 'pymongo') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("entry", ["http://allowed.example/pieces", "ftp://allowed.example",
                                   "allowed.example", "http://allowed.example?x=1"])
def test_an_allowed_origin_that_is_no_http_origin_stops_startup_naming_it(
        tmp_path: Path, entry: str) -> None:
    # Before, such an entry matched nothing and every URL from it was refused without a word.
    path = write(tmp_path, f'[pieces]\nallowed_origins = ["{entry}"]\n')
    with pytest.raises(ConfigError, match=r"\[pieces\] allowed_origins") as caught:
        load(path, env={})
    assert entry in str(caught.value)
