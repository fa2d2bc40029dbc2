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

/// Which uniqueness rule a write broke, where the store names it in its error (each backend
/// tells it from its own error: SQLite's message, PostgreSQL's constraint name).
pub(crate) enum Unique {
    PartitionName,
    ServiceName,
    ServiceUser,
}

/// The database's report of a broken uniqueness rule, if `e` is one.
pub(crate) fn unique_violation(e: &sqlx::Error) -> Option<&dyn sqlx::error::DatabaseError> {
    match e {
        sqlx::Error::Database(d) if d.kind() == sqlx::error::ErrorKind::UniqueViolation => {
            Some(&**d)
        }
        _ => None,
    }
}

/// The error of a compare-and-swap that matched no row: `NotFound` if the row is absent,
/// else `Conflict` naming the stored and the expected version.
pub(crate) fn cas_miss(
    what: impl std::fmt::Display,
    stored: Option<i64>,
    expected: i64,
) -> crate::StoreError {
    match stored {
        None => crate::StoreError::NotFound(what.to_string()),
        Some(v) => {
            crate::StoreError::Conflict(format!("{what} version is {v}, expected {expected}"))
        }
    }
}

/// Map an error of a write: uniqueness violations become `Conflict`, a missing referenced row
/// (an object of an unknown partition) `NotFound`, anything else `Database`.
pub(crate) fn write_error(what: impl std::fmt::Display, e: sqlx::Error) -> crate::StoreError {
    if let sqlx::Error::Database(d) = &e {
        match d.kind() {
            sqlx::error::ErrorKind::UniqueViolation => {
                return crate::StoreError::Conflict(format!(
                    "{what} already exists ({})",
                    d.message()
                ));
            }
            sqlx::error::ErrorKind::ForeignKeyViolation => {
                return crate::StoreError::NotFound(format!(
                    "{what}: the partition does not exist ({})",
                    d.message()
                ));
            }
            _ => {}
        }
    }
    db_error(what, e)
}

/// A database failure while doing `what`.
pub(crate) fn db_error(what: impl std::fmt::Display, e: sqlx::Error) -> crate::StoreError {
    crate::StoreError::Database(format!("{what}: {e}"))
}

