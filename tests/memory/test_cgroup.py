"""cgroup figures: v2 parsed from fixture files (production), v1 from fixtures and this machine."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from oven.memory import CgroupMemory, CgroupReader, MemorySettings, resolve_budget
from oven.memory._cgroup import ChildCgroup

FIXTURES = Path(__file__).parent / "fixtures"


def _proc_cgroup(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cgroup"
    path.write_text(text)
    return path


def test_v2_files_are_parsed_and_each_figure_names_its_file(tmp_path: Path) -> None:
    reader = CgroupReader.detect(
        proc_self_cgroup=_proc_cgroup(tmp_path, "0::/oven.slice\n"), root=FIXTURES / "v2"
    )
    assert reader is not None and reader.version == "v2"
    memory = reader.read()
    assert memory.version == "v2"
    assert memory.path == str(FIXTURES / "v2" / "oven.slice")
    assert memory.current == 734003200
    assert memory.peak == 1610612736
    assert memory.limit == 2147483648
    assert memory.high is None  # "max"
    assert memory.events == {"low": 0, "high": 12, "max": 3, "oom": 2, "oom_kill": 1,
                             "oom_group_kill": 0}
    assert memory.pressure == {
        "some_avg10": 1.25, "some_avg60": 0.5, "some_avg300": 0.1, "some_total": 123456.0,
        "full_avg10": 0.75, "full_avg60": 0.25, "full_avg300": 0.05, "full_total": 65432.0,
    }
    assert memory.sources["peak"].endswith("oven.slice/memory.peak")
    assert memory.sources["limit"].endswith("oven.slice/memory.max")
    assert set(memory.sources) == {"current", "peak", "limit", "high", "events", "pressure"}


def test_v2_max_limit_reads_as_unlimited_and_missing_files_as_none(tmp_path: Path) -> None:
    reader = CgroupReader.detect(
        proc_self_cgroup=_proc_cgroup(tmp_path, "0::/unlimited\n"), root=FIXTURES / "v2"
    )
    assert reader is not None
    memory = reader.read()
    assert memory.limit is None
    assert memory.high == 805306368
    assert memory.peak is None  # kernels before 5.19 have no memory.peak
    assert memory.pressure == {}
    assert "peak" not in memory.sources


def test_v1_layout_is_detected_and_its_huge_limit_means_unlimited(tmp_path: Path) -> None:
    text = ("12:pids:/docker/abc\n5:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n"
            "1:name=systemd:/docker/abc\n0::/docker/abc\n")
    reader = CgroupReader.detect(proc_self_cgroup=_proc_cgroup(tmp_path, text),
                                 root=FIXTURES / "v1")
    assert reader is not None and reader.version == "v1"
    memory = reader.read()
    assert (memory.current, memory.peak, memory.limit, memory.high) == (
        524288000, 943718400, None, None)
    assert memory.events == {"oom_kill": 4}
    assert memory.pressure == {}
    assert memory.sources["current"].endswith("memory.usage_in_bytes")
    assert memory.sources["peak"].endswith("memory.max_usage_in_bytes")
    assert memory.sources["events"].endswith("memory.oom_control")


def test_v1_path_outside_the_mount_falls_back_to_the_namespace_root(tmp_path: Path) -> None:
    reader = CgroupReader.detect(
        proc_self_cgroup=_proc_cgroup(tmp_path, "4:memory:/elsewhere/xyz\n"),
        root=FIXTURES / "v1-limited",
    )
    assert reader is not None
    memory = reader.read()
    assert memory.limit == 1073741824
    assert memory.peak is None and memory.events == {}


def test_no_usable_hierarchy_detects_nothing(tmp_path: Path) -> None:
    assert CgroupReader.detect(proc_self_cgroup=_proc_cgroup(tmp_path, "0::/x\n"),
                               root=tmp_path) is None
    assert CgroupReader.detect(proc_self_cgroup=tmp_path / "missing", root=tmp_path) is None


def test_this_machine_is_detected_as_v1_with_a_current_figure() -> None:
    reader = CgroupReader.detect()
    assert reader is not None
    memory = reader.read()
    if memory.version == "v2":
        pytest.skip("this host runs cgroup v2; the v1 expectation is for our dev/CI machines")
    assert memory.version == "v1"
    assert memory.current is not None and memory.current > 0
    assert memory.sources["current"].endswith("memory.usage_in_bytes")


def test_budget_comes_from_the_setting_then_the_cgroup_limit_then_memtotal(
    tmp_path: Path,
) -> None:
    limited = CgroupReader("v2", FIXTURES / "v2" / "oven.slice").read()
    unlimited = CgroupReader("v2", FIXTURES / "v2" / "unlimited").read()
    assert resolve_budget(1 << 30, 0.8, limited) == (1 << 30, "memory.budget_bytes")
    assert resolve_budget(None, 0.8, limited) == (2147483648, limited.sources["limit"])
    # memory.max unset but memory.high set: high is where the kernel starts throttling
    assert resolve_budget(None, 0.5, unlimited) == (805306368, unlimited.sources["high"])
    neither = CgroupMemory(version="v2", path="/x", current=1, peak=None, limit=None, high=None,
                           events={}, pressure={}, sources={})
    budget, source = resolve_budget(None, 0.5, neither)
    assert "MemTotal" in source and budget > 0


def test_watermarks_must_be_ordered_and_unknown_keys_are_refused() -> None:
    with pytest.raises(ValidationError, match="soft_watermark"):
        MemorySettings(soft_watermark=0.95, hard_watermark=0.9)
    with pytest.raises(ValidationError):
        MemorySettings.model_validate({"pss_per_tik": 3})
    with pytest.raises(ValidationError):
        MemorySettings.model_validate({"component_rules": [{"component": "gpu", "pattern": "x"}]})
    with pytest.raises(ValidationError, match="regular expression"):
        MemorySettings.model_validate(
            {"component_rules": [{"component": "other", "pattern": "("}]})


def test_no_dedicated_cgroup_where_the_host_cannot_delegate_memory(tmp_path: Path) -> None:
    # v1 (this machine): never; a v2 directory whose children get no memory files: refused
    # and the directory it tried is removed again.
    assert ChildCgroup.create("oven-mem-test", CgroupReader("v1", tmp_path)) is None
    assert ChildCgroup.create("oven-mem-test", CgroupReader("v2", tmp_path)) is None
    assert not (tmp_path / "oven-mem-test").exists()


def test_the_budget_is_the_lower_of_memory_high_and_memory_max() -> None:
    from oven.memory import CgroupMemory, resolve_budget

    cgroup = CgroupMemory(version="v2", path="/x", current=1, peak=1, limit=1800 << 20,
                          high=1600 << 20, events={}, pressure={},
                          sources={"limit": "/x/memory.max", "high": "/x/memory.high"})
    assert resolve_budget(None, 0.8, cgroup) == (1600 << 20, "/x/memory.high")
    assert resolve_budget(512 << 20, 0.8, cgroup) == (512 << 20, "memory.budget_bytes")
