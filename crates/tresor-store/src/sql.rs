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

/// The states a REST request does not leave (the ones `delete_finished_requests` may remove).
pub(crate) const FINISHED_REQUEST_STATES: [&str; 5] =
    ["EXECUTED", "FAILED", "EXPIRED", "REJECTED", "CANCELLED"];
