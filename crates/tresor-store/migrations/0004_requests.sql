-- The REST API's request table: one row per request id the REST face hands out.
--
-- Synchronous requests (`/v1/synchronousSign`, …) are recorded as EXECUTED or FAILED when they
-- answer, so `/v1/request/{id}` can report them. The asynchronous approval workflow (`/v1/sign`,
-- `/v1/approval`, tasks) uses the same row: it is inserted PENDING with the exact serialized
-- request in `request_json` (what approvers sign is what runs), approvals collect in
-- `approvals_json`, and the row moves PENDING → APPROVED → EXECUTED (or FAILED, EXPIRED,
-- REJECTED, CANCELLED) by compare-and-swap on `version`, so two REST nodes never execute it twice.
--
-- `tenant` is the partition the authenticated caller is bound to; every read filters on it.
-- `result` holds only what the REST API returns for the request (a signature, a wrapped key,
-- a one-time code); plaintexts of synchronous decryptions are never stored.

CREATE TABLE requests (
    id             TEXT    PRIMARY KEY NOT NULL,   -- UUID, as handed to the client
    tenant         TEXT    NOT NULL,               -- partition name of the caller
    kind           TEXT    NOT NULL,               -- Sign, Decrypt, UnWrap, Block, UnBlock, Modify, …
    status         TEXT    NOT NULL,               -- PENDING, APPROVED, EXECUTED, FAILED, EXPIRED, REJECTED, CANCELLED
    key_name       TEXT,                           -- the key the request names, if any
    request_json   BLOB    NOT NULL,               -- the request (async: exact bytes to execute)
    approvals_json BLOB    NOT NULL DEFAULT '[]',  -- approvals collected so far (async workflow)
    result         BLOB,                           -- what the client may fetch (base64 text), or NULL
    error          TEXT,                           -- the error body of a FAILED request, JSON
    created        INTEGER NOT NULL,               -- Unix seconds
    updated        INTEGER NOT NULL,               -- Unix seconds
    executed       INTEGER,                        -- Unix seconds the HSM ran it (executionTime)
    expires        INTEGER,                        -- Unix seconds after which PENDING becomes EXPIRED
    version        INTEGER NOT NULL                -- 1 on insert, +1 per update (compare-and-swap)
);

CREATE INDEX requests_tenant_status ON requests (tenant, status, created);
