-- A counter that moves with every committed addition, version change or deletion of a service,
-- whichever process made it. SQLite has no notifications between processes: a store whose
-- service changes are watched (a gateway's) reads this one row every few hundred milliseconds
-- and reports a move, so that a service added, changed or disabled by `tresor admin` in another
-- process takes effect at the gateway without waiting for its directory cache to expire.
-- Lockout counters (`failures`, `locked_until`, written without a version change) do not move it.
CREATE TABLE change_counters (
    name TEXT    PRIMARY KEY NOT NULL,
    n    INTEGER NOT NULL
);

INSERT INTO change_counters (name, n) VALUES ('services', 0);

CREATE TRIGGER services_added AFTER INSERT ON services
BEGIN
    UPDATE change_counters SET n = n + 1 WHERE name = 'services';
END;

CREATE TRIGGER services_changed AFTER UPDATE OF version ON services
BEGIN
    UPDATE change_counters SET n = n + 1 WHERE name = 'services';
END;

CREATE TRIGGER services_deleted AFTER DELETE ON services
BEGIN
    UPDATE change_counters SET n = n + 1 WHERE name = 'services';
END;
