//! What the SQL written once needs of a database: the values it binds and reads, and the few
//! pieces of SQL text that differ between SQLite and PostgreSQL.
//!
//! The shared code is generic over the sqlx database type. Rust carries a trait's bounds on
//! `Self` (its supertraits) to every user of the trait, but not bounds on other types such as
//! `i64: Encode<DB>`; so the capabilities the shared code needs are written here as
//! supertraits of [`Dialect`] ([`Binds`], [`Reads`]) and used through [`QueryExt::arg`] and
//! [`RowExt::col`] instead of sqlx's `bind` and `try_get`. A `D: Dialect` bound is then all a
//! generic function needs.
//!
//! Both backends take `$1`-style numbered placeholders (sqlx-sqlite binds `$N` to the N-th
//! argument, and a placeholder used twice reads the same argument), so one SQL text usually
//! serves both.

use sqlx::query::Query;
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Pool, Row, Type};

/// A query of database `D` with its arguments, as `sqlx::query` makes it.
pub(crate) type Q<'q, D> = Query<'q, D, <D as Database>::Arguments>;

/// `Self` can bind a `T` to a query. (`'v` is how long the value may be borrowed for: sqlx
/// asks a bound `Option<&str>` to outlive the lifetime its `Encode` is named for.)
pub(crate) trait Binds<'v, T: 'v>: Database {
    fn bind_to<'q>(query: Q<'q, Self>, value: T) -> Q<'q, Self>;
}

impl<'v, D: Database, T: 'v> Binds<'v, T> for D
where
    T: Encode<'v, D> + Type<D>,
{
    fn bind_to<'q>(query: Q<'q, Self>, value: T) -> Q<'q, Self> {
        query.bind(value)
    }
}

/// `Self` can read a `T` from a named column.
pub(crate) trait Reads<T>: Database {
    fn read(row: &Self::Row, column: &str) -> Result<T, sqlx::Error>;
}

impl<D: Database, T> Reads<T> for D
where
    T: for<'r> Decode<'r, D> + Type<D>,
    for<'c> &'c str: ColumnIndex<D::Row>,
{
    fn read(row: &Self::Row, column: &str) -> Result<T, sqlx::Error> {
        row.try_get(column)
    }
}

/// The number of rows a statement changed: each driver's result has it, sqlx's `Database`
/// does not say so.
pub(crate) trait RowsAffected {
    fn rows_affected(&self) -> u64;
}

/// An SQL dialect the shared store code runs on: the values it binds and reads, how to run a
/// statement on a connection or a pool, and the SQL text that differs.
pub(crate) trait Dialect:
    Database<Arguments: IntoArguments<Self>, QueryResult: RowsAffected>
    + Binds<'static, i64>
    + Binds<'static, Option<i64>>
    + Binds<'static, bool>
    + Binds<'static, Option<i32>>
    + for<'a> Binds<'a, &'a str>
    + for<'a> Binds<'a, Option<&'a str>>
    + for<'a> Binds<'a, &'a [u8]>
    + Reads<i64>
    + Reads<Option<i64>>
    + Reads<bool>
    + Reads<f64>
    + Reads<String>
    + Reads<Option<String>>
    + Reads<Option<i32>>
    + Reads<Vec<u8>>
{
    /// Appended to a `SELECT` whose rows must stay locked until the transaction ends:
    /// ` FOR UPDATE` on PostgreSQL, nothing on SQLite, where a write transaction
    /// (`BEGIN IMMEDIATE`) already keeps every other writer out.
    const FOR_UPDATE: &'static str;
    /// Appended to a `SELECT … LIMIT 1` that picks work to lease: PostgreSQL locks the row
    /// and skips rows other claimers are locking; nothing on SQLite.
    const SKIP_LOCKED: &'static str;
    /// A chunk not yet done, in the words of the schema's partial index on undone chunks (so
    /// the planner can use it).
    const UNDONE: &'static str;
    /// The filter of a user's task list after its `SELECT … FROM tasks`. Parameters: $1 user,
    /// $2 status or NULL, $3 and $4 the cursor's `created_at_ns` and id or NULL, $5 limit.
    const LIST_TASKS: &'static str;
    /// Leases the next chunk, fair share first (see the backends for the order). Parameters:
    /// $1 owner, $2 lease until, $3 now, $4 the live leases a user holds before fair share
    /// ranks their tasks behind others'. Returns the chunk's `task_id, seq, byte_start,
    /// byte_end, first_line, lines`.
    const CLAIM_CHUNK: &'static str;
    /// The numbers with evidence after $1, ascending, at most $2 of them: a page of a
    /// profile rebuild.
    const EVIDENCE_NUMBERS: &'static str;
    /// Deletes the profiles of numbers without evidence left.
    const DROP_ORPHAN_PROFILES: &'static str;
    /// How many numbers one statement takes (see [`Dialect::numbers_in`]).
    const NUMBERS_PER_QUERY: usize;

    /// `IN` (or `= ANY`) over `count` numbers bound from parameter `$first` on with
    /// [`Dialect::bind_numbers`]: SQLite spells a list of placeholders, PostgreSQL one array.
    fn numbers_in(first: usize, count: usize) -> String;
    /// Binds the numbers [`Dialect::numbers_in`] asked for.
    fn bind_numbers<'q>(query: Q<'q, Self>, numbers: &[i64]) -> Q<'q, Self>;
    /// A connection (inside a transaction or not) as something to run statements on.
    fn conn(conn: &mut Self::Connection) -> impl Executor<'_, Database = Self>;
    /// A pool as something to run statements on.
    fn pool(pool: &Pool<Self>) -> impl Executor<'_, Database = Self>;
}

/// [`Binds`] as a method of a query.
pub(crate) trait QueryExt<D: Database>: Sized {
    /// Binds the next argument (sqlx's `bind`, for generic code).
    fn arg<'v, T: 'v>(self, value: T) -> Self
    where
        D: Binds<'v, T>;
}

impl<'q, D: Database> QueryExt<D> for Q<'q, D> {
    fn arg<'v, T: 'v>(self, value: T) -> Self
    where
        D: Binds<'v, T>,
    {
        D::bind_to(self, value)
    }
}

/// [`Reads`] as a method of a row.
pub(crate) trait RowExt: Row {
    /// The value of the named column (sqlx's `try_get`, for generic code).
    fn col<T>(&self, column: &str) -> Result<T, sqlx::Error>
    where
        Self::Database: Reads<T>;
}

impl<R: Row> RowExt for R {
    fn col<T>(&self, column: &str) -> Result<T, sqlx::Error>
    where
        Self::Database: Reads<T>,
    {
        <R::Database as Reads<T>>::read(self, column)
    }
}
