"""SQLite metadata store (aiosqlite, WAL, one serialised writer, parameterised SQL only)."""

from __future__ import annotations

import asyncio
import html
import json
import re
import sqlite3
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from msearch.errors import StoreError
from msearch.store.migrations import MIGRATIONS, SCHEMA_VERSION
from msearch.store.records import (
    UNFINISHED,
    FileRecord,
    FileStatus,
    FolderRecord,
    JobRecord,
    JobStatus,
    Passage,
    PassageHit,
    SceneRecord,
    skip_reason,
)

_FILE_COLUMNS = (
    "id",
    "path",
    "folder",
    "media_type",
    "mime",
    "size",
    "mtime",
    "fingerprint",
    "width",
    "height",
    "duration",
    "taken_at",
    "camera",
    "status",
    "error_code",
    "error",
    "progress",
    "model",
    "enhanced",
    "enhancement",
    "audio",
    "document",
    "created_at",
    "updated_at",
    "indexed_at",
)

_JSON_COLUMNS = ("enhancement", "audio", "document")

Row = tuple[Any, ...]

# Chinese, Japanese and Korean characters: their words are often two characters long.
_CJK = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")

# How much of a page's text a search result shows around the match.
EXCERPT_CHARS = 240


def excerpt(text: str, at: int) -> str:
    """About EXCERPT_CHARS of ``text`` around position ``at``, cut at spaces, with an
    ellipsis where it was cut."""
    if len(text) <= EXCERPT_CHARS:
        return text
    begin = max(0, at - EXCERPT_CHARS // 3)
    end = min(len(text), begin + EXCERPT_CHARS)
    if begin > 0:
        space = text.find(" ", begin, at) if at > begin else -1
        begin = space + 1 if space >= 0 else begin
    if end < len(text):
        space = text.rfind(" ", max(begin, at + 1), end)
        end = space if space > 0 else end
    return ("…" if begin > 0 else "") + text[begin:end] + ("…" if end < len(text) else "")


class _Reader:
    """A read-only connection living on a thread of its own: a query is one hop to that
    thread and back (aiosqlite takes one per execute, fetch and close)."""

    def __init__(self, path: Path) -> None:
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="msearch-sqlite-read")
        self._conn: sqlite3.Connection | None = None
        self._path = path

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:  # only ever touched from the pool's one thread
            self._conn = sqlite3.connect(str(self._path), timeout=30, check_same_thread=False)
            self._conn.execute("PRAGMA query_only=ON")
        return self._conn

    def _run(self, sql: str, params: Sequence[Any], one: bool) -> list[Row]:
        cursor = self._connection().execute(sql, params)
        try:
            if one:
                row = cursor.fetchone()
                return [row] if row is not None else []
            return cursor.fetchall()
        finally:
            cursor.close()

    async def fetchall(
        self, sql: str, params: Sequence[Any] = (), *, one: bool = False
    ) -> list[Row]:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, self._run, sql, params, one)
        except sqlite3.Error as exc:
            raise StoreError(f"reading the metadata store failed: {exc}") from exc

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._pool, self._close)
        self._pool.shutdown(wait=True)


def _row_to_file(row: Row) -> FileRecord:
    values = dict(zip(_FILE_COLUMNS, row, strict=True))
    values["status"] = FileStatus(values["status"])
    values["enhanced"] = bool(values["enhanced"])
    for column in _JSON_COLUMNS:
        values[column] = json.loads(values[column]) if values[column] else None
    return FileRecord(**values)


def _column_value(record: FileRecord, column: str) -> Any:
    value = getattr(record, column)
    if column == "status":
        return str(value)
    if column in _JSON_COLUMNS:
        return json.dumps(value) if value is not None else None
    return value


def _file_values(record: FileRecord) -> tuple[Any, ...]:
    return tuple(_column_value(record, c) for c in _FILE_COLUMNS)


