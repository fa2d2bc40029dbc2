-- Tresor store, PostgreSQL: initial schema.
--
-- The same logical schema as `migrations/` (SQLite), with the same version numbers, so that a
-- change to one backend's schema is made to the other under the same number. Types: BIGINT for
-- SQLite's 64-bit INTEGER, BYTEA for BLOB. Every TEXT column uses the "C" collation: SQLite
-- compares text byte by byte, and listings ordered by name must come back in the same order
-- whichever backend holds them (a locale collation would also depend on the server's setup).
--
-- Unique constraints carry explicit names: the store tells "this name is taken" from "this id is
-- taken" by the constraint a unique violation names.

CREATE TABLE cluster (
    key   TEXT COLLATE "C" PRIMARY KEY,
    value BYTEA NOT NULL
);

CREATE TABLE partitions (
    id            BIGINT PRIMARY KEY,
    name          TEXT COLLATE "C" NOT NULL CONSTRAINT partitions_name_unique UNIQUE,
    created       BIGINT NOT NULL,
    version       BIGINT NOT NULL,
    sealed        BYTEA  NOT NULL,
    so_failures   BIGINT NOT NULL DEFAULT 0,
    user_failures BIGINT NOT NULL DEFAULT 0
);

-- The foreign key also closes a race between nodes: inserting an object takes a key-share lock
-- on its partition row, so a concurrent deletion of the partition either waits for the insert
-- (and then removes the object too) or makes the insert fail.
CREATE TABLE objects (
    partition_id BIGINT NOT NULL REFERENCES partitions (id) ON DELETE CASCADE,
    object_id    BIGINT NOT NULL,
    version      BIGINT NOT NULL,
    class        BIGINT NOT NULL,
    key_type     BIGINT NULL,
    label        TEXT COLLATE "C" NOT NULL,
    ckaid        BYTEA  NOT NULL,
    uuid         TEXT COLLATE "C" NOT NULL,
    usage_count  BIGINT NOT NULL DEFAULT 0,
    sealed       BYTEA  NOT NULL,
    PRIMARY KEY (partition_id, object_id)
);

-- Searches are `WHERE partition_id = $1 AND <column> = $2 ORDER BY object_id`: each index ends
-- with object_id so that it yields the matches already in that order.
CREATE INDEX objects_label ON objects (partition_id, label, object_id);
CREATE INDEX objects_ckaid ON objects (partition_id, ckaid, object_id);
CREATE INDEX objects_class ON objects (partition_id, class, key_type, object_id);
CREATE INDEX objects_uuid ON objects (partition_id, uuid, object_id);

-- The audit chain outlives its partition: no foreign key to `partitions`. The primary key is
-- what keeps a chain from forking: of two writers appending the same seq, the second waits for
-- the first and then fails with a unique violation.
CREATE TABLE audit (
    partition_id BIGINT NOT NULL,
    seq          BIGINT NOT NULL,
    time_ns      BIGINT NOT NULL,
    actor        TEXT COLLATE "C" NOT NULL,
    action       TEXT COLLATE "C" NOT NULL,
    object_id    BIGINT NULL,
    detail       TEXT COLLATE "C" NOT NULL,
    prev_hash    BYTEA  NOT NULL,
    hash         BYTEA  NOT NULL,
    PRIMARY KEY (partition_id, seq)
);

CREATE TABLE checkpoints (
    partition_id BIGINT NOT NULL,
    seq          BIGINT NOT NULL,
    hash         BYTEA  NOT NULL,
    time_ns      BIGINT NOT NULL,
    signer_cert  BYTEA  NOT NULL,
    signature    BYTEA  NOT NULL,
    PRIMARY KEY (partition_id, seq)
);
