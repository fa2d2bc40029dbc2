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
