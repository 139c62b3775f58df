"""LocalStorage: atomic files under one root, nothing outside it."""

from __future__ import annotations

import errno
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from oven.storage import (
    LocalStorage,
    StorageError,
    StorageSettings,
    StorageUnavailable,
    make_storage,
)


@pytest.fixture
async def local(tmp_path: Path) -> LocalStorage:
    storage = LocalStorage(tmp_path / "results")
    await storage.start()
    return storage


def leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.startswith(".oven-tmp-")]


async def test_put_then_read_back_the_same_bytes(local: LocalStorage, sample_file: Path) -> None:
    stored = await local.put("grabs/ab/cd.png", sample_file, "image/png")

    assert stored.key == "grabs/ab/cd.png"
    assert stored.size == sample_file.stat().st_size
    assert stored.url is None
    assert await local.url_for("grabs/ab/cd.png") is None
    path = local.local_path("grabs/ab/cd.png")
    assert path is not None and path.read_bytes() == sample_file.read_bytes()
    assert await local.exists("grabs/ab/cd.png")

    await local.delete("grabs/ab/cd.png")
    await local.delete("grabs/ab/cd.png")  # deleting twice is not an error
    assert not await local.exists("grabs/ab/cd.png")


async def test_overwrite_replaces_the_file_and_leaves_no_temp_files(
    local: LocalStorage, tmp_path: Path
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.write_bytes(b"first")
    second.write_bytes(b"second version")

    await local.put("x.gif", first, "image/gif")
    stored = await local.put("x.gif", second, "image/gif")

    assert stored.size == len(b"second version")
    assert (local.root / "x.gif").read_bytes() == b"second version"
    assert leftovers(local.root) == []


async def test_failed_write_keeps_the_previous_file_and_leaves_no_temp_file(
    local: LocalStorage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    old.write_bytes(b"old")
    new.write_bytes(b"new")
    await local.put("x.mp4", old, "video/mp4")

    # A fake, because the fault cannot be caused for real: EIO from fsync is a failing disk
    # reporting a lost write-back, and no test can make a healthy disk do that. The patch is
    # process-wide for this test only (monkeypatch undoes it); the real-filesystem form of a
    # failed write is the full-disk test below.
    def failing_fsync(fd: int) -> None:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(StorageUnavailable) as error:
        await local.put("x.mp4", new, "video/mp4")

    assert error.value.transient
    assert (local.root / "x.mp4").read_bytes() == b"old"
    assert leftovers(local.root) == []


@pytest.fixture
def tiny_filesystem(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs: a real filesystem that answers ENOSPC. Mounting needs root."""
    root = tmp_path / "tiny"
    root.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount(8) here to make a size-limited tmpfs")
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(root)],
                           capture_output=True, text=True)
    if mount.returncode != 0:
        pytest.skip(f"cannot mount a size-limited tmpfs here (needs root): {mount.stderr.strip()}")
    try:
        yield root
    finally:
        subprocess.run(["umount", "--lazy", str(root)], check=True)


async def test_a_write_onto_a_full_filesystem_keeps_the_previous_file_and_no_temp_file(
    tiny_filesystem: Path, tmp_path: Path
) -> None:
    local = LocalStorage(tiny_filesystem / "results")
    await local.start()
    old, big = tmp_path / "old", tmp_path / "big"
    old.write_bytes(b"old")
    big.write_bytes(os.urandom(256 * 1024))  # four times what the filesystem holds
    await local.put("x.mp4", old, "video/mp4")

    with pytest.raises(StorageUnavailable, match="No space left on device") as error:
        await local.put("x.mp4", big, "video/mp4")

    assert error.value.transient
    assert (local.root / "x.mp4").read_bytes() == b"old"
    assert leftovers(local.root) == []


async def test_missing_source_file_is_a_permanent_error(
    local: LocalStorage, tmp_path: Path
) -> None:
    with pytest.raises(StorageError) as error:
        await local.put("x.png", tmp_path / "nope.png", "image/png")
    assert not error.value.transient
    assert "does not exist" in str(error.value)


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("../x", "has an empty, '.' or '..' segment"),
        ("a/../../x", "has an empty, '.' or '..' segment"),
        ("/abs", "must be relative and use '/' separators"),
        ("a\x00b", "contains NUL or control characters"),
        ("", "must be a non-empty string"),
        ("a//b", "has an empty, '.' or '..' segment"),
        ("./a", "has an empty, '.' or '..' segment"),
    ],
)
async def test_unsafe_keys_are_refused(
    local: LocalStorage, sample_file: Path, key: str, reason: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)):
        await local.put(key, sample_file, "image/png")
    with pytest.raises(ValueError, match=re.escape(reason)):
        local.local_path(key)
    assert not (local.root.parent / "x").exists()


async def test_symlink_out_of_the_root_is_not_followed(
    local: LocalStorage, tmp_path: Path, sample_file: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (local.root / "link").symlink_to(outside)

    with pytest.raises(ValueError, match="outside the storage root"):
        await local.put("link/x.png", sample_file, "image/png")
    assert list(outside.iterdir()) == []


async def test_check_passes_on_a_writable_dir_and_names_the_dir_when_not(
    local: LocalStorage,
) -> None:
    await local.check()
    assert leftovers(local.root) == []

    local.root.rmdir()
    local.root.write_bytes(b"a file where the directory should be")
    with pytest.raises(StorageUnavailable, match=re.escape(str(local.root))):
        await local.check()


async def test_make_storage_puts_a_relative_local_dir_under_the_data_dir(tmp_path: Path) -> None:
    storage = make_storage(StorageSettings(local_dir=Path("out")), tmp_path)
    assert isinstance(storage, LocalStorage)
    await storage.start()
    assert storage.root == (tmp_path / "out").resolve()
    assert (tmp_path / "out").is_dir()
    await storage.close()


async def test_calls_before_start_are_loud_errors(tmp_path: Path, sample_file: Path) -> None:
    storage = LocalStorage(tmp_path / "r")
    with pytest.raises(RuntimeError, match="before start"):
        await storage.put("x.png", sample_file, "image/png")


async def test_temp_files_of_writes_a_kill_cut_short_are_removed_at_the_next_start(
        tmp_path: Path) -> None:
    # A `kill -9` during a put left a .oven-tmp- file beside the results for good (one run of
    # tests/reliability/test_restart.py found 51 files for 50 jobs).
    root = tmp_path / "results"
    (root / "grabs" / "ab").mkdir(parents=True)
    writer = subprocess.Popen(["true"])
    writer.wait()  # a writer that has exited and been reaped: its pid names no process
    cut_short = root / "grabs" / "ab" / f".oven-tmp-{writer.pid}-x1y2z3"
    writing = root / "grabs" / "ab" / f".oven-tmp-{os.getpid()}-a1b2c3"  # a live writer's
    unnamed_old = root / "grabs" / ".oven-tmp-oldname"
    unnamed_new = root / ".oven-tmp-newname"
    for path in (cut_short, writing, unnamed_old, unnamed_new):
        path.write_bytes(b"partial")
    os.utime(unnamed_old, (0, 2 * 3600))

    storage = LocalStorage(root)
    await storage.start()
    try:
        assert storage._sweeper is not None
        storage._sweeper.join(timeout=30)
        assert sorted(leftovers(root)) == sorted([writing, unnamed_new])
        assert storage.swept_temps == 2
    finally:
        await storage.close()
