//! Building and running the index statements: numbered arguments, and how PostgreSQL plans them.

use sqlx::{AnyPool, Executor, any::AnyRow};

use super::Backend;

/// How PostgreSQL plans an index statement (`SET LOCAL`: this transaction only). Its default
/// costs price a heap page reached through the GIN bitmap at 4 sequential ones and a `@@` per row
/// at almost nothing, so for a word in a few percent of ten rooms it walked the primary key
/// backwards, evaluating the `tsquery` on 225 000 rows (54–92 ms), where the bitmap reads the
/// 8 900 matches (17–27 ms); at 1.1 (the index and the rows it points to are in memory, as
/// they are for a search that is run at all often) it takes the bitmap exactly where that is
/// cheaper, and still walks the key for a word in most messages. A search is one short
/// statement: parallel workers cost more to start than they save (medium word in ten rooms:
/// 34 ms with them, 21 without, on two busy cores).
const POSTGRES_PLANNER: &str =
    "SET LOCAL random_page_cost = 1.1; SET LOCAL max_parallel_workers_per_gather = 0";

/// The rows of an index statement, unprepared (planned for its own words and rooms); on
/// PostgreSQL in a read transaction planned with [`POSTGRES_PLANNER`].
pub(super) async fn fetch_planned(
    pool: &AnyPool,
    backend: Backend,
    sql: &Sql,
    text: &str,
) -> sqlx::Result<Vec<AnyRow>> {
    let query = sql.query(text).persistent(false);
    match backend {
        Backend::Sqlite => query.fetch_all(pool).await,
        Backend::Postgres => {
            let mut tx = pool.begin().await?;
            // Without arguments: the simple protocol, both statements in one round trip.
            tx.execute(POSTGRES_PLANNER).await?;
            let rows = query.fetch_all(&mut *tx).await?;
            tx.commit().await?;
            Ok(rows)
        }
    }
}

/// A bound argument.
pub(super) enum Arg {
    Text(String),
    Int(i64),
}

/// A statement's arguments, numbered as they are added.
#[derive(Default)]
pub(super) struct Sql {
    args: Vec<Arg>,
}

impl Sql {
    /// Adds an argument; its placeholder.
    pub(super) fn bind(&mut self, arg: Arg) -> String {
        self.args.push(arg);
        format!("${}", self.args.len())
    }

    /// The statement with every argument bound.
    pub(super) fn query<'q>(
        &'q self,
        text: &'q str,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
        let mut query = sqlx::query(text);
        for arg in &self.args {
            query = match arg {
                Arg::Text(text) => query.bind(text.as_str()),
                Arg::Int(n) => query.bind(*n),
            };
        }
        query
    }
}
