"""The page ceiling's plan: mountinfo, the budget's reserve, the browser's share, pages = "auto",
and the v2 layout written into a fake cgroup directory (production hosts run v2; ours run v1)."""

from __future__ import annotations

from pathlib import Path

from oven.config import Settings
from oven.memory import (
    BrowserCgroup,
    CgroupMemory,
    CgroupReader,
    MemorySettings,
    auto_pages,
    memory_budget,
    page_ceiling,
    parse_mountinfo,
    plan_ceilings,
)

MB = 1 << 20
FIXTURES = Path(__file__).parent / "fixtures"


def _limited(limit: int) -> CgroupMemory:
    return CgroupMemory(version="v1", path="/x", current=1, peak=None, limit=limit, high=None,
                        sources={"limit": "/x/memory.limit_in_bytes"})


def test_a_cgroup_limit_leaves_a_reserve_for_page_cache_and_slack() -> None:
    budget, source = memory_budget(MemorySettings(), _limited(1500 * MB))
    assert budget == 1500 * MB - 150 * MB  # 10 % of the limit
    assert "less a 150 MB reserve" in source and source.startswith("/x/memory.limit_in_bytes")
    small, _ = memory_budget(MemorySettings(), _limited(800 * MB))
    assert small == 800 * MB - 128 * MB  # at least reserve_min_bytes
    set_by_hand, _ = memory_budget(MemorySettings(budget_bytes=1 << 30), _limited(1500 * MB))
    assert set_by_hand == 1 << 30


def test_the_page_ceiling_splits_the_browsers_share_and_auto_pages_fit_the_budget() -> None:
    settings = MemorySettings()
    budget = 1350 * MB  # a 1.5 GB cgroup less its reserve
    # browser's share: 1350 - 320 (oven, driver, ffmpeg) = 1030 MB, less 160 MB Chromium base
    assert page_ceiling(settings, budget, 4) == (1030 - 160) * MB // 4
    assert page_ceiling(MemorySettings(page_ceiling_bytes=200 * MB), budget, 4) == 200 * MB
    assert auto_pages(settings, budget) == (1030 - 160) // 192
    assert auto_pages(settings, 200 * MB) == 1  # never below one page
    assert auto_pages(settings, 64 << 30) == 16  # nor above the pool's bound


def test_pages_auto_in_a_config_becomes_a_number_and_integers_still_work() -> None:
    auto = Settings.model_validate({"browser": {"pages": "auto"},
                                    "memory": {"budget_bytes": 1350 * MB}})
    assert auto.browser.pages == auto_pages(auto.memory, 1350 * MB) == 4
    assert Settings.model_validate({"browser": {"pages": 3}}).browser.pages == 3


def test_mountinfo_maps_a_containers_own_subtree_to_its_mount_point(tmp_path: Path) -> None:
    # A container sees only its own subtree: the mount's root is a prefix of our path.
    (tmp_path / "memory" / "job").mkdir(parents=True)
    (tmp_path / "memory" / "job" / "memory.usage_in_bytes").write_text("123\n")
    (tmp_path / "cgroup").write_text("5:memory:/docker/abc/job\n")
    (tmp_path / "mountinfo").write_text(
        "31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n"
        f"35 31 0:32 /docker/abc {tmp_path / 'memory'} rw,relatime - cgroup cgroup rw,memory\n"
        f"41 31 0:38 / {tmp_path / 'unified'} rw - cgroup2 cgroup2 rw\n")
    reader = CgroupReader.detect(proc_self_cgroup=tmp_path / "cgroup", root=tmp_path,
                                 mountinfo=tmp_path / "mountinfo")
    assert reader is not None
    assert reader.version == "v1" and reader.directory == tmp_path / "memory" / "job"
    mounts = parse_mountinfo((tmp_path / "mountinfo").read_text())
    assert [(m.fstype, m.root) for m in mounts] == [("cgroup", "/docker/abc"), ("cgroup2", "/")]


