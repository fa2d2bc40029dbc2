//! Reading the PostgreSQL store's rows into the crate's row types (the readers themselves are
//! the backends' shared ones, [`row_readers`]).

use sqlx::postgres::PgRow;

row_readers!(PgRow, sqlx::Postgres);

/// The last audit entry of a partition (`$1` = partition id).
pub(super) const AUDIT_HEAD_SQL: &str = concat!(
    "SELECT ",
    audit_columns!(),
    " FROM audit WHERE partition_id = $1 ORDER BY seq DESC LIMIT 1"
);
