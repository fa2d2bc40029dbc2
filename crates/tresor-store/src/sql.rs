//! Pieces of SQL that both backends share, so that a column added to a table is added once.
//!
//! The column lists are macros rather than constants because they are spliced into larger
//! statements with `concat!`, which only takes literals.

/// The columns of `objects`, in the order the backends' `object_from_row` reads them.
macro_rules! object_columns {
    () => {
        "partition_id, object_id, version, class, key_type, label, ckaid, uuid, usage_count, sealed"
    };
}

/// The columns of `partitions`, in the order the backends' `partition_from_row` reads them.
macro_rules! partition_columns {
    () => {
        "id, name, created, version, sealed, so_failures, user_failures"
    };
}

/// The columns of `audit`, in the order the backends' `audit_from_row` reads them.
macro_rules! audit_columns {
    () => {
        "partition_id, seq, time_ns, actor, action, object_id, detail, prev_hash, hash"
    };
}

/// The columns of `services`, in the order the backends' `service_from_row` reads them.
macro_rules! service_columns {
    () => {
        "name, service_user, record_json, failures, locked_until, version"
    };
}

/// The columns of `requests`, in the order the backends' `request_from_row` reads them.
macro_rules! request_columns {
    () => {
        "id, tenant, kind, status, key_name, request_json, approvals_json, result, error, \
         created, updated, executed, expires, version"
    };
}

/// The columns of `checkpoints`.
macro_rules! checkpoint_columns {
    () => {
        "partition_id, seq, hash, time_ns, signer_cert, signature"
    };
}

/// Defines, in the module that invokes it, `get` (one column, with an error naming it) and the
/// `*_from_row` readers of every table for the backend whose row type is `$row` and whose
/// database is `$db`: the field lists stand here once, next to the column lists above.
macro_rules! row_readers {
    ($row:ty, $db:ty) => {
        /// One column of a row, with an error naming the column.
        pub(super) fn get<'r, T>(row: &'r $row, column: &str) -> $crate::StoreResult<T>
        where
            T: sqlx::Decode<'r, $db> + sqlx::Type<$db>,
        {
            sqlx::Row::try_get(row, column)
                .map_err(|e| $crate::StoreError::Database(format!("decoding column {column}: {e}")))
        }

        pub(super) fn partition_from_row(r: &$row) -> $crate::StoreResult<$crate::PartitionRow> {
            Ok($crate::PartitionRow {
                id: get(r, "id")?,
                name: get(r, "name")?,
                created: get(r, "created")?,
                version: get(r, "version")?,
                sealed: get(r, "sealed")?,
                so_failures: get(r, "so_failures")?,
                user_failures: get(r, "user_failures")?,
            })
        }

        pub(super) fn object_from_row(r: &$row) -> $crate::StoreResult<$crate::ObjectRow> {
            Ok($crate::ObjectRow {
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

        pub(super) fn service_from_row(r: &$row) -> $crate::StoreResult<$crate::ServiceRow> {
            Ok($crate::ServiceRow {
                name: get(r, "name")?,
                service_user: get(r, "service_user")?,
                record_json: get(r, "record_json")?,
                failures: get(r, "failures")?,
                locked_until: get(r, "locked_until")?,
                version: get(r, "version")?,
            })
        }

        pub(super) fn request_from_row(r: &$row) -> $crate::StoreResult<$crate::RequestRow> {
            Ok($crate::RequestRow {
                id: get(r, "id")?,
                tenant: get(r, "tenant")?,
                kind: get(r, "kind")?,
                status: get(r, "status")?,
                key_name: get(r, "key_name")?,
                request_json: get(r, "request_json")?,
                approvals_json: get(r, "approvals_json")?,
                result: get(r, "result")?,
                error: get(r, "error")?,
                created: get(r, "created")?,
                updated: get(r, "updated")?,
                executed: get(r, "executed")?,
                expires: get(r, "expires")?,
                version: get(r, "version")?,
            })
        }

        pub(super) fn checkpoint_from_row(r: &$row) -> $crate::StoreResult<$crate::CheckpointRow> {
            Ok($crate::CheckpointRow {
                partition_id: get(r, "partition_id")?,
                seq: get(r, "seq")?,
                hash: get(r, "hash")?,
                time_ns: get(r, "time_ns")?,
                signer_cert: get(r, "signer_cert")?,
                signature: get(r, "signature")?,
            })
        }

        pub(super) fn audit_from_row(r: &$row) -> $crate::StoreResult<$crate::AuditRow> {
            Ok($crate::AuditRow {
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
    };
}

/// `$query` with the values of the `ObjectFilter` `$filter` bound in the order the backends'
/// `find_objects_sql` numbers them (only the conditions the filter sets).
macro_rules! bind_object_filter {
    ($query:expr, $filter:expr) => {{
        let f = $filter;
        let mut q = $query;
        if let Some(class) = f.class {
            q = q.bind(class);
        }
        if let Some(key_type) = f.key_type {
            q = q.bind(key_type);
        }
        if let Some(label) = &f.label {
            q = q.bind(label.clone());
        }
        if let Some(ckaid) = &f.ckaid {
            q = q.bind(ckaid.clone());
        }
        if let Some(uuid) = &f.uuid {
            q = q.bind(uuid.clone());
        }
        if let Some(after) = f.after {
            q = q.bind(after);
        }
        if let Some(limit) = f.limit {
            q = q.bind(i64::from(limit));
        }
        q
    }};
}

/// The states a REST request does not leave (the ones `delete_finished_requests` may remove).
pub(crate) const FINISHED_REQUEST_STATES: [&str; 5] =
    ["EXECUTED", "FAILED", "EXPIRED", "REJECTED", "CANCELLED"];
