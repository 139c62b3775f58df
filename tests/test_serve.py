"""`oven serve` as a user runs it: a real child process, real signals, real HTTP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.oven_process import OvenProcess, free_port, write_config
from tests.waiting import wait_until

ADMIN = "test-admin-token"


@pytest.fixture
def oven(tmp_path: Path) -> Iterator[OvenProcess]:
    process = OvenProcess(tmp_path, config={
        "server": {"admin_token": ADMIN, "fault_injection": True},
        "browser": {"pages": 1},
    })
    yield process
    if process.proc is not None and process.proc.poll() is None:
        process.stop()


def metric(text: str, name: str, labels: str = "") -> float | None:
    prefix = f"{name}{{{labels}}}" if labels else name
    for line in text.splitlines():
        if line.startswith(prefix + " "):
            return float(line.split()[-1])
    return None


# What an orderly shutdown must never print: each is a task or callback dying unobserved.
SHUTDOWN_NOISE = ("Event loop is closed", "Task was destroyed but it is pending", "Traceback")


def test_sigterm_stops_everything_and_leaves_no_child_process(oven: OvenProcess) -> None:
    oven.start()
    body = {"piece": "anim", "format": "webp", "frames": 4, "fps": 20, "width": 320,
            "height": 180}
    job = httpx.post(f"{oven.url}/grabs", json=body, timeout=10).json()
    wait_until("the grab to complete",
               lambda: httpx.get(f"{oven.url}/grabs/{job['id']}").json()["state"] == "complete",
               timeout=30)
    # More grabs, still capturing and encoding when SIGTERM lands: their replies cross actors
    # that are stopping one after the other.
    busy = [httpx.post(f"{oven.url}/grabs", timeout=10, json={
        **body, "format": "mp4", "frames": 40, "width": 320 + 16 * i}).json()["id"]
        for i in range(3)]
    # Polled often: an encode of 40 small frames is a fraction of a second, and a poll of the
    # three grabs at 0.1 s intervals once missed all three (fresh-clone run on e0afff6).
    wait_until("a grab to reach its encode",
               lambda: any(httpx.get(f"{oven.url}/grabs/{b}").json()["stage"] == "encode"
                           for b in busy), timeout=30, interval=0.01)
    oven.remember_children()
    assert any("chromium" in " ".join(_cmd(p)) for p in oven.descendants)
    assert oven.stop() == 0  # stop() also asserts every descendant is gone
    log = oven.log
    assert not [noise for noise in SHUTDOWN_NOISE if noise in log], log[-4000:]


def _cmd(pid: int) -> list[str]:
    import psutil

    try:
        return psutil.Process(pid).cmdline()
    except psutil.NoSuchProcess:
        return []


def test_exceeding_restart_intensity_exits_3_and_leaves_nothing_running(tmp_path: Path) -> None:
    oven = OvenProcess(tmp_path, config={
        "server": {"admin_token": ADMIN, "fault_injection": True},
        "supervisor": {"intensity": 2, "period_s": 60, "backoff_initial_s": 0.05,
                       "backoff_max_s": 0.1},
        "browser": {"pages": 1},
    }).start()
    headers = {"Authorization": f"Bearer {ADMIN}"}

    def restarts() -> int:
        actors = {a["name"]: a for a in httpx.get(f"{oven.url}/status").json()["actors"]}
        encoder = actors["encoder"]
        return int(encoder["restarts"]) if encoder["state"] == "running" else -1

    for crash in range(1, 3):  # within the budget: each crash is answered and restarted
        r = httpx.post(f"{oven.url}/admin/faults/encoder/crash", headers=headers, timeout=5)
        assert r.status_code == 200, r.text
        # The next crash must hit the restarted actor, not the one still backing off.
        wait_until(f"restart {crash} of the encoder", lambda n=crash: restarts() == n,
                   timeout=30)
    r = httpx.post(f"{oven.url}/admin/faults/encoder/crash", headers=headers, timeout=5)
    assert r.status_code == 200, r.text
    code = oven.wait(timeout=60)
    assert code == 3, code  # README: "the process exits 3, so systemd can restart it"
    assert "restart budget exceeded" in oven.log
    oven.assert_no_leftovers()


def test_a_crashed_actor_is_restarted_and_counted_in_metrics_that_promtool_accepts(
    oven: OvenProcess,
) -> None:
    oven.start()
    headers = {"Authorization": f"Bearer {ADMIN}"}
    r = httpx.post(f"{oven.url}/admin/faults/uploader/crash", headers=headers, timeout=5)
    assert r.status_code == 200

    def restarted() -> bool:
        actors = {a["name"]: a for a in httpx.get(f"{oven.url}/status").json()["actors"]}
        return actors["uploader"]["restarts"] == 1 and actors["uploader"]["state"] == "running"

    wait_until("the uploader to be restarted", restarted, timeout=30)
    text = httpx.get(f"{oven.url}/metrics").text
    assert metric(text, "oven_actor_restarts_total", 'actor="uploader",reason="crash"') == 1
    assert metric(text, "oven_mailbox_capacity", 'actor="grab_queue"') == 1000
    assert metric(text, "oven_mailbox_depth", 'actor="store"') is not None
    assert metric(text, "oven_actor_up", 'actor="uploader"') == 1
    lint = subprocess.run(["promtool", "check", "metrics"], input=text, text=True,
                          capture_output=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_sighup_reload_changes_a_live_tunable(oven: OvenProcess) -> None:
    oven.start()
    assert metric(httpx.get(f"{oven.url}/metrics").text, "oven_pool_size") == 1
    config = oven.workdir / "oven.toml"
    text = config.read_text().replace("pages = 1", "pages = 2")
    config.write_text(text)
    oven.signal(signal.SIGHUP)
    wait_until("the pool to grow to 2 pages",
               lambda: metric(httpx.get(f"{oven.url}/metrics").text, "oven_pool_size") == 2,
               timeout=30)
    assert "config reloaded" in oven.log


def test_admin_reload_needs_the_token_and_reports_what_changed(oven: OvenProcess) -> None:
    oven.start()
    assert httpx.post(f"{oven.url}/admin/reload").status_code == 401
    wrong = httpx.post(f"{oven.url}/admin/reload", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 403 and wrong.json()["error"]["message"] == "wrong token"
    config = oven.workdir / "oven.toml"
    config.write_text(config.read_text().replace("[browser]", "[queue]\nmax_queued = 7\n\n"
                                                 "[browser]"))
    r = httpx.post(f"{oven.url}/admin/reload", headers={"Authorization": f"Bearer {ADMIN}"})
    assert r.status_code == 200
    assert r.json() == {"applied": ["queue.max_queued"], "restart_required": []}
    config.write_text(config.read_text() + "\n[bogus]\nx = 1\n")
    bad = httpx.post(f"{oven.url}/admin/reload", headers={"Authorization": f"Bearer {ADMIN}"})
    assert bad.status_code == 422 and "bogus" in bad.json()["error"]["message"]


def test_serve_with_a_bad_config_exits_with_a_one_line_error(tmp_path: Path) -> None:
    config = write_config(tmp_path / "bad.toml", {"browser": {"pagez": 2}})
    out = subprocess.run([sys.executable, "-m", "oven", "serve", "--config", str(config)],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0
    assert str(config) in out.stderr and "did you mean 'pages'" in out.stderr


def test_health_ready_status_and_openapi_answer_on_defaults(oven: OvenProcess) -> None:
    oven.start()
    assert httpx.get(f"{oven.url}/health").json() == {"status": "ok"}
    assert httpx.get(f"{oven.url}/ready").json() == {"ready": True, "reasons": []}
    status = httpx.get(f"{oven.url}/status").json()
    names = [a["name"] for a in status["actors"]]
    assert names == ["store", "uploader", "encoder", "browser", "webhooks", "bakes",
                     "grab_queue", "memory"]
    assert all(a["state"] == "running" for a in status["actors"])
    spec = httpx.get(f"{oven.url}/openapi.json").json()
    assert "/grabs" in spec["paths"] and "post" in spec["paths"]["/grabs"]
    missing = httpx.get(f"{oven.url}/no/such/route")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def _serve_with_flags(oven: OvenProcess, *flags: str) -> OvenProcess:
    """OvenProcess.start, but with command-line flags after `serve`."""
    config = write_config(oven.workdir / "oven.toml", oven.config)
    env = {**os.environ}
    env.pop("OVEN_CONFIG", None)
    out = open(oven.workdir / "serve.log", "ab")  # noqa: SIM115 - closed with the process
    oven.proc = subprocess.Popen(
        [sys.executable, "-m", "oven", "serve", "--config", str(config), *flags],
        stdout=out, stderr=subprocess.STDOUT, env=env, cwd=oven.workdir)

    def answers() -> bool:
        assert oven.proc is not None and oven.proc.poll() is None, oven.log
        try:
            return httpx.get(f"{oven.url}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until("oven serve to answer on its --port", answers, timeout=90)
    oven.remember_children()
    return oven


def _instance_id(oven: OvenProcess) -> str:
    instance: str = httpx.get(f"{oven.url}/status", timeout=10).json()["sections"][
        "instance"]["id"]
    return instance


def test_a_reload_keeps_the_host_and_port_given_on_the_command_line(tmp_path: Path) -> None:
    # The file names another address; the command line wins, before and after every reload.
    server = {"admin_token": ADMIN, "host": "localhost", "port": free_port(),
              "data_dir": str(tmp_path / "data")}
    oven = OvenProcess(tmp_path, config={"server": server, "browser": {"pages": 1}},
                       port=free_port())
    try:
        _serve_with_flags(oven, "--host", "127.0.0.1", "--port", str(oven.port))
        instance = _instance_id(oven)
        assert instance.endswith(f":{oven.port}")
        admin = {"Authorization": f"Bearer {ADMIN}"}
        reloaded = httpx.post(f"{oven.url}/admin/reload", headers=admin, timeout=30)
        assert reloaded.json() == {"applied": [], "restart_required": []}
        assert _instance_id(oven) == instance

        oven.signal(signal.SIGHUP)
        wait_until("the SIGHUP reload", lambda: oven.log.count("config reloaded") == 2,
                   timeout=30)
        assert oven.log.strip().splitlines()[-1].endswith("config reloaded: live -; needs "
                                                           "restart -")
        assert _instance_id(oven) == instance

        # A changed file: its live keys apply; its address still yields to the command line.
        server["port"] = free_port()
        write_config(oven.workdir / "oven.toml", {"server": server, "browser": {"pages": 2}})
        reloaded = httpx.post(f"{oven.url}/admin/reload", headers=admin, timeout=30)
        assert reloaded.json() == {"applied": ["browser.pages"], "restart_required": []}
        assert _instance_id(oven) == instance
        assert httpx.get(f"{oven.url}/health", timeout=10).status_code == 200
    finally:
        assert oven.stop() == 0


@pytest.mark.parametrize("flags", [("--port", "70000"), ("--port", "-1")])
def test_a_bad_address_on_the_command_line_exits_with_a_one_line_error(
        tmp_path: Path, flags: tuple[str, ...]) -> None:
    config = write_config(tmp_path / "oven.toml", {"server": {"data_dir": str(tmp_path)}})
    out = subprocess.run([sys.executable, "-m", "oven", "serve", "--config", str(config),
                          *flags], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2, out.stderr[-2000:]
    assert out.stderr.strip().count("\n") == 0
    assert "command line" in out.stderr and "port" in out.stderr
