-- The service directory: one row per service user (the gateway's phase-one credential).
-- See migrations/0003_services.sql for what the columns hold; `failures` and `locked_until` are
-- written by gateways directly without changing `version`.

CREATE TABLE services (
    name         TEXT COLLATE "C" NOT NULL CONSTRAINT services_name_unique UNIQUE,
    service_user TEXT COLLATE "C" PRIMARY KEY,
    record_json  BYTEA  NOT NULL,
    failures     BIGINT NOT NULL DEFAULT 0,
    locked_until BIGINT NOT NULL DEFAULT 0,
    version      BIGINT NOT NULL
);
