"""The archive intake on its own: good tapes unpack, every kind of hostile archive is refused."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from oven.bakes import BakeRefused, BakeSettings, Tape, plan_bake, unpack

from .bake_kit import (
    frames,
    header_bomb,
    many_directories,
    pax_chain,
    png_frame,
    tar_bytes,
    timing,
    wav_bytes,
    zip_bytes,
    zip_of_many_entries,
    zip_with_symlink,
)

LIMITS = BakeSettings(max_archive_bytes=4 << 20, max_total_bytes=2 << 20, max_frames=20,
                      max_frame_pixels=320 * 240, max_ratio=50, ratio_floor_bytes=64 * 1024,
                      max_frame_bytes=1 << 20)


def unpack_bytes(tmp_path: Path, data: bytes, settings: BakeSettings = LIMITS) -> Tape:
    tmp_path.mkdir(parents=True, exist_ok=True)
    archive = tmp_path / "archive.bin"
    archive.write_bytes(data)
    return unpack(archive, tmp_path / "tape", settings)


def refused(tmp_path: Path, data: bytes, settings: BakeSettings = LIMITS) -> BakeRefused:
    with pytest.raises(BakeRefused) as caught:
        unpack_bytes(tmp_path, data, settings)
    return caught.value


def test_a_zip_of_frames_soundtrack_and_timing_unpacks_with_its_facts(tmp_path: Path) -> None:
    members = {**frames(6), "soundtrack.wav": wav_bytes(0.5), **timing([100.0] * 6)}
    tape = unpack_bytes(tmp_path, zip_bytes(members, compression=zipfile.ZIP_DEFLATED))
    assert (tape.frames, tape.first_index, tape.width, tape.height) == (6, 0, 64, 48)
    assert tape.audio_seconds == pytest.approx(0.5)
    assert tape.durations_ms == [100.0] * 6
    assert sorted(p.name for p in tape.dir.iterdir()) == sorted(members)


def test_a_tar_and_a_gzipped_tar_in_one_folder_unpack_the_same(tmp_path: Path) -> None:
    members = {f"tape/{name}": data for name, data in frames(3).items()}
    plain = unpack_bytes(tmp_path / "a", tar_bytes(members))
    gzipped = unpack_bytes(tmp_path / "b", tar_bytes(members, mode="w:gz"))
    assert plain.frames == gzipped.frames == 3


def test_fps_comes_from_the_soundtrack_then_timing_then_the_default(tmp_path: Path) -> None:
    with_sound = unpack_bytes(tmp_path / "a", zip_bytes(
        {**frames(10), "soundtrack.wav": wav_bytes(2.0), **timing([10.0] * 10)}))
    with_timing = unpack_bytes(tmp_path / "b", zip_bytes({**frames(10), **timing([250.0] * 10)}))
    bare = unpack_bytes(tmp_path / "c", zip_bytes(frames(10)))
    assert plan_bake(with_sound, 1, LIMITS).fps == pytest.approx(5.0)
    assert plan_bake(with_timing, 1, LIMITS).fps == pytest.approx(4.0)
    assert plan_bake(bare, 1, LIMITS).fps_source == "default"


@pytest.mark.parametrize("name", ["../x.png", "../frame-00000.png", "a/../../frame-00000.png"])
def test_a_zip_slip_path_is_refused(tmp_path: Path, name: str) -> None:
    error = refused(tmp_path, zip_bytes({**frames(2), name: png_frame(9)}))
    assert error.code == "unsafe_path" and ".." in error.message
    assert not (tmp_path / "x.png").exists()


def test_an_absolute_member_path_is_refused(tmp_path: Path) -> None:
    error = refused(tmp_path, tar_bytes({**frames(1), "/tmp/frame-00001.png": png_frame(1)}))
    assert error.code == "unsafe_path" and "absolute" in error.message


def test_a_symlink_member_in_a_tar_is_refused(tmp_path: Path) -> None:
    error = refused(tmp_path, tar_bytes(frames(1), symlinks={"frame-00001.png": "/etc/passwd"}))
    assert error.code == "unsafe_path" and "/etc/passwd" in error.message


def test_a_symlink_member_in_a_zip_is_refused(tmp_path: Path) -> None:
    error = refused(tmp_path, zip_with_symlink(frames(1), "frame-00001.png", "/etc/passwd"))
    assert error.code == "unsafe_path" and "symbolic link" in error.message


def test_a_zip_bomb_by_ratio_is_refused_before_inflating(tmp_path: Path) -> None:
    bomb = zip_bytes({**frames(1), "soundtrack.wav": b"\0" * 900_000},
                     compression=zipfile.ZIP_DEFLATED)
    error = refused(tmp_path, bomb)
    assert error.code == "zip_bomb" and "max_ratio" in error.message
    assert not (tmp_path / "tape" / "soundtrack.wav").exists()


def test_members_over_the_total_unpacked_size_are_refused(tmp_path: Path) -> None:
    big = {f"frame-{i:05d}.png": png_frame(i) + b"\0" * 600_000 for i in range(4)}
    error = refused(tmp_path, zip_bytes(big))
    assert error.status == 413 and "max_total_bytes" in error.message


def test_a_tar_bomb_is_stopped_while_it_streams(tmp_path: Path) -> None:
    padded = {f"frame-{i:05d}.png": png_frame(i) + b"\0" * 500_000 for i in range(4)}
    error = refused(tmp_path, tar_bytes(padded, mode="w:gz"))
    assert error.code in ("zip_bomb", "too_large")


def test_a_member_named_png_that_is_not_a_png_is_refused(tmp_path: Path) -> None:
    error = refused(tmp_path, zip_bytes({**frames(1), "frame-00001.png": b"GIF89a" + b"x" * 40}))
    assert error.code == "not_png" and "frame-00001.png" in error.message


def test_a_truncated_png_is_refused_by_name(tmp_path: Path) -> None:
    cut = png_frame(1)[:60]
    error = refused(tmp_path, zip_bytes({**frames(1), "frame-00001.png": cut}))
    assert error.code == "not_png" and "frame-00001.png" in error.message


def test_a_member_that_is_not_a_frame_soundtrack_or_timing_is_refused(tmp_path: Path) -> None:
    error = refused(tmp_path, zip_bytes({**frames(1), "run.sh": b"#!/bin/sh\n"}))
    assert error.code == "bad_member" and "run.sh" in error.message


def test_an_oversize_frame_is_refused_from_its_header(tmp_path: Path) -> None:
    error = refused(tmp_path, zip_bytes({"frame-00000.png": png_frame(0, (400, 300))}))
    assert error.code == "frame_too_large" and "400x300" in error.message


def test_too_many_frames_are_refused(tmp_path: Path) -> None:
    error = refused(tmp_path, zip_bytes(frames(21)))
    assert error.code == "too_many_frames" and "max_frames" in error.message


def test_something_that_is_not_an_archive_is_refused(tmp_path: Path) -> None:
    error = refused(tmp_path, png_frame(0))
    assert error.code == "not_an_archive"


def test_frames_with_a_gap_or_mixed_sizes_are_refused(tmp_path: Path) -> None:
    gap = refused(tmp_path / "a", zip_bytes({"frame-00000.png": png_frame(0),
                                             "frame-00002.png": png_frame(2)}))
    mixed = refused(tmp_path / "b", zip_bytes({"frame-00000.png": png_frame(0),
                                               "frame-00001.png": png_frame(1, (32, 32))}))
    assert gap.code == "frame_gap" and "frame-00001.png" in gap.message
    assert mixed.code == "frame_size_mismatch"


def test_timing_that_does_not_match_the_frames_is_refused(tmp_path: Path) -> None:
    error = refused(tmp_path, zip_bytes({**frames(3), **timing([40.0, 40.0])}))
    assert error.code == "bad_timing" and "2 durations for 3 frames" in error.message


def test_a_soundtrack_that_is_not_a_wav_is_refused(tmp_path: Path) -> None:
    error = refused(tmp_path, zip_bytes({**frames(2), "soundtrack.wav": b"RIFF1234nope"}))
    assert error.code == "bad_soundtrack"


def test_an_upscale_past_the_output_limit_is_refused(tmp_path: Path) -> None:
    tape = unpack_bytes(tmp_path, zip_bytes(frames(2, (300, 200))))
    with pytest.raises(BakeRefused) as caught:
        plan_bake(tape, 8, LIMITS.model_copy(update={"max_output_pixels": 1920 * 1080}))
    assert "max_output_pixels" in caught.value.message


def test_an_empty_zip_is_refused_as_holding_no_frames(tmp_path: Path) -> None:
    out = io.BytesIO()
    zipfile.ZipFile(out, "w").close()
    assert refused(tmp_path, out.getvalue()).code == "no_frames"


@pytest.mark.parametrize(("kind", "compression"), [
    (tarfile.GNUTYPE_LONGNAME, "xz"), (tarfile.GNUTYPE_LONGLINK, "gz"),
    (tarfile.XHDTYPE, "bz2"), (tarfile.XGLTYPE, "gz"),
])
def test_a_tar_header_claiming_megabytes_is_refused_before_it_is_read(
        tmp_path: Path, kind: bytes, compression: str) -> None:
    error = refused(tmp_path, header_bomb(kind, 8 << 20, compression))
    assert (error.status, error.code) == (413, "header_too_large"), error.message
    assert "tar headers" in error.message


def test_a_long_name_that_fits_the_header_bound_is_refused_without_echoing_it(
        tmp_path: Path) -> None:
    error = refused(tmp_path, header_bomb(tarfile.GNUTYPE_LONGNAME, 40_000, "gz"))
    assert error.code == "bad_member", error.message
    assert len(error.message) < 400 and "40000 characters" in error.message


def test_a_chain_of_pax_headers_is_refused_not_a_recursion_error(tmp_path: Path) -> None:
    error = refused(tmp_path, pax_chain(3000))
    assert (error.status, error.code) == (413, "header_too_large"), error.message


def test_folder_entries_count_against_the_entry_limit(tmp_path: Path) -> None:
    error = refused(tmp_path, many_directories(10_000))
    assert error.code == "too_many_members" and "folders count too" in error.message


def test_a_zip_listing_more_entries_than_allowed_is_refused_from_its_end_record(
        tmp_path: Path) -> None:
    error = refused(tmp_path, zip_of_many_entries(5_000))
    assert error.code == "too_many_members" and "5001 entries" in error.message


def test_a_sparse_tar_member_is_refused(tmp_path: Path) -> None:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as tf:
        info = tarfile.TarInfo("frame-00000.png")
        info.type = tarfile.GNUTYPE_SPARSE
        tf.addfile(info)
    error = refused(tmp_path, out.getvalue())
    assert error.code == "unsafe_path" and "regular files" in error.message


def test_checking_an_archive_ends_itself_at_the_check_deadline(tmp_path: Path) -> None:
    slow = LIMITS.model_copy(update={"check_timeout_s": 0.000_001})
    error = refused(tmp_path, tar_bytes(frames(3)), slow)
    assert error.code == "check_timeout" and "bakes.check_timeout_s" in error.message


def test_timing_json_nested_too_deeply_is_bad_timing_not_a_crash(tmp_path: Path) -> None:
    deep = {"timing.json": b"[" * 100_000 + b"]" * 100_000}
    error = refused(tmp_path, zip_bytes({**frames(2), **deep}))
    assert error.code == "bad_timing" and "nested too deeply" in error.message
