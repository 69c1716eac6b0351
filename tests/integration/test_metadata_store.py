from __future__ import annotations

import sqlite3
from pathlib import Path

from msearch.store.metadata import MetadataStore
from msearch.store.migrations import SCHEMA_VERSION
from msearch.store.records import FileRecord, FileStatus, JobRecord, Passage, SceneRecord


async def _open(tmp_path: Path) -> MetadataStore:
    store = MetadataStore(tmp_path / "m.db")
    await store.open()
    return store


async def test_schema_is_versioned_and_wal(tmp_path: Path) -> None:
    store = await _open(tmp_path)
    await store.close()
    raw = sqlite3.connect(tmp_path / "m.db")
    assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    raw.close()
    reopened = await _open(tmp_path)  # migrating again is a no-op
    await reopened.close()


async def test_files_round_trip_with_scenes(tmp_path: Path) -> None:
    store = await _open(tmp_path)
    record = FileRecord(id="v1", path="/m/clip.mp4", folder="/m", media_type="video")
    await store.save_file(record)
    await store.mark_indexed(record, [SceneRecord(0, 0.0, 2.0, 1.0), SceneRecord(1, 2.0, 5.0, 3.5)])
    loaded = await store.get_file("v1")
    assert loaded is not None and loaded.status == FileStatus.INDEXED
    assert [s.as_dict() for s in loaded.scenes] == [
        {"index": 0, "start": 0.0, "end": 2.0, "keyframe": 1.0},
        {"index": 1, "start": 2.0, "end": 5.0, "keyframe": 3.5},
    ]
    await store.mark_indexed(record, [SceneRecord(0, 0.0, 5.0, 2.5)])
    assert len((await store.get_file("v1")).scenes) == 1  # type: ignore[union-attr]
    await store.close()


async def test_listing_filters_and_pages(tmp_path: Path) -> None:
    store = await _open(tmp_path)
    folders = ["/lib/a", "/lib/a/b", "/lib/a_b", "/lib/c"]
    for i, folder in enumerate(folders):
        await store.save_file(
            FileRecord(
                id=f"f{i}",
                path=f"{folder}/{i}.jpg",
                folder=folder,
                media_type="image",
                status=FileStatus.INDEXED,
            )
        )
    records, total = await store.list_files(folder="/lib/a")
    # "/lib/a_b" must not match "/lib/a" (LIKE wildcards are escaped)
    assert total == 2 and {r.id for r in records} == {"f0", "f1"}
    page, total = await store.list_files(limit=2, offset=2)
    assert total == 4 and [r.id for r in page] == ["f2", "f3"]
    await store.set_status("f3", FileStatus.FAILED, error_code="corrupt_media", error="bad")
    failed, _ = await store.list_files(status="failed")
    assert [(r.id, r.error_code, r.error) for r in failed] == [("f3", "corrupt_media", "bad")]
    assert await store.status_counts() == {"indexed": 3, "failed": 1}
    await store.close()


async def test_jobs_count_progress(tmp_path: Path) -> None:
    store = await _open(tmp_path)
    await store.create_job(JobRecord(id="j", total=2), ["a", "b"])
    await store.record_job_progress("j", failed=False)
    job = await store.get_job("j")
    assert job is not None and (job.done, job.failed, job.status) == (1, 0, "running")
    await store.record_job_progress("j", failed=True)
    job = await store.get_job("j")
    assert job is not None and (job.done, job.failed, job.status) == (2, 1, "finished")
    await store.close()


async def test_a_database_that_cannot_be_migrated_fails_clearly_and_lets_go(
    tmp_path: Path,
) -> None:
    import pytest

    from msearch.errors import StoreError

    store = await _open(tmp_path)
    await store.close()
    raw = sqlite3.connect(tmp_path / "m.db")
    raw.execute("PRAGMA user_version = 4")  # migration 5 adds a column that is there already
    raw.close()
    broken = MetadataStore(tmp_path / "m.db")
    with pytest.raises(StoreError, match=r"cannot open the database .*m\.db: duplicate column"):
        await broken.open()
    assert broken._db is None  # its connection thread is gone: the process can exit


async def test_passages_are_found_by_any_part_of_a_word_and_leave_with_their_file(
    tmp_path: Path,
) -> None:
    store = await _open(tmp_path)
    try:
        talk = FileRecord(id="t1", path="/m/talks/t1.flac", folder="/m/talks", media_type="audio")
        other = FileRecord(id="t2", path="/m/other/t2.mp4", folder="/m/other", media_type="video")
        for record in (talk, other):
            await store.save_file(record)
        said = [
            Passage("speech", 0, 3.2, 4.8, "welcome to the budget meeting in Berlin", "en"),
            Passage("speech", 1, 12.2, 14.1, "the dog is barking", "en"),
        ]
        await store.mark_indexed(talk, [], said)
        await store.mark_indexed(other, [], [Passage("speech", 0, 1.0, 2.0, "a budget", "en")])
        assert store.has_passages
        [hit] = await store.search_passages("berl", limit=10)  # a part of a word
        assert (hit.file_id, hit.passage) == ("t1", said[0])
        assert hit.marked == "welcome to the budget meeting in <mark>Berl</mark>in"
        assert 0 < hit.strength < 1
        both = await store.search_passages("BUDGET", limit=10)
        assert {h.file_id for h in both} == {"t1", "t2"}
        assert [
            h.file_id for h in await store.search_passages("budget", limit=10, folder="/m/talks")
        ] == ["t1"]
        assert [
            h.file_id
            for h in await store.search_passages("budget", limit=10, media_types=["video"])
        ] == ["t2"]
        assert await store.search_passages("budget dog", limit=10) == []  # every word, one passage
        assert await store.search_passages("a b", limit=10) == []  # too short to look for
        assert await store.search_passages('bud"get', limit=10) == []  # quotes are text
        # Chinese words are often two characters: looked for all the same (English ones not)
        chinese = FileRecord(id="t3", path="/m/talks/t3.pdf", folder="/m/talks")
        chinese.media_type = "document"
        await store.save_file(chinese)
        page = Passage("page", 0, 1.0, 1.0, "今天的预算会议推迟到星期四", None)
        await store.mark_indexed(chinese, [], [page])
        [short] = await store.search_passages("预算", limit=10)
        assert short.file_id == "t3" and short.marked == "今天的<mark>预算</mark>会议推迟到星期四"
        [mixed] = await store.search_passages("会议 推迟到星期", limit=10)
        assert "<mark>会议</mark>" in mixed.marked and "<mark>推迟到星期</mark>" in mixed.marked
        assert await store.search_passages("预算 晚餐", limit=10) == []  # every word
        assert await store.search_passages("预算", limit=10, kinds=["speech"]) == []
        assert await store.search_passages("预%", limit=10) == []  # LIKE's signs are text
        await store.delete_files(["t3"])
        # replaced when the file is indexed again, gone with the file
        await store.mark_indexed(talk, [], said[1:])
        assert await store.passages_of("t1", "speech") == said[1:]
        assert [h.file_id for h in await store.search_passages("budget", limit=10)] == ["t2"]
        await store.delete_files(["t2"])
        assert await store.search_passages("budget", limit=10) == []
        assert await store.passages_of("t2", "speech") == []
    finally:
        await store.close()
