-- The partitions' change counter (see 0005): moved by every committed version change or
-- deletion of a partition, whichever process made it. A node polls it so that what another
-- process changed (an object destroyed, a client key revoked, a token re-initialised, the
-- partition deleted) reaches its caches within the poll instead of at its next comparison
-- (`sync_interval`). PIN failure counters, written without a version change, do not move it.
INSERT INTO change_counters (name, n) VALUES ('partitions', 0);

CREATE TRIGGER partitions_changed AFTER UPDATE OF version ON partitions
BEGIN
    UPDATE change_counters SET n = n + 1 WHERE name = 'partitions';
END;

CREATE TRIGGER partitions_deleted AFTER DELETE ON partitions
BEGIN
    UPDATE change_counters SET n = n + 1 WHERE name = 'partitions';
END;
