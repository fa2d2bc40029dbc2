-- The service directory: one row per service user (the gateway's phase-one credential).
--
-- `record_json` is the service record (name, Argon2id PHC of the password, source-address
-- allowlist, partitions, nodes, lockout settings) written by the engine; it holds no secret
-- that is usable as is (only the password hash). `failures` and `locked_until` are the clear
-- lockout counters, written by gateways directly without changing `version`.

CREATE TABLE services (
    name         TEXT    NOT NULL UNIQUE,
    service_user TEXT    PRIMARY KEY NOT NULL,
    record_json  BLOB    NOT NULL,
    failures     INTEGER NOT NULL DEFAULT 0,
    locked_until INTEGER NOT NULL DEFAULT 0,
    version      INTEGER NOT NULL
);
