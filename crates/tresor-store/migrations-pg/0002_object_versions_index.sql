-- Opening a partition reads (object_id, version) of every object to check the sealed version
-- digest. With this index the read can be an index-only scan that never touches the heap and its
-- sealed blobs.
CREATE INDEX IF NOT EXISTS objects_versions ON objects (partition_id, object_id, version);
