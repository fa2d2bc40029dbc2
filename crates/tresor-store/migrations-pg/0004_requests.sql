-- The REST API's request table: one row per request id the REST face hands out. See
-- migrations/0004_requests.sql for the workflow; here too a row moves through its statuses by
-- compare-and-swap on `version`, so two REST nodes never execute a request twice.

CREATE TABLE requests (
    id             TEXT COLLATE "C" PRIMARY KEY,      -- UUID, as handed to the client
    tenant         TEXT COLLATE "C" NOT NULL,         -- partition name of the caller
    kind           TEXT COLLATE "C" NOT NULL,         -- Sign, Decrypt, UnWrap, Block, UnBlock, Modify, …
    status         TEXT COLLATE "C" NOT NULL,         -- PENDING, APPROVED, EXECUTED, FAILED, EXPIRED, REJECTED, CANCELLED
    key_name       TEXT COLLATE "C",                  -- the key the request names, if any
    request_json   BYTEA  NOT NULL,                   -- the request (async: exact bytes to execute)
    approvals_json BYTEA  NOT NULL DEFAULT '[]',      -- approvals collected so far (async workflow)
    result         BYTEA,                             -- what the client may fetch (base64 text), or NULL
    error          TEXT COLLATE "C",                  -- the error body of a FAILED request, JSON
    created        BIGINT NOT NULL,                   -- Unix seconds
    updated        BIGINT NOT NULL,                   -- Unix seconds
    executed       BIGINT,                            -- Unix seconds the HSM ran it (executionTime)
    expires        BIGINT,                            -- Unix seconds after which PENDING becomes EXPIRED
    version        BIGINT NOT NULL                    -- 1 on insert, +1 per update (compare-and-swap)
);

CREATE INDEX requests_tenant_status ON requests (tenant, status, created);
