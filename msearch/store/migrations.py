"""The SQLite schema as a ladder of migrations; ``PRAGMA user_version`` is the rung."""

from __future__ import annotations

MIGRATIONS: list[str] = [
    # 1: the initial schema
    """
    CREATE TABLE files (
        id TEXT PRIMARY KEY,
        path TEXT NOT NULL UNIQUE,
        folder TEXT NOT NULL,
        media_type TEXT,
        mime TEXT,
        size INTEGER NOT NULL DEFAULT 0,
        mtime REAL NOT NULL DEFAULT 0,
        fingerprint TEXT,
        width INTEGER,
        height INTEGER,
        duration REAL,
        taken_at TEXT,
        camera TEXT,
        status TEXT NOT NULL,
        error_code TEXT,
        error TEXT,
        progress REAL NOT NULL DEFAULT 0,
        model TEXT,
        enhanced INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        indexed_at REAL
    );
    CREATE INDEX files_status ON files(status);
    CREATE INDEX files_folder ON files(folder);
    CREATE INDEX files_fingerprint ON files(fingerprint);
    CREATE INDEX files_media_type ON files(media_type);
    CREATE TABLE scenes (
        file_id TEXT NOT NULL REFERENCES files(id) ON DELETE CASCADE,
        idx INTEGER NOT NULL,
        start REAL NOT NULL,
        "end" REAL NOT NULL,
        keyframe REAL NOT NULL,
        PRIMARY KEY (file_id, idx)
    );
    CREATE TABLE folders (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        path TEXT NOT NULL UNIQUE,
        recursive INTEGER NOT NULL DEFAULT 1,
        added_at REAL NOT NULL
    );
    CREATE TABLE jobs (
        id TEXT PRIMARY KEY,
        total INTEGER NOT NULL,
        done INTEGER NOT NULL DEFAULT 0,
        failed INTEGER NOT NULL DEFAULT 0,
        status TEXT NOT NULL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE TABLE job_files (
        job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
        file_id TEXT NOT NULL,
        PRIMARY KEY (job_id, file_id)
    );
    CREATE TABLE models (
        role TEXT PRIMARY KEY,
        model_id TEXT NOT NULL,
        dim INTEGER NOT NULL,
        collection TEXT NOT NULL,
        updated_at REAL NOT NULL
    );
    """,
    # 2: moved files are found by size before their content is hashed
    """
    CREATE INDEX files_size ON files(size);
    """,
    # 3: what the enhancement stage did (JSON), next to the ``enhanced`` flag
    """
    ALTER TABLE files ADD COLUMN enhancement TEXT;
    """,
    # 4: one model per engine kind; the single model so far was the visual one
    """
    UPDATE models SET role = 'visual' WHERE role = 'active';
    """,
    # 5: where each model was loaded from, so that a model switch can keep the old one
    # answering queries while the new one re-indexes
    """
    ALTER TABLE models ADD COLUMN source TEXT;
    """,
    # 6: the file's sound (codec, rate, channels, tags) and its embedded windows (JSON)
    """
    ALTER TABLE files ADD COLUMN audio TEXT;
    """,
    # 7: words found in a file (what is said in it), searchable by any part of a word:
    # FTS5's trigram tokenizer over the passages' text, kept in step by triggers
    """
    CREATE TABLE passages (
        id INTEGER PRIMARY KEY,
        file_id TEXT NOT NULL REFERENCES files(id) ON DELETE CASCADE,
        kind TEXT NOT NULL,
        idx INTEGER NOT NULL,
        start REAL NOT NULL,
        "end" REAL NOT NULL,
        text TEXT NOT NULL,
        language TEXT
    );
    CREATE INDEX passages_of_file ON passages(file_id, kind, idx);
    CREATE VIRTUAL TABLE passages_fts USING fts5(
        text, content='passages', content_rowid='id', tokenize='trigram'
    );
    CREATE TRIGGER passages_added AFTER INSERT ON passages BEGIN
        INSERT INTO passages_fts(rowid, text) VALUES (new.id, new.text);
    END;
    CREATE TRIGGER passages_removed AFTER DELETE ON passages BEGIN
        INSERT INTO passages_fts(passages_fts, rowid, text) VALUES ('delete', old.id, old.text);
    END;
    """,
    # 8: what a document is (pages, title, author, how many pages were indexed; JSON)
    """
    ALTER TABLE files ADD COLUMN document TEXT;
    """,
]

SCHEMA_VERSION = len(MIGRATIONS)
