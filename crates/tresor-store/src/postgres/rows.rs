//! Reading the PostgreSQL store's rows into the crate's row types.

use sqlx::postgres::PgRow;
use sqlx::Row;

use crate::{
    AuditRow, CheckpointRow, ObjectRow, PartitionRow, RequestRow, ServiceRow, StoreError,
    StoreResult,
};

/// One column of a row, with an error naming the column.
pub(super) fn get<'r, T>(row: &'r PgRow, column: &str) -> StoreResult<T>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    row.try_get(column)
        .map_err(|e| StoreError::Database(format!("decoding column {column}: {e}")))
}

pub(super) fn partition_from_row(r: &PgRow) -> StoreResult<PartitionRow> {
    Ok(PartitionRow {
        id: get(r, "id")?,
        name: get(r, "name")?,
        created: get(r, "created")?,
        version: get(r, "version")?,
        sealed: get(r, "sealed")?,
        so_failures: get(r, "so_failures")?,
        user_failures: get(r, "user_failures")?,
    })
}

pub(super) fn object_from_row(r: &PgRow) -> StoreResult<ObjectRow> {
    Ok(ObjectRow {
        partition_id: get(r, "partition_id")?,
        object_id: get(r, "object_id")?,
        version: get(r, "version")?,
        class: get(r, "class")?,
        key_type: get(r, "key_type")?,
        label: get(r, "label")?,
        ckaid: get(r, "ckaid")?,
        uuid: get(r, "uuid")?,
        usage_count: get(r, "usage_count")?,
        sealed: get(r, "sealed")?,
    })
}

pub(super) fn service_from_row(r: &PgRow) -> StoreResult<ServiceRow> {
    Ok(ServiceRow {
        name: get(r, "name")?,
        service_user: get(r, "service_user")?,
        record_json: get(r, "record_json")?,
        failures: get(r, "failures")?,
        locked_until: get(r, "locked_until")?,
        version: get(r, "version")?,
    })
}

pub(super) fn request_from_row(row: &PgRow) -> StoreResult<RequestRow> {
    Ok(RequestRow {
        id: get(row, "id")?,
        tenant: get(row, "tenant")?,
        kind: get(row, "kind")?,
        status: get(row, "status")?,
        key_name: get(row, "key_name")?,
        request_json: get(row, "request_json")?,
        approvals_json: get(row, "approvals_json")?,
        result: get(row, "result")?,
        error: get(row, "error")?,
        created: get(row, "created")?,
        updated: get(row, "updated")?,
        executed: get(row, "executed")?,
        expires: get(row, "expires")?,
        version: get(row, "version")?,
    })
}

pub(super) fn checkpoint_from_row(r: &PgRow) -> StoreResult<CheckpointRow> {
    Ok(CheckpointRow {
        partition_id: get(r, "partition_id")?,
        seq: get(r, "seq")?,
        hash: get(r, "hash")?,
        time_ns: get(r, "time_ns")?,
        signer_cert: get(r, "signer_cert")?,
        signature: get(r, "signature")?,
    })
}

/// The last audit entry of a partition (`$1` = partition id).
pub(super) const AUDIT_HEAD_SQL: &str = concat!(
    "SELECT ",
    audit_columns!(),
    " FROM audit WHERE partition_id = $1 ORDER BY seq DESC LIMIT 1"
);

pub(super) fn audit_from_row(r: &PgRow) -> StoreResult<AuditRow> {
    Ok(AuditRow {
        partition_id: get(r, "partition_id")?,
        seq: get(r, "seq")?,
        time_ns: get(r, "time_ns")?,
        actor: get(r, "actor")?,
        action: get(r, "action")?,
        object_id: get(r, "object_id")?,
        detail: get(r, "detail")?,
        prev_hash: get(r, "prev_hash")?,
        hash: get(r, "hash")?,
    })
}
