-- Nodes that listen on the channel `tresor_partitions` learn at once that a partition's sealed
-- record changed (its version moved) or that it was deleted, instead of at their next poll.
-- Payload: "<schema> <partition id>" (several clusters may share one database in schemas of
-- their own). PIN failure counters do not notify: they are not part of the sealed state.
-- Delivered when the writing transaction commits, never for one that rolls back.
CREATE FUNCTION tresor_partition_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tresor_partitions', TG_TABLE_SCHEMA || ' ' || OLD.id::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER partitions_changed AFTER UPDATE OF version OR DELETE ON partitions
    FOR EACH ROW EXECUTE FUNCTION tresor_partition_changed();
