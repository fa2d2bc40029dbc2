//! Applying one [`Mutation`] inside a write transaction of the PostgreSQL store, and telling
//! the caller precisely why it could not be applied (the parent module says why each statement
//! holds when other nodes write at the same time).

use std::fmt::Display;

use sqlx::error::ErrorKind;
use sqlx::postgres::PgConnection;

use super::{db_failure, write_failure, Attempt};
use crate::{Mutation, StoreError};

/// Apply one mutation inside the open transaction.
pub(super) async fn apply(conn: &mut PgConnection, m: &Mutation) -> Attempt<()> {
    match m {
        Mutation::InsertCluster { key, value } => {
            sqlx::query("INSERT INTO cluster (key, value) VALUES ($1, $2)")
                .bind(key.as_str())
                .bind(value.as_slice())
                .execute(&mut *conn)
                .await
                .map_err(|e| write_failure(format_args!("cluster setting {key:?}"), e))?;
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
            .map_err(|e| write_failure(format_args!("cluster setting {key:?}"), e))?;
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
            .map_err(|e| {
                if violates(&e, "partitions_name_unique") {
                    StoreError::Conflict(format!("partition name {:?} already exists", p.name))
                        .into()
                } else {
                    write_failure(format_args!("partition {} ({:?})", p.id, p.name), e)
                }
            })?;
        }
        Mutation::UpdatePartition {
            row,
            expected_version,
        } => {
            let done = sqlx::query(
                "UPDATE partitions SET sealed = $1, version = $2 WHERE id = $3 AND version = $4",
            )
            .bind(row.sealed.as_slice())
            .bind(row.version)
            .bind(row.id)
            .bind(*expected_version)
            .execute(&mut *conn)
            .await
            .map_err(|e| write_failure(format_args!("updating partition {}", row.id), e))?;
            if done.rows_affected() == 0 {
                let stored: Option<i64> =
                    sqlx::query_scalar("SELECT version FROM partitions WHERE id = $1")
                        .bind(row.id)
                        .fetch_optional(&mut *conn)
                        .await
                        .map_err(|e| {
                            db_failure(
                                format_args!("reading the version of partition {}", row.id),
                                e,
                            )
                        })?;
                return Err(cas_miss(
                    format_args!("partition {}", row.id),
                    stored,
                    *expected_version,
                )
                .into());
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
                write_failure(
                    format_args!("PIN failure counters of partition {partition_id}"),
                    e,
                )
            })?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound(format!("partition {partition_id}")).into());
            }
        }
        Mutation::DeletePartition { partition_id } => {
            // The row lock first: see the module doc.
            let found: Option<i64> =
                sqlx::query_scalar("SELECT id FROM partitions WHERE id = $1 FOR UPDATE")
                    .bind(*partition_id)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(|e| db_failure(format_args!("locking partition {partition_id}"), e))?;
            if found.is_none() {
                return Err(StoreError::NotFound(format!("partition {partition_id}")).into());
            }
            sqlx::query("DELETE FROM objects WHERE partition_id = $1")
                .bind(*partition_id)
                .execute(&mut *conn)
                .await
                .map_err(|e| {
                    write_failure(
                        format_args!("deleting the objects of partition {partition_id}"),
                        e,
                    )
                })?;
            sqlx::query("DELETE FROM partitions WHERE id = $1")
                .bind(*partition_id)
                .execute(&mut *conn)
                .await
                .map_err(|e| write_failure(format_args!("deleting partition {partition_id}"), e))?;
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
                write_failure(
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
                 ckaid = $5, uuid = $6, usage_count = GREATEST(usage_count, $7), sealed = $8 \
                 WHERE partition_id = $9 AND object_id = $10 AND version = $11",
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
                write_failure(
                    format_args!(
                        "updating object {} of partition {}",
                        o.object_id, o.partition_id
                    ),
                    e,
                )
            })?;
            if done.rows_affected() == 0 {
                let stored = object_version(conn, o.partition_id, o.object_id).await?;
                return Err(cas_miss(
                    format_args!("object {}", o.object_id),
                    stored,
                    *expected_version,
                )
                .into());
            }
        }
        Mutation::DeleteObject {
            partition_id,
            object_id,
            expected_version,
        } => {
            let done = sqlx::query(
                "DELETE FROM objects WHERE partition_id = $1 AND object_id = $2 AND version = $3",
            )
            .bind(*partition_id)
            .bind(*object_id)
            .bind(*expected_version)
            .execute(&mut *conn)
            .await
            .map_err(|e| {
                write_failure(
                    format_args!("deleting object {object_id} of partition {partition_id}"),
                    e,
                )
            })?;
            if done.rows_affected() == 0 {
                let stored = object_version(conn, *partition_id, *object_id).await?;
                return Err(cas_miss(
                    format_args!("object {object_id}"),
                    stored,
                    *expected_version,
                )
                .into());
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
                write_failure(
                    format_args!("usage count of object {object_id} of partition {partition_id}"),
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
                write_failure(
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
                write_failure(
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
            .map_err(|e| {
                if violates(&e, "services_name_unique") {
                    StoreError::Conflict(format!("service name {:?} already exists", sv.name))
                        .into()
                } else if violates(&e, "services_pkey") {
                    StoreError::Conflict(format!(
                        "service user {:?} already exists",
                        sv.service_user
                    ))
                    .into()
                } else {
                    write_failure(format_args!("service {:?}", sv.service_user), e)
                }
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
            .map_err(|e| {
                if violates(&e, "services_name_unique") {
                    StoreError::Conflict(format!("service name {:?} already exists", sv.name))
                        .into()
                } else {
                    write_failure(format_args!("updating service {:?}", sv.service_user), e)
                }
            })?;
            if done.rows_affected() == 0 {
                let stored: Option<i64> =
                    sqlx::query_scalar("SELECT version FROM services WHERE service_user = $1")
                        .bind(sv.service_user.as_str())
                        .fetch_optional(&mut *conn)
                        .await
                        .map_err(|e| {
                            db_failure(
                                format_args!(
                                    "reading the version of service {:?}",
                                    sv.service_user
                                ),
                                e,
                            )
                        })?;
                return Err(cas_miss(
                    format_args!("service {:?}", sv.service_user),
                    stored,
                    expected,
                )
                .into());
            }
        }
        Mutation::DeleteService { service_user } => {
            let done = sqlx::query("DELETE FROM services WHERE service_user = $1")
                .bind(service_user.as_str())
                .execute(&mut *conn)
                .await
                .map_err(|e| write_failure(format_args!("deleting service {service_user:?}"), e))?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound(format!("service {service_user:?}")).into());
            }
        }
    }
    Ok(())
}

/// The version of an object, read inside the write transaction after a CAS miss.
async fn object_version(
    conn: &mut PgConnection,
    partition_id: i64,
    object_id: i64,
) -> Attempt<Option<i64>> {
    sqlx::query_scalar("SELECT version FROM objects WHERE partition_id = $1 AND object_id = $2")
        .bind(partition_id)
        .bind(object_id)
        .fetch_optional(conn)
        .await
        .map_err(|e| {
            db_failure(
                format_args!(
                    "reading the version of object {object_id} of partition {partition_id}"
                ),
                e,
            )
        })
}

/// The error of a compare-and-swap that matched no row: `NotFound` if the row is absent,
/// else `Conflict` naming the stored and the expected version.
pub(super) fn cas_miss(what: impl Display, stored: Option<i64>, expected: i64) -> StoreError {
    match stored {
        None => StoreError::NotFound(what.to_string()),
        Some(v) => StoreError::Conflict(format!("{what} version is {v}, expected {expected}")),
    }
}

/// True if `e` is a unique violation of the constraint (or index) `name`.
fn violates(e: &sqlx::Error, name: &str) -> bool {
    matches!(e, sqlx::Error::Database(d)
        if d.kind() == ErrorKind::UniqueViolation && d.constraint() == Some(name))
}
