-- Gateways that listen on the channel `tresor_services` learn at once that a service was added,
-- changed (its version moved: password, allowlist, partitions, nodes, disabled, lockout policy)
-- or deleted, instead of when their directory cache expires: a new service's clients are
-- admitted, and a disabled or deleted one's open connections closed, without waiting.
-- Payload: "<schema> <service user>". Lockout counters (`failures`, `locked_until`, written
-- without a version change) do not notify. Delivered when the writing transaction commits.
CREATE FUNCTION tresor_service_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('tresor_services', TG_TABLE_SCHEMA || ' ' || OLD.service_user);
    ELSE
        PERFORM pg_notify('tresor_services', TG_TABLE_SCHEMA || ' ' || NEW.service_user);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER services_changed AFTER INSERT OR UPDATE OF version OR DELETE ON services
    FOR EACH ROW EXECUTE FUNCTION tresor_service_changed();