def test_mountinfo_finds_a_v2_cgroup_and_its_working_set_excludes_inactive_file(
    tmp_path: Path,
) -> None:
    own = tmp_path / "system.slice" / "oven.service"
    own.mkdir(parents=True)
    (own / "memory.current").write_text("500000000\n")
    (own / "memory.max").write_text("1572864000\n")
    (own / "memory.stat").write_text("anon 300000000\nfile 200000000\ninactive_file 150000000\n")
    (tmp_path / "cgroup").write_text("0::/system.slice/oven.service\n")
    (tmp_path / "mountinfo").write_text(
        f"30 24 0:26 / {tmp_path} rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n")
    reader = CgroupReader.detect(proc_self_cgroup=tmp_path / "cgroup", root=tmp_path,
                                 mountinfo=tmp_path / "mountinfo")
    assert reader is not None and reader.version == "v2"
    memory = reader.read()
    assert memory.working_set == 500000000 - 150000000


def test_v1_usage_less_inactive_file_is_the_working_set_and_failcnt_counts_limit_hits() -> None:
    reader = CgroupReader.detect()
    assert reader is not None
    memory = reader.read()
    if memory.version != "v1":
        return  # the v2 figure is checked on fixtures above
    assert memory.working_set is not None and 0 < memory.working_set <= memory.current
    assert "max" in memory.events and memory.sources["max"].endswith("memory.failcnt")


def _fake_v2(tmp_path: Path) -> CgroupReader:
    own = tmp_path / "oven.service"
    own.mkdir()
    (own / "cgroup.controllers").write_text("cpu memory pids\n")
    (own / "cgroup.subtree_control").write_text("\n")
    (own / "cgroup.procs").write_text("4242\n")
    (own / "memory.current").write_text("1\n")
    return CgroupReader("v2", own)


def test_v2_layout_moves_oven_to_a_leaf_then_limits_the_browser_and_each_renderer(
    tmp_path: Path,
) -> None:
    reader = _fake_v2(tmp_path)
    plan, cgroup = plan_ceilings(MemorySettings(), budget=1350 * MB, pages=4, reader=reader,
                                 owner_pid=4242)
    assert plan.mechanism == "cgroup-v2" and cgroup is not None
    own = reader.directory
    # A plain directory stands in for cgroupfs: each write is what the kernel would be told.
    assert (own / "oven" / "cgroup.procs").read_text() == "4242"
    assert (own / "cgroup.subtree_control").read_text() == "+memory"
    browser = own / "oven-browser-4242"
    assert (browser / "memory.max").read_text() == str(1030 * MB)
    assert (browser / "memory.swap.max").read_text() == "0"
    assert (browser / "cgroup.subtree_control").read_text() == "+memory"
    assert (browser / "main").is_dir()
    assert cgroup.adopt([101, 102]) == [101, 102]
    renderer = cgroup.confine(555)
    assert (renderer / "memory.max").read_text() == str(plan.page_ceiling)
    assert (renderer / "cgroup.procs").read_text() == "555"
    (renderer / "memory.events").write_text("low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\n")
    assert cgroup.oom_kills(renderer) == 1


def test_without_a_delegated_memory_controller_the_plan_falls_back_to_polling(
    tmp_path: Path,
) -> None:
    reader = _fake_v2(tmp_path)
    (reader.directory / "cgroup.controllers").write_text("cpu pids\n")
    plan, cgroup = plan_ceilings(MemorySettings(), budget=1350 * MB, pages=4, reader=reader)
    assert cgroup is None and plan.mechanism == "poll"
    assert "not delegated" in plan.reason
    plan, cgroup = plan_ceilings(MemorySettings(), budget=1350 * MB, pages=4, reader=None)
    assert plan.mechanism == "poll" and "no memory cgroup" in plan.reason
    plan, _ = plan_ceilings(MemorySettings(ceiling="off"), budget=1350 * MB, pages=4,
                            reader=None)
    assert plan.mechanism == "off"


def test_browser_cgroups_of_dead_ovens_are_swept(tmp_path: Path) -> None:
    reader = _fake_v2(tmp_path)
    stale = reader.directory / "oven-browser-999999999" / "main"
    stale.mkdir(parents=True)
    BrowserCgroup.create(reader, limit=512 * MB, ceiling=128 * MB, owner_pid=4242)
    assert not stale.parent.exists()