/// Defines, in the module that invokes it, `apply` (one [`crate::Mutation`] inside the open
/// write transaction) and `object_version` for the backend whose connection type is `conn`:
/// the same statements for both backends (`$N` placeholders, see [`store_impl`]). The backend
/// gives its error type (`error`, which a `StoreError` converts into), how it maps a failed
/// write (`write`) and a failed read (`read`) to it, how it tells which uniqueness rule a write
/// broke (`unique`: `fn(&sqlx::Error) -> Option<Unique>`, usually over [`unique_violation`]), and what locks the partition row
/// before a partition is deleted (`lock`: a suffix of the `SELECT` that finds it).
macro_rules! apply_mutation {
    (
        $vis:vis,
        conn = $conn:ty,
        error = $err:ty,
        write = $write:path,
        read = $read:path,
        unique = $unique:path,
        lock = $lock:literal $(,)?
    ) => {
        /// Apply one mutation inside the open transaction.
        $vis async fn apply(conn: &mut $conn, m: &$crate::Mutation) -> Result<(), $err> {
            use $crate::sql::{cas_miss, Unique};
            use $crate::{Mutation, StoreError};
            /// A `StoreError` as this backend's error.
            fn fail(e: StoreError) -> $err {
                <$err as From<StoreError>>::from(e)
            }
            match m {
                Mutation::InsertCluster { key, value } => {
                    sqlx::query("INSERT INTO cluster (key, value) VALUES ($1, $2)")
                        .bind(key.as_str())
                        .bind(value.as_slice())
                        .execute(&mut *conn)
                        .await
                        .map_err(|e| $write(format_args!("cluster setting {key:?}"), e))?;
                }
                Mutation::PutCluster { key, value } => {
                    sqlx::query(
                        "INSERT INTO cluster (key, value) VALUES ($1, $2) \
                         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    )
                    .bind(key.as_str())
                    .bind(value.as_slice())
                    .execute(&mut *conn)
                    .await
                    .map_err(|e| $write(format_args!("cluster setting {key:?}"), e))?;
                }
                Mutation::InsertPartition(p) => {
                    sqlx::query(concat!(
                        "INSERT INTO partitions (",
                        partition_columns!(),
                        ") VALUES ($1, $2, $3, $4, $5, $6, $7)"
                    ))
                    .bind(p.id)
                    .bind(p.name.as_str())
                    .bind(p.created)
                    .bind(p.version)
                    .bind(p.sealed.as_slice())
                    .bind(p.so_failures)
                    .bind(p.user_failures)
                    .execute(&mut *conn)
                    .await
                    .map_err(|e| match $unique(&e) {
                        Some(Unique::PartitionName) => fail(StoreError::Conflict(format!(
                            "partition name {:?} already exists",
                            p.name
                        ))),
                        _ => $write(format_args!("partition {} ({:?})", p.id, p.name), e),
                    })?;
                }
                Mutation::UpdatePartition {
                    row,
                    expected_version,
                } => {
                    let done = sqlx::query(
                        "UPDATE partitions SET sealed = $1, version = $2 \
                         WHERE id = $3 AND version = $4",
                    )
                    .bind(row.sealed.as_slice())
                    .bind(row.version)
                    .bind(row.id)
                    .bind(*expected_version)
                    .execute(&mut *conn)
                    .await
                    .map_err(|e| $write(format_args!("updating partition {}", row.id), e))?;
                    if done.rows_affected() == 0 {
                        let stored: Option<i64> =
                            sqlx::query_scalar("SELECT version FROM partitions WHERE id = $1")
                                .bind(row.id)
                                .fetch_optional(&mut *conn)
                                .await
                                .map_err(|e| {
                                    $read(
                                        format_args!("reading the version of partition {}", row.id),
                                        e,
                                    )
                                })?;
                        return Err(fail(cas_miss(
                            format_args!("partition {}", row.id),
                            stored,
                            *expected_version,
                        )));
                    }
                }
                Mutation::SetPinFailures {
                    partition_id,
                    so_failures,
                    user_failures,
                } => {
                    let done = sqlx::query(
                        "UPDATE partitions SET so_failures = $1, user_failures = $2 WHERE id = $3",
                    )
                    .bind(*so_failures)
                    .bind(*user_failures)
                    .bind(*partition_id)
                    .execute(&mut *conn)
                    .await
                    .map_err(|e| {
                        $write(
                            format_args!("PIN failure counters of partition {partition_id}"),
                            e,
                        )
                    })?;
                    if done.rows_affected() == 0 {
                        return Err(fail(StoreError::NotFound(format!(
                            "partition {partition_id}"
                        ))));
                    }
                }
                Mutation::DeletePartition { partition_id } => {
                    // The partition row first (locked where the backend can), then its objects
                    // explicitly, so that nothing depends on ON DELETE CASCADE support.
                    let found: Option<i64> = sqlx::query_scalar(concat!(
                        "SELECT id FROM partitions WHERE id = $1",
                        $lock
                    ))
                    .bind(*partition_id)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(|e| $read(format_args!("finding partition {partition_id}"), e))?;
                    if found.is_none() {
                        return Err(fail(StoreError::NotFound(format!(
                            "partition {partition_id}"
                        ))));
                    }
                    sqlx::query("DELETE FROM objects WHERE partition_id = $1")
                        .bind(*partition_id)
                        .execute(&mut *conn)
                        .await
                        .map_err(|e| {
                            $write(
                                format_args!("deleting the objects of partition {partition_id}"),
                                e,
                            )
                        })?;
                    sqlx::query("DELETE FROM partitions WHERE id = $1")
                        .bind(*partition_id)
                        .execute(&mut *conn)
                        .await
                        .map_err(|e| {
                            $write(format_args!("deleting partition {partition_id}"), e)
                        })?;
                }
                Mutation::InsertObject(o) => {
                    sqlx::query(concat!(
                        "INSERT INTO objects (",
                        object_columns!(),
                        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
                    ))
                    .bind(o.partition_id)
                    .bind(o.object_id)
                    .bind(o.version)
                    .bind(o.class)
                    .bind(o.key_type)
                    .bind(o.label.as_str())
                    .bind(o.ckaid.as_slice())
                    .bind(o.uuid.as_str())
                    .bind(o.usage_count)
                    .bind(o.sealed.as_slice())
                    .execute(&mut *conn)
                    .await
                    .map_err(|e| {
                        $write(
                            format_args!("object {} of partition {}", o.object_id, o.partition_id),
                            e,
                        )
                    })?;
                }
                Mutation::UpdateObject {
                    row: o,
                    expected_version,
                } => {
                    // usage_count never decreases: see the doc of `Mutation::UpdateObject`.
                    let done = sqlx::query(
                        "UPDATE objects SET version = $1, class = $2, key_type = $3, label = $4, \
                         ckaid = $5, uuid = $6, \
                         usage_count = CASE WHEN usage_count > $7 THEN usage_count ELSE $7 END, \
                         sealed = $8 WHERE partition_id = $9 AND object_id = $10 AND version = $11",
                    )
                    .bind(o.version)
                    .bind(o.class)
                    .bind(o.key_type)
                    .bind(o.label.as_str())
                    .bind(o.ckaid.as_slice())
                    .bind(o.uuid.as_str())
                    .bind(o.usage_count)
                    .bind(o.sealed.as_slice())
                    .bind(o.partition_id)
                    .bind(o.object_id)
                    .bind(*expected_version)
                    .execute(&mut *conn)
                    .await
                    .map_err(|e| {
                        $write(
                            format_args!(
                                "updating object {} of partition {}",
                                o.object_id, o.partition_id
                            ),
                            e,
                        )
                    })?;
                    if done.rows_affected() == 0 {
                        let stored = object_version(conn, o.partition_id, o.object_id).await?;
                        return Err(fail(cas_miss(
                            format_args!("object {}", o.object_id),
                            stored,
                            *expected_version,
                        )));
                    }
                }
                Mutation::DeleteObject {
                    partition_id,
                    object_id,
                    expected_version,
                } => {
                    let done = sqlx::query(
                        "DELETE FROM objects \
                         WHERE partition_id = $1 AND object_id = $2 AND version = $3",
                    )
                    .bind(*partition_id)
                    .bind(*object_id)
                    .bind(*expected_version)
                    .execute(&mut *conn)
                    .await
                    .map_err(|e| {
                        $write(
                            format_args!("deleting object {object_id} of partition {partition_id}"),
                            e,
                        )
                    })?;
                    if done.rows_affected() == 0 {
                        let stored = object_version(conn, *partition_id, *object_id).await?;
                        return Err(fail(cas_miss(
                            format_args!("object {object_id}"),
                            stored,
                            *expected_version,
                        )));
                    }
                }
                Mutation::AddUsage {
                    partition_id,
                    object_id,
                    n,
                } => {
                    // A missing object is not an error: it may have been deleted meanwhile.
                    sqlx::query(
                        "UPDATE objects SET usage_count = usage_count + $1 \
                         WHERE partition_id = $2 AND object_id = $3",
                    )
                    .bind(*n)
                    .bind(*partition_id)
                    .bind(*object_id)
                    .execute(&mut *conn)
                    .await
                    .map_err(|e| {
                        $write(
                            format_args!(
                                "usage count of object {object_id} of partition {partition_id}"
                            ),
                            e,
                        )
                    })?;
                }
                Mutation::AppendAudit(a) => {
                    sqlx::query(concat!(
                        "INSERT INTO audit (",
                        audit_columns!(),
                        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
                    ))
                    .bind(a.partition_id)
                    .bind(a.seq)
                    .bind(a.time_ns)
                    .bind(a.actor.as_str())
                    .bind(a.action.as_str())
                    .bind(a.object_id)
                    .bind(a.detail.as_str())
                    .bind(a.prev_hash.as_slice())
                    .bind(a.hash.as_slice())
                    .execute(&mut *conn)
                    .await
                    .map_err(|e| {
                        $write(
                            format_args!("audit entry {} of partition {}", a.seq, a.partition_id),
                            e,
                        )
                    })?;
                }
                Mutation::PutCheckpoint(c) => {
                    sqlx::query(concat!(
                        "INSERT INTO checkpoints (",
                        checkpoint_columns!(),
                        ") VALUES ($1, $2, $3, $4, $5, $6)"
                    ))
                    .bind(c.partition_id)
                    .bind(c.seq)
                    .bind(c.hash.as_slice())
                    .bind(c.time_ns)
                    .bind(c.signer_cert.as_slice())
                    .bind(c.signature.as_slice())
                    .execute(&mut *conn)
                    .await
                    .map_err(|e| {
                        $write(
                            format_args!("checkpoint {} of partition {}", c.seq, c.partition_id),
                            e,
                        )
                    })?;
                }
                Mutation::PutService(sv) if sv.version == 1 => {
                    sqlx::query(concat!(
                        "INSERT INTO services (",
                        service_columns!(),
                        ") VALUES ($1, $2, $3, $4, $5, $6)"
                    ))
                    .bind(sv.name.as_str())
                    .bind(sv.service_user.as_str())
                    .bind(sv.record_json.as_slice())
                    .bind(sv.failures)
                    .bind(sv.locked_until)
                    .bind(sv.version)
                    .execute(&mut *conn)
                    .await
                    .map_err(|e| match $unique(&e) {
                        Some(Unique::ServiceName) => fail(StoreError::Conflict(format!(
                            "service name {:?} already exists",
                            sv.name
                        ))),
                        Some(Unique::ServiceUser) => fail(StoreError::Conflict(format!(
                            "service user {:?} already exists",
                            sv.service_user
                        ))),
                        _ => $write(format_args!("service {:?}", sv.service_user), e),
                    })?;
                }
                Mutation::PutService(sv) => {
                    let expected = sv.version - 1;
                    let done = sqlx::query(
                        "UPDATE services SET name = $1, record_json = $2, failures = $3, \
                         locked_until = $4, version = $5 WHERE service_user = $6 AND version = $7",
                    )
                    .bind(sv.name.as_str())
                    .bind(sv.record_json.as_slice())
                    .bind(sv.failures)
                    .bind(sv.locked_until)
                    .bind(sv.version)
                    .bind(sv.service_user.as_str())
                    .bind(expected)
                    .execute(&mut *conn)
                    .await
                    .map_err(|e| match $unique(&e) {
                        Some(Unique::ServiceName) => fail(StoreError::Conflict(format!(
                            "service name {:?} already exists",
                            sv.name
                        ))),
                        _ => $write(format_args!("updating service {:?}", sv.service_user), e),
                    })?;
                    if done.rows_affected() == 0 {
                        let stored: Option<i64> = sqlx::query_scalar(
                            "SELECT version FROM services WHERE service_user = $1",
                        )
                        .bind(sv.service_user.as_str())
                        .fetch_optional(&mut *conn)
                        .await
                        .map_err(|e| {
                            $read(
                                format_args!(
                                    "reading the version of service {:?}",
                                    sv.service_user
                                ),
                                e,
                            )
                        })?;
                        return Err(fail(cas_miss(
                            format_args!("service {:?}", sv.service_user),
                            stored,
                            expected,
                        )));
                    }
                }
                Mutation::DeleteService { service_user } => {
                    let done = sqlx::query("DELETE FROM services WHERE service_user = $1")
                        .bind(service_user.as_str())
                        .execute(&mut *conn)
                        .await
                        .map_err(|e| {
                            $write(format_args!("deleting service {service_user:?}"), e)
                        })?;
                    if done.rows_affected() == 0 {
                        return Err(fail(StoreError::NotFound(format!(
                            "service {service_user:?}"
                        ))));
                    }
                }
            }
            Ok(())
        }

        /// The version of an object, read inside the write transaction after a CAS miss.
        async fn object_version(
            conn: &mut $conn,
            partition_id: i64,
            object_id: i64,
        ) -> Result<Option<i64>, $err> {
            sqlx::query_scalar(
                "SELECT version FROM objects WHERE partition_id = $1 AND object_id = $2",
            )
            .bind(partition_id)
            .bind(object_id)
            .fetch_optional(conn)
            .await
            .map_err(|e| {
                $read(
                    format_args!(
                        "reading the version of object {object_id} of partition {partition_id}"
                    ),
                    e,
                )
            })
        }
    };
}

/// A batch for `Store::insert_requests` is refused whole if any row is not a new one.
pub(crate) fn check_new_requests(rows: &[crate::RequestRow]) -> crate::StoreResult<()> {
    match rows.iter().find(|r| r.version != 1) {
        Some(r) => Err(crate::StoreError::Conflict(format!(
            "request {:?}: a new request has version 1, not {}",
            r.id, r.version
        ))),
        None => Ok(()),
    }
}

/// Defines, in the module that invokes it, the statements of the writes outside `commit` (the
/// REST request table and the gateways' lockout counters) for the backend whose database is
/// `db`, with the same `error`, `write` and `read` as [`apply_mutation`]; `skip_locked` ends
/// the `SELECT` that picks finished requests to delete (PostgreSQL: rows another node is
/// deleting are left to it). Each backend wraps them in its own locking or retries.
macro_rules! other_writes {
    (
        db = $db:ty,
        error = $err:ty,
        write = $write:path,
        read = $read:path,
        skip_locked = $skip:literal $(,)?
    ) => {
        /// Insert new requests (all of them or none: run inside the caller's transaction).
        async fn insert_request_rows(
            conn: &mut <$db as sqlx::Database>::Connection,
            rows: &[$crate::RequestRow],
        ) -> Result<(), $err> {
            // 256 rows × 14 parameters per statement: under SQLite's limit of 32,766 and
            // PostgreSQL's of 65,535.
            for chunk in rows.chunks(256) {
                let mut qb: sqlx::QueryBuilder<$db> = sqlx::QueryBuilder::new(concat!(
                    "INSERT INTO requests (",
                    request_columns!(),
                    ") "
                ));
                qb.push_values(chunk, |mut b, row| {
                    b.push_bind(&row.id)
                        .push_bind(&row.tenant)
                        .push_bind(&row.kind)
                        .push_bind(&row.status)
                        .push_bind(&row.key_name)
                        .push_bind(&row.request_json)
                        .push_bind(&row.approvals_json)
                        .push_bind(&row.result)
                        .push_bind(&row.error)
                        .push_bind(row.created)
                        .push_bind(row.updated)
                        .push_bind(row.executed)
                        .push_bind(row.expires)
                        .push_bind(row.version);
                });
                qb.build()
                    .execute(&mut *conn)
                    .await
                    .map_err(|e| $write(format_args!("{} requests", chunk.len()), e))?;
            }
            Ok(())
        }

        /// Compare-and-swap of one request on its version.
        async fn update_request_row(
            pool: &sqlx::Pool<$db>,
            row: &$crate::RequestRow,
        ) -> Result<(), $err> {
            let done = sqlx::query(
                "UPDATE requests SET status = $1, key_name = $2, request_json = $3, \
                 approvals_json = $4, result = $5, error = $6, updated = $7, executed = $8, \
                 expires = $9, version = $10 \
                 WHERE id = $11 AND tenant = $12 AND version = $13",
            )
            .bind(&row.status)
            .bind(&row.key_name)
            .bind(&row.request_json)
            .bind(&row.approvals_json)
            .bind(&row.result)
            .bind(&row.error)
            .bind(row.updated)
            .bind(row.executed)
            .bind(row.expires)
            .bind(row.version)
            .bind(&row.id)
            .bind(&row.tenant)
            .bind(row.version - 1)
            .execute(pool)
            .await
            .map_err(|e| $write(format_args!("request {:?}", row.id), e))?;
            if done.rows_affected() == 1 {
                return Ok(());
            }
            let stored: Option<i64> =
                sqlx::query_scalar("SELECT version FROM requests WHERE id = $1 AND tenant = $2")
                    .bind(&row.id)
                    .bind(&row.tenant)
                    .fetch_optional(pool)
                    .await
                    .map_err(|e| $read(format_args!("request {:?}", row.id), e))?;
            Err(<$err as From<$crate::StoreError>>::from($crate::sql::cas_miss(
                format_args!("request {:?}", row.id),
                stored,
                row.version - 1,
            )))
        }

        /// Delete up to `limit` finished requests of `tenant` created before `created_before`.
        async fn delete_finished_rows(
            pool: &sqlx::Pool<$db>,
            tenant: &str,
            created_before: i64,
            limit: u32,
        ) -> Result<u64, $err> {
            // One status at a time, so each lookup is a range of the (tenant, status, created)
            // index.
            let mut gone = 0u64;
            for status in $crate::sql::FINISHED_REQUEST_STATES {
                let left = u64::from(limit).saturating_sub(gone);
                if left == 0 {
                    break;
                }
                let done = sqlx::query(concat!(
                    "DELETE FROM requests WHERE id IN (SELECT id FROM requests \
                     WHERE tenant = $1 AND status = $2 AND created < $3 LIMIT $4",
                    $skip,
                    ")"
                ))
                .bind(tenant)
                .bind(status)
                .bind(created_before)
                .bind(i64::try_from(left).unwrap_or(i64::MAX))
                .execute(pool)
                .await
                .map_err(|e| {
                    $write(format_args!("deleting finished requests of {tenant:?}"), e)
                })?;
                gone += done.rows_affected();
            }
            Ok(gone)
        }

        /// Set a service's lockout counters (one statement on one row: atomic by itself).
        async fn set_failure_counters(
            pool: &sqlx::Pool<$db>,
            service_user: &str,
            failures: i64,
            locked_until: i64,
        ) -> Result<(), $err> {
            let done = sqlx::query(
                "UPDATE services SET failures = $1, locked_until = $2 WHERE service_user = $3",
            )
            .bind(failures)
            .bind(locked_until)
            .bind(service_user)
            .execute(pool)
            .await
            .map_err(|e| {
                $write(
                    format_args!("lockout counters of service {service_user:?}"),
                    e,
                )
            })?;
            if done.rows_affected() == 0 {
                return Err(<$err as From<$crate::StoreError>>::from(
                    $crate::StoreError::NotFound(format!("service {service_user:?}")),
                ));
            }
            Ok(())
        }
    };
}

/// The states a REST request does not leave (the ones `delete_finished_requests` may remove).
pub(crate) const FINISHED_REQUEST_STATES: [&str; 5] =
    ["EXECUTED", "FAILED", "EXPIRED", "REJECTED", "CANCELLED"];

/// The `Store` implementation of a backend: the reads, written once here (the same SQL for
/// both: `$N` placeholders, which sqlx's SQLite driver binds by number as PostgreSQL does), and
/// the backend's own methods (writes, change notifications) given as the second argument.
/// Invoked in the backend's module, where `get`, `db_error`, the `*_from_row` readers and the
/// row and error types resolve.
macro_rules! store_impl {
    ($store:ty, { $($own:tt)* }) => {
        #[async_trait::async_trait]
        impl $crate::Store for $store {
            async fn cluster_get(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
                sqlx::query_scalar("SELECT value FROM cluster WHERE key = $1")
                    .bind(key)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(|e| db_error(format_args!("reading cluster setting {key:?}"), e))
            }

            async fn partitions(&self) -> StoreResult<Vec<PartitionRow>> {
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    partition_columns!(),
                    " FROM partitions ORDER BY name"
                ))
                .fetch_all(&self.pool)
                .await
                .map_err(|e| db_error("listing partitions", e))?;
                rows.iter().map(partition_from_row).collect()
            }

            async fn partition_versions(&self) -> StoreResult<Vec<(i64, i64)>> {
                sqlx::query_as::<_, (i64, i64)>("SELECT id, version FROM partitions")
                    .fetch_all(&self.pool)
                    .await
                    .map_err(|e| db_error("reading partition versions", e))
            }

            async fn partition(&self, id: i64) -> StoreResult<Option<PartitionRow>> {
                let row = sqlx::query(concat!(
                    "SELECT ",
                    partition_columns!(),
                    " FROM partitions WHERE id = $1"
                ))
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| db_error(format_args!("reading partition {id}"), e))?;
                row.as_ref().map(partition_from_row).transpose()
            }

            async fn partition_by_name(&self, name: &str) -> StoreResult<Option<PartitionRow>> {
                let row = sqlx::query(concat!(
                    "SELECT ",
                    partition_columns!(),
                    " FROM partitions WHERE name = $1"
                ))
                .bind(name)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| db_error(format_args!("reading partition {name:?}"), e))?;
                row.as_ref().map(partition_from_row).transpose()
            }

            async fn object(&self, partition_id: i64, object_id: i64) -> StoreResult<Option<ObjectRow>> {
                let row = sqlx::query(concat!(
                    "SELECT ",
                    object_columns!(),
                    " FROM objects WHERE partition_id = $1 AND object_id = $2"
                ))
                .bind(partition_id)
                .bind(object_id)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| {
                    db_error(
                        format_args!("reading object {object_id} of partition {partition_id}"),
                        e,
                    )
                })?;
                row.as_ref().map(object_from_row).transpose()
            }

            async fn find_objects(
                &self,
                partition_id: i64,
                filter: &ObjectFilter,
            ) -> StoreResult<Vec<ObjectRow>> {
                let sql = $crate::sql::find_objects_sql(filter);
                let q = bind_object_filter!(sqlx::query(AssertSqlSafe(sql)).bind(partition_id), filter);
                let rows = q.fetch_all(&self.pool).await.map_err(|e| {
                    db_error(
                        format_args!("searching objects of partition {partition_id}"),
                        e,
                    )
                })?;
                rows.iter().map(object_from_row).collect()
            }

            async fn object_versions(&self, partition_id: i64) -> StoreResult<Vec<(i64, i64)>> {
                let rows = sqlx::query(
                    "SELECT object_id, version FROM objects WHERE partition_id = $1 ORDER BY object_id",
                )
                .bind(partition_id)
                .fetch_all(&self.pool)
                .await
                .map_err(|e| {
                    db_error(
                        format_args!("listing object versions of partition {partition_id}"),
                        e,
                    )
                })?;
                rows.iter()
                    .map(|r| Ok((get(r, "object_id")?, get(r, "version")?)))
                    .collect()
            }

            async fn count_objects(&self, partition_id: i64) -> StoreResult<i64> {
                sqlx::query_scalar("SELECT COUNT(*) FROM objects WHERE partition_id = $1")
                    .bind(partition_id)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(|e| {
                        db_error(
                            format_args!("counting objects of partition {partition_id}"),
                            e,
                        )
                    })
            }

            async fn audit_head(&self, partition_id: i64) -> StoreResult<Option<AuditRow>> {
                let row = sqlx::query(AUDIT_HEAD_SQL)
                    .bind(partition_id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(|e| {
                        db_error(
                            format_args!("reading the audit head of partition {partition_id}"),
                            e,
                        )
                    })?;
                row.as_ref().map(audit_from_row).transpose()
            }

            async fn audit_range(
                &self,
                partition_id: i64,
                from_seq: i64,
                limit: u32,
            ) -> StoreResult<Vec<AuditRow>> {
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    audit_columns!(),
                    " FROM audit WHERE partition_id = $1 AND seq >= $2 ORDER BY seq LIMIT $3"
                ))
                .bind(partition_id)
                .bind(from_seq)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(|e| {
                    db_error(
                        format_args!("reading the audit chain of partition {partition_id} from {from_seq}"),
                        e,
                    )
                })?;
                rows.iter().map(audit_from_row).collect()
            }

            async fn audit_partitions(&self) -> StoreResult<Vec<i64>> {
                sqlx::query_scalar("SELECT DISTINCT partition_id FROM audit ORDER BY partition_id")
                    .fetch_all(&self.pool)
                    .await
                    .map_err(|e| db_error("listing audit chains", e))
            }

            async fn checkpoints(&self, partition_id: i64) -> StoreResult<Vec<CheckpointRow>> {
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    checkpoint_columns!(),
                    " FROM checkpoints WHERE partition_id = $1 ORDER BY seq"
                ))
                .bind(partition_id)
                .fetch_all(&self.pool)
                .await
                .map_err(|e| {
                    db_error(
                        format_args!("listing checkpoints of partition {partition_id}"),
                        e,
                    )
                })?;
                rows.iter().map(checkpoint_from_row).collect()
            }

            async fn last_checkpoint(&self, partition_id: i64) -> StoreResult<Option<CheckpointRow>> {
                let row = sqlx::query(concat!(
                    "SELECT ",
                    checkpoint_columns!(),
                    " FROM checkpoints WHERE partition_id = $1 ORDER BY seq DESC LIMIT 1"
                ))
                .bind(partition_id)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| {
                    db_error(
                        format_args!("reading the last checkpoint of partition {partition_id}"),
                        e,
                    )
                })?;
                row.as_ref().map(checkpoint_from_row).transpose()
            }

            async fn services(&self) -> StoreResult<Vec<ServiceRow>> {
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    service_columns!(),
                    " FROM services ORDER BY name"
                ))
                .fetch_all(&self.pool)
                .await
                .map_err(|e| db_error("listing services", e))?;
                rows.iter().map(service_from_row).collect()
            }

            async fn service_by_user(&self, service_user: &str) -> StoreResult<Option<ServiceRow>> {
                let row = sqlx::query(concat!(
                    "SELECT ",
                    service_columns!(),
                    " FROM services WHERE service_user = $1"
                ))
                .bind(service_user)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| db_error(format_args!("reading service {service_user:?}"), e))?;
                row.as_ref().map(service_from_row).transpose()
            }

            async fn request(&self, tenant: &str, id: &str) -> StoreResult<Option<RequestRow>> {
                let row = sqlx::query(concat!(
                    "SELECT ",
                    request_columns!(),
                    " FROM requests WHERE id = $1 AND tenant = $2"
                ))
                .bind(id)
                .bind(tenant)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| db_error(format_args!("reading request {id:?}"), e))?;
                row.as_ref().map(request_from_row).transpose()
            }


            async fn requests(
                &self,
                tenant: &str,
                status: Option<&str>,
                limit: u32,
            ) -> StoreResult<Vec<RequestRow>> {
                // CAST: PostgreSQL must know the type of a parameter that is only tested for NULL.
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    request_columns!(),
                    " FROM requests WHERE tenant = $1 AND (CAST($2 AS TEXT) IS NULL OR status = $2) \
                     ORDER BY created DESC, id LIMIT $3"
                ))
                .bind(tenant)
                .bind(status)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(|e| db_error("listing requests", e))?;
                rows.iter().map(request_from_row).collect()
            }

            $($own)*
        }
    };
}

/// The query of `Store::find_objects` for a filter: the partition is `$1`, then one
/// placeholder per filter field that is set, in the order `bind_object_filter!` binds them.
pub(crate) fn find_objects_sql(filter: &crate::ObjectFilter) -> String {
    let mut sql = String::from(concat!(
        "SELECT ",
        object_columns!(),
        " FROM objects WHERE partition_id = $1"
    ));
    let mut n = 1;
    let mut next = |sql: &mut String, fragment: &str| {
        n += 1;
        sql.push_str(fragment);
        sql.push_str(&n.to_string());
    };
    if filter.class.is_some() {
        next(&mut sql, " AND class = $");
    }
    if filter.key_type.is_some() {
        next(&mut sql, " AND key_type = $");
    }
    if filter.label.is_some() {
        next(&mut sql, " AND label = $");
    }
    if filter.ckaid.is_some() {
        next(&mut sql, " AND ckaid = $");
    }
    if filter.uuid.is_some() {
        next(&mut sql, " AND uuid = $");
    }
    if filter.after.is_some() {
        next(&mut sql, " AND object_id > $");
    }
    sql.push_str(" ORDER BY object_id");
    if filter.limit.is_some() {
        next(&mut sql, " LIMIT $");
    }
    sql
}