def _like_literal(text: str) -> str:
    """``text`` as itself in a LIKE pattern (ESCAPE '\\')."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _under_folder(folder: str) -> tuple[str, list[Any]]:
    """SQL matching files in ``folder`` or any folder below it."""
    escaped = _like_literal(folder.rstrip("/") + "/")
    return "(folder = ? OR folder LIKE ? ESCAPE '\\')", [folder.rstrip("/") or "/", escaped + "%"]


def _in_watched(folder: FolderRecord) -> tuple[str, list[Any]]:
    """SQL matching the files a watched folder covers."""
    if folder.recursive:
        return _under_folder(folder.path)
    return "folder = ?", [folder.path.rstrip("/") or "/"]


# The role of the model a switch is building a collection for: "<kind>:next".
NEXT = ":next"


class MetadataStore:
    """The files, scenes, folders, jobs and models tables.

    One connection writes (serialised transactions); reads go through a second one, so a
    query never waits behind indexing's writes (WAL lets it read the last commit)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._db: aiosqlite.Connection | None = None
        self._reader: _Reader | None = None
        self._has_passages = False
        self._write_lock = asyncio.Lock()

    async def open(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._db = await aiosqlite.connect(str(self._path), timeout=30)
        try:
            await self._db.execute("PRAGMA journal_mode=WAL")
            await self._db.execute("PRAGMA synchronous=NORMAL")
            await self._db.execute("PRAGMA foreign_keys=ON")
            await self._migrate()
            async with self._db.execute("SELECT EXISTS (SELECT 1 FROM passages)") as cur:
                self._has_passages = bool((await cur.fetchone() or [0])[0])
        except BaseException as exc:
            # its thread would otherwise keep the process from exiting
            await self.close()
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"cannot open the database {self._path}: {exc}") from exc
            raise
        self._reader = _Reader(self._path)

    async def _migrate(self) -> None:
        db = self.db
        async with db.execute("PRAGMA user_version") as cur:
            row = await cur.fetchone()
        version = int(row[0]) if row else 0
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"the database schema (v{version}) is newer than this msearch (v{SCHEMA_VERSION})"
            )
        for number in range(version, SCHEMA_VERSION):
            await db.executescript(
                f"BEGIN; {MIGRATIONS[number]}; PRAGMA user_version = {number + 1}; COMMIT;"
            )

    async def close(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            await reader.close()
        db, self._db = self._db, None
        if db is not None:
            await db.close()

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise StoreError("the metadata store is not open")
        return self._db

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._write_lock:
            db = self.db
            await db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                await db.rollback()
                raise
            await db.commit()

    @property
    def _read(self) -> _Reader:
        if self._reader is None:
            raise StoreError("the metadata store is not open")
        return self._reader

    async def _fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return await self._read.fetchall(sql, params)

    async def _fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        rows = await self._read.fetchall(sql, params, one=True)
        return rows[0] if rows else None

    # files ---------------------------------------------------------------------------------

    async def _with_scenes(self, records: list[FileRecord]) -> list[FileRecord]:
        # a video's scenes, a document's pages
        videos = [r for r in records if r.media_type in ("video", "document")]
        if videos:
            marks = ",".join("?" * len(videos))
            rows = await self._fetchall(
                f'SELECT file_id, idx, start, "end", keyframe FROM scenes '
                f"WHERE file_id IN ({marks}) ORDER BY file_id, idx",
                [r.id for r in videos],
            )
            by_id = {r.id: r for r in videos}
            for file_id, idx, start, end, keyframe in rows:
                by_id[file_id].scenes.append(SceneRecord(idx, start, end, keyframe))
        return records

    async def get_file(self, file_id: str) -> FileRecord | None:
        row = await self._fetchone(
            f"SELECT {','.join(_FILE_COLUMNS)} FROM files WHERE id = ?", [file_id]
        )
        return (await self._with_scenes([_row_to_file(row)]))[0] if row else None

    async def _files_where_in(self, column: str, values: Iterable[str | int]) -> list[FileRecord]:
        """Rows whose ``column`` (a fixed name, never user input) is one of ``values``,
        queried in chunks below SQLite's parameter limit."""
        wanted = list(dict.fromkeys(values))
        found: list[FileRecord] = []
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            rows = await self._fetchall(
                f"SELECT {','.join(_FILE_COLUMNS)} FROM files "
                f"WHERE {column} IN ({','.join('?' * len(chunk))})",
                chunk,
            )
            found.extend(_row_to_file(r) for r in rows)
        return await self._with_scenes(found)

    async def indexed_among(
        self, file_ids: Sequence[str], *, statuses: Sequence[str] = ("indexed",)
    ) -> set[str]:
        """Which of these (at most a page of search hits) are indexed right now (or in
        one of ``statuses``)."""
        if not file_ids:
            return set()
        rows = await self._fetchall(
            f"SELECT id FROM files WHERE status IN ({','.join('?' * len(statuses))}) "
            f"AND id IN ({','.join('?' * len(file_ids))})",
            [*statuses, *file_ids],
        )
        return {row[0] for row in rows}

    async def get_files(self, file_ids: Iterable[str]) -> dict[str, FileRecord]:
        return {r.id: r for r in await self._files_where_in("id", file_ids)}

    async def get_files_by_path(self, paths: Sequence[str]) -> dict[str, FileRecord]:
        return {r.path: r for r in await self._files_where_in("path", paths)}

    async def save_file(self, record: FileRecord) -> None:
        """Insert or replace the row (scenes untouched)."""
        await self.save_files([record])

    async def save_files(self, records: Sequence[FileRecord]) -> None:
        """Insert or replace many rows in one transaction (bulk registration, imports)."""
        now = time.time()
        for record in records:
            record.updated_at = now
            record.created_at = record.created_at or now
        async with self._write() as db:
            await db.executemany(
                f"INSERT INTO files ({','.join(_FILE_COLUMNS)}) "
                f"VALUES ({','.join('?' * len(_FILE_COLUMNS))}) "
                f"ON CONFLICT(id) DO UPDATE SET "
                + ",".join(f"{c}=excluded.{c}" for c in _FILE_COLUMNS if c != "id"),
                [_file_values(r) for r in records],
            )

    async def set_status(
        self,
        file_id: str,
        status: FileStatus,
        *,
        error_code: str | None = None,
        error: str | None = None,
        progress: float | None = None,
    ) -> None:
        async with self._write() as db:
            await db.execute(
                "UPDATE files SET status = ?, error_code = ?, error = ?, "
                "progress = COALESCE(?, progress), updated_at = ? WHERE id = ?",
                [str(status), error_code, error, progress, time.time(), file_id],
            )

    async def set_progress(self, file_id: str, progress: float) -> None:
        async with self._write() as db:
            await db.execute(
                "UPDATE files SET progress = ?, updated_at = ? WHERE id = ?",
                [progress, time.time(), file_id],
            )

    async def mark_indexed(
        self,
        record: FileRecord,
        scenes: list[SceneRecord],
        passages: Sequence[Passage] = (),
    ) -> None:
        """Commit a finished file: its metadata, status ``indexed``, scenes and passages
        (they replace the file's old ones), atomically."""
        now = time.time()
        record.status = FileStatus.INDEXED
        record.error_code = record.error = None
        record.progress = 1.0
        record.indexed_at = now
        record.updated_at = now
        async with self._write() as db:
            await db.execute(
                f"UPDATE files SET {','.join(f'{c} = ?' for c in _FILE_COLUMNS[1:])} WHERE id = ?",
                [*_file_values(record)[1:], record.id],
            )
            await db.execute("DELETE FROM scenes WHERE file_id = ?", [record.id])
            await db.executemany(
                'INSERT INTO scenes (file_id, idx, start, "end", keyframe) VALUES (?,?,?,?,?)',
                [(record.id, s.index, s.start, s.end, s.keyframe) for s in scenes],
            )
            await db.execute("DELETE FROM passages WHERE file_id = ?", [record.id])
            self._has_passages = self._has_passages or bool(passages)
            await db.executemany(
                'INSERT INTO passages (file_id, kind, idx, start, "end", text, language) '
                "VALUES (?,?,?,?,?,?,?)",
                [
                    (record.id, p.kind, p.index, p.start, p.end, p.text, p.language)
                    for p in passages
                ],
            )
        record.scenes = list(scenes)

    @property
    def has_passages(self) -> bool:
        """Whether any file has had words stored (text searches skip the full-text index
        until one has)."""
        return self._has_passages

    async def passages_of(self, file_id: str, kind: str) -> list[Passage]:
        rows = await self._fetchall(
            'SELECT kind, idx, start, "end", text, language FROM passages '
            "WHERE file_id = ? AND kind = ? ORDER BY idx",
            [file_id, kind],
        )
        return [Passage(*row) for row in rows]

    async def search_passages(
        self,
        query: str,
        *,
        limit: int,
        media_types: Sequence[str] = (),
        folder: str | None = None,
        exclude_file_ids: Sequence[str] = (),
        kinds: Sequence[str] = (),
    ) -> list[PassageHit]:
        """Passages of indexed files holding every word of ``query``, anywhere (a part of
        a word too), the most relevant first. Words of three or more characters go through
        the trigram index; shorter ones are looked for only when they are Chinese, Japanese
        or Korean, where two characters are a word ("预算"), by a scan (English ones, "a",
        "of", say too little)."""
        words = query.split()
        indexed = [w for w in words if len(w) >= 3]
        scanned = [w for w in words if len(w) < 3 and _CJK.search(w)]
        if not indexed and not scanned:
            return []
        clauses, params = ["f.status = 'indexed'"], []
        if indexed:
            clauses.append("passages_fts MATCH ?")
            params.append(" AND ".join('"' + w.replace('"', '""') + '"' for w in indexed))
        for word in scanned:
            clauses.append("p.text LIKE ? ESCAPE '\\'")
            params.append("%" + _like_literal(word) + "%")
        if media_types:
            clauses.append(f"f.media_type IN ({','.join('?' * len(media_types))})")
            params.extend(media_types)
        if folder:
            under, values = _under_folder(folder)
            clauses.append(under.replace("folder", "f.folder"))
            params.extend(values)
        if exclude_file_ids:
            clauses.append(f"f.id NOT IN ({','.join('?' * len(exclude_file_ids))})")
            params.extend(exclude_file_ids)
        if kinds:
            clauses.append(f"p.kind IN ({','.join('?' * len(kinds))})")
            params.extend(kinds)
        columns = 'p.file_id, p.kind, p.idx, p.start, p."end", p.text, p.language'
        if indexed:
            sql = (
                f"SELECT {columns}, highlight(passages_fts, 0, char(1), char(2)), "
                "bm25(passages_fts) FROM passages_fts "
                "JOIN passages p ON p.id = passages_fts.rowid JOIN files f ON f.id = p.file_id "
                f"WHERE {' AND '.join(clauses)} ORDER BY bm25(passages_fts) LIMIT ?"
            )
        else:  # no index to rank by: the shortest passages say the most of the words
            sql = (
                f"SELECT {columns}, p.text, -1.0 FROM passages p "
                f"JOIN files f ON f.id = p.file_id WHERE {' AND '.join(clauses)} "
                "ORDER BY length(p.text), p.file_id, p.idx LIMIT ?"
            )
        rows = await self._fetchall(sql, [*params, limit])
        hits = []
        for file_id, kind, idx, start, end, text, language, marked, rank in rows:
            for word in scanned:
                marked = re.sub(re.escape(word), lambda m: f"\x01{m.group(0)}\x02", marked)
            if kind == "page":  # a page holds pages of words: the lines around the match
                marked = excerpt(marked, marked.find("\x01"))
                marked += "\x02" * (marked.count("\x01") - marked.count("\x02"))
            marked = html.escape(marked).replace("\x01", "<mark>").replace("\x02", "</mark>")
            relevance = max(0.0, -float(rank))  # bm25() is lower for better matches
            passage = Passage(kind, idx, start, end, text, language)
            hits.append(PassageHit(file_id, passage, marked, relevance / (relevance + 1.0)))
        return hits

    async def page_openings(self, pages: Iterable[tuple[str, int]]) -> dict[tuple[str, int], str]:
        wanted = list(dict.fromkeys(pages))
        if not wanted:
            return {}
        where = " OR ".join("(file_id = ? AND idx = ?)" for _ in wanted)
        rows = await self._fetchall(
            f"SELECT file_id, idx, substr(text, 1, {EXCERPT_CHARS * 2}) FROM passages "
            f"WHERE kind = 'page' AND ({where})",
            [v for file_id, number in wanted for v in (file_id, number - 1)],
        )
        return {(file_id, idx + 1): excerpt(text, 0) for file_id, idx, text in rows}

    async def delete_files(self, file_ids: Sequence[str]) -> None:
        async with self._write() as db:
            await db.executemany("DELETE FROM files WHERE id = ?", [(i,) for i in file_ids])

    async def list_files(
        self,
        *,
        status: str | None = None,
        media_type: str | None = None,
        folder: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[FileRecord], int]:
        where: list[str] = []
        params: list[Any] = []
        if status:
            where.append("status = ?")
            params.append(status)
        if media_type:
            where.append("media_type = ?")
            params.append(media_type)
        if folder:
            clause, extra = _under_folder(folder)
            where.append(clause)
            params.extend(extra)
        sql_where = f" WHERE {' AND '.join(where)}" if where else ""
        total_row = await self._fetchone(f"SELECT COUNT(*) FROM files{sql_where}", params)
        rows = await self._fetchall(
            f"SELECT {','.join(_FILE_COLUMNS)} FROM files{sql_where} "
            "ORDER BY path LIMIT ? OFFSET ?",
            [*params, limit, offset],
        )
        records = await self._with_scenes([_row_to_file(r) for r in rows])
        return records, int(total_row[0]) if total_row else 0

    async def files_with_status(self, statuses: Sequence[FileStatus]) -> list[FileRecord]:
        rows = await self._fetchall(
            f"SELECT {','.join(_FILE_COLUMNS)} FROM files "
            f"WHERE status IN ({','.join('?' * len(statuses))}) ORDER BY path",
            [str(s) for s in statuses],
        )
        return [_row_to_file(r) for r in rows]

    async def file_ids(
        self, status: FileStatus | None = None, *, media_type: str | None = None
    ) -> set[str]:
        clauses, params = [], []
        if status is not None:
            clauses.append("status = ?")
            params.append(str(status))
        if media_type is not None:
            clauses.append("media_type = ?")
            params.append(media_type)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = await self._fetchall(f"SELECT id FROM files{where}", params)
        return {r[0] for r in rows}

    async def status_counts(self, folder: FolderRecord | None = None) -> dict[str, int]:
        """Files per status, all of them or those a watched folder covers."""
        if folder is None:
            rows = await self._fetchall("SELECT status, COUNT(*) FROM files GROUP BY status")
        else:
            clause, params = _in_watched(folder)
            rows = await self._fetchall(
                f"SELECT status, COUNT(*) FROM files WHERE {clause} GROUP BY status", params
            )
        return {str(status): int(n) for status, n in rows}

    async def skipped_reasons(self, job_id: str | None = None) -> dict[str, int]:
        """Why files (of the library, or of one job) were skipped, most common first:
        ``.txt`` (a type msearch does not index), or the error code (``unsupported_media``:
        not media, whatever its name)."""
        if job_id is None:
            rows = await self._fetchall(
                "SELECT path, error_code FROM files WHERE status = 'skipped'", []
            )
        else:
            rows = await self._fetchall(
                "SELECT f.path, f.error_code FROM job_files jf JOIN files f "
                "ON f.id = jf.file_id WHERE jf.job_id = ? AND f.status = 'skipped'",
                [job_id],
            )
        reasons: dict[str, int] = {}
        for path, code in rows:
            reason = skip_reason(str(path), code)
            reasons[reason] = reasons.get(reason, 0) + 1
        return dict(sorted(reasons.items(), key=lambda item: (-item[1], item[0])))

    async def files_in(self, folder: FolderRecord) -> list[FileRecord]:
        """The files a watched folder covers (for scans)."""
        clause, params = _in_watched(folder)
        rows = await self._fetchall(
            f"SELECT {','.join(_FILE_COLUMNS)} FROM files WHERE {clause} ORDER BY path", params
        )
        return await self._with_scenes([_row_to_file(r) for r in rows])

    async def files_below(self, path: str) -> list[FileRecord]:
        """The file at ``path`` and every file below it (a deleted or moved directory)."""
        clause, params = _under_folder(path)
        rows = await self._fetchall(
            f"SELECT {','.join(_FILE_COLUMNS)} FROM files WHERE path = ? OR {clause}",
            [path, *params],
        )
        return await self._with_scenes([_row_to_file(r) for r in rows])

    async def files_with_size(self, sizes: Iterable[int]) -> list[FileRecord]:
        return await self._files_where_in("size", sizes)

    async def status_type_counts(self) -> dict[tuple[str, str], int]:
        """Files per (status, media type); "unknown" for files never recognised."""
        rows = await self._fetchall(
            "SELECT status, COALESCE(media_type, 'unknown'), COUNT(*) FROM files "
            "GROUP BY status, media_type"
        )
        return {(str(status), str(kind)): int(n) for status, kind, n in rows}

    async def media_type_counts(self) -> dict[str, int]:
        rows = await self._fetchall(
            "SELECT media_type, COUNT(*) FROM files WHERE status = 'indexed' GROUP BY media_type"
        )
        return {str(kind): int(n) for kind, n in rows}

    async def requeue_all(self, media_types: Iterable[str] | None = None) -> int:
        """Queue every file again (of these media types; a file whose type is not known
        yet, never processed, goes too)."""
        where = "status != 'deleted'"
        params: list[Any] = [time.time()]
        if media_types is not None:
            types = sorted(media_types)
            where += f" AND (media_type IS NULL OR media_type IN ({','.join('?' * len(types))}))"
            params.extend(types)
        async with self._write() as db:
            cur = await db.execute(
                "UPDATE files SET status = 'queued', progress = 0, error_code = NULL, "
                f"error = NULL, updated_at = ? WHERE {where}",
                params,
            )
            return cur.rowcount

    async def requeue_untranscribed(self, transcriber: str) -> int:
        """Queue again the indexed files with sound that ``transcriber`` (a
        ``speech.key``) did not transcribe: another engine or model did, or none."""
        async with self._write() as db:
            cur = await db.execute(
                "UPDATE files SET status = 'queued', progress = 0, updated_at = ? "
                "WHERE status = 'indexed' AND audio IS NOT NULL "
                # before transcripts said what made them, pocketsphinx's said its engine
                "AND COALESCE(json_extract(audio, '$.speech.by'), "
                "json_extract(audio, '$.speech.engine'), '') != ?",
                [time.time(), transcriber],
            )
            return cur.rowcount

    async def requeue_unless_model(self, model: str) -> int:
        """Queue again the indexed files some other model embedded."""
        async with self._write() as db:
            cur = await db.execute(
                "UPDATE files SET status = 'queued', progress = 0, updated_at = ? "
                "WHERE status = 'indexed' AND (model IS NULL OR model != ?)",
                [time.time(), model],
            )
            return cur.rowcount

    async def clear_files(self) -> dict[str, int]:
        async with self._write() as db:
            removed: dict[str, int] = {}
            for table in ("scenes", "passages", "job_files", "jobs", "files"):
                cur = await db.execute(f"DELETE FROM {table}")
                removed[table] = cur.rowcount
            return removed

    # folders -------------------------------------------------------------------------------

    async def add_folder(self, path: str, recursive: bool) -> FolderRecord:
        """Insert the folder, or update ``recursive`` of the one already at ``path``."""
        async with self._write() as db:
            await db.execute(
                "INSERT INTO folders (path, recursive, added_at) VALUES (?, ?, ?) "
                "ON CONFLICT(path) DO UPDATE SET recursive = excluded.recursive",
                [path, int(recursive), time.time()],
            )
        folder = await self.folder_at(path)
        assert folder is not None
        return folder

    async def list_folders(self) -> list[FolderRecord]:
        rows = await self._fetchall(
            "SELECT id, path, recursive, added_at FROM folders ORDER BY path"
        )
        return [FolderRecord(int(i), str(p), bool(r), float(a)) for i, p, r, a in rows]

    async def get_folder(self, folder_id: int) -> FolderRecord | None:
        return next((f for f in await self.list_folders() if f.id == folder_id), None)

    async def folder_at(self, path: str) -> FolderRecord | None:
        return next((f for f in await self.list_folders() if f.path == path), None)

    async def remove_folder(self, folder_id: int) -> bool:
        async with self._write() as db:
            cur = await db.execute("DELETE FROM folders WHERE id = ?", [folder_id])
            return cur.rowcount > 0

    async def clear_folders(self) -> int:
        async with self._write() as db:
            cur = await db.execute("DELETE FROM folders")
            return cur.rowcount

    # jobs ----------------------------------------------------------------------------------

    async def create_job(self, job: JobRecord, file_ids: Sequence[str]) -> None:
        now = time.time()
        job.created_at = job.updated_at = now
        async with self._write() as db:
            await db.execute(
                "INSERT INTO jobs (id, total, done, failed, status, created_at, updated_at) "
                "VALUES (?,?,?,?,?,?,?)",
                [job.id, job.total, job.done, job.failed, job.status, now, now],
            )
            await db.executemany(
                "INSERT OR IGNORE INTO job_files (job_id, file_id) VALUES (?, ?)",
                [(job.id, f) for f in file_ids],
            )

    async def job_file_counts(self, job_id: str) -> dict[str, int]:
        """The files of a job, per status (how many ended skipped, say)."""
        rows = await self._fetchall(
            "SELECT f.status, COUNT(*) FROM job_files jf JOIN files f ON f.id = jf.file_id "
            "WHERE jf.job_id = ? GROUP BY f.status",
            [job_id],
        )
        return {str(status): int(n) for status, n in rows}

    async def job_files(self, job_id: str, status: str, limit: int) -> list[FileRecord]:
        """Some of a job's files in one status (its failures, to show them)."""
        columns = ",".join(f"f.{c}" for c in _FILE_COLUMNS)
        rows = await self._fetchall(
            f"SELECT {columns} FROM job_files jf JOIN files f ON f.id = jf.file_id "
            "WHERE jf.job_id = ? AND f.status = ? ORDER BY f.path LIMIT ?",
            [job_id, status, limit],
        )
        return await self._with_scenes([_row_to_file(r) for r in rows])

    async def job_unchanged(self, job_id: str, since: float) -> int:
        """A job's indexed files that were already indexed before it began."""
        row = await self._fetchone(
            "SELECT COUNT(*) FROM job_files jf JOIN files f ON f.id = jf.file_id "
            "WHERE jf.job_id = ? AND f.status = 'indexed' AND f.indexed_at < ?",
            [job_id, since],
        )
        return int(row[0]) if row else 0

    async def record_job_progress(self, job_id: str, *, failed: bool) -> None:
        async with self._write() as db:
            await db.execute(
                "UPDATE jobs SET done = done + 1, failed = failed + ?, updated_at = ?, "
                f"status = CASE WHEN done + 1 >= total THEN '{JobStatus.FINISHED}' "
                "ELSE status END WHERE id = ?",
                [1 if failed else 0, time.time(), job_id],
            )

    async def settle_jobs(self) -> dict[str, list[str]]:
        """After a crash: recount every running job from its files (a file whose count
        was lost with the process counts now; a file gone from the index counts as done),
        finish those with nothing left, and return the unfinished files of the others by
        job, so that they are processed for their job again."""
        unfinished = [str(s) for s in UNFINISHED]
        marks = ",".join("?" * len(unfinished))
        rows = await self._fetchall(
            f"SELECT jf.job_id, jf.file_id FROM job_files jf JOIN jobs j ON j.id = jf.job_id "
            f"JOIN files f ON f.id = jf.file_id WHERE j.status = '{JobStatus.RUNNING}' "
            f"AND f.status IN ({marks})",
            unfinished,
        )
        left: dict[str, list[str]] = {}
        for job_id, file_id in rows:
            left.setdefault(job_id, []).append(file_id)
        async with self._write() as db:
            await db.execute(
                "UPDATE jobs SET "
                "failed = (SELECT COUNT(*) FROM job_files jf JOIN files f ON f.id = jf.file_id "
                "  WHERE jf.job_id = jobs.id AND f.status = 'failed'), "
                f"done = total - (SELECT COUNT(*) FROM job_files jf JOIN files f "
                f"  ON f.id = jf.file_id WHERE jf.job_id = jobs.id AND f.status IN ({marks})), "
                f"updated_at = ? WHERE status = '{JobStatus.RUNNING}'",
                [*unfinished, time.time()],
            )
            await db.execute(
                f"UPDATE jobs SET status = '{JobStatus.FINISHED}' "
                f"WHERE status = '{JobStatus.RUNNING}' AND done >= total"
            )
        return left

    async def get_job(self, job_id: str) -> JobRecord | None:
        row = await self._fetchone(
            "SELECT id, total, done, failed, status, created_at, updated_at FROM jobs WHERE id = ?",
            [job_id],
        )
        if row is None:
            return None
        job = JobRecord(*row)
        job.status = JobStatus(job.status)
        return job

    # models --------------------------------------------------------------------------------

    async def get_models(self, *, next_ones: bool = False) -> dict[str, tuple[str, int, str]]:
        """The model that built each engine kind's collection: kind -> (id, dim, collection);
        with ``next_ones``, the models a switch is building collections for."""
        rows = await self._fetchall("SELECT role, model_id, dim, collection FROM models")
        models = {str(r[0]): (str(r[1]), int(r[2]), str(r[3])) for r in rows}
        if next_ones:
            return {r.removesuffix(NEXT): m for r, m in models.items() if r.endswith(NEXT)}
        return {r: m for r, m in models.items() if not r.endswith(NEXT)}

    async def set_model(
        self, model_id: str, dim: int, collection: str, role: str, source: str | None = None
    ) -> None:
        async with self._write() as db:
            await db.execute(
                "INSERT INTO models (role, model_id, dim, collection, updated_at, source) "
                "VALUES (?,?,?,?,?,?) ON CONFLICT(role) DO UPDATE SET model_id = "
                "excluded.model_id, dim = excluded.dim, collection = excluded.collection, "
                "updated_at = excluded.updated_at, source = excluded.source",
                [role, model_id, dim, collection, time.time(), source],
            )

    async def model_source(self, role: str) -> str | None:
        """Where the model of ``role`` was loaded from (None when not recorded)."""
        row = await self._fetchone("SELECT source FROM models WHERE role = ?", [role])
        return str(row[0]) if row and row[0] is not None else None

    async def delete_model(self, role: str) -> None:
        async with self._write() as db:
            await db.execute("DELETE FROM models WHERE role = ?", [role])
