//! Applying one [`crate::Mutation`] inside a write transaction of the PostgreSQL store: the
//! statements are the shared ones of [`crate::sql`] (`apply_mutation!`); what is PostgreSQL's
//! own is how a failure is told apart (a transaction the server aborted may run again, a
//! constraint is known by its name) and that the partition row is locked before the partition
//! is deleted (the parent module says why each statement holds when other nodes write at the
//! same time).

use sqlx::postgres::PgConnection;

use super::{db_failure, write_failure, Failure};
use crate::sql::{unique_violation, Unique};

apply_mutation!(
    pub(super),
    conn = PgConnection,
    error = Failure,
    write = write_failure,
    read = db_failure,
    unique = unique_rule,
    lock = " FOR UPDATE",
);

/// The uniqueness rule `e` broke, known by the constraint names of the migrations.
fn unique_rule(e: &sqlx::Error) -> Option<Unique> {
    match unique_violation(e)?.constraint()? {
        "partitions_name_unique" => Some(Unique::PartitionName),
        "services_name_unique" => Some(Unique::ServiceName),
        "services_pkey" => Some(Unique::ServiceUser),
        _ => None,
    }
}
