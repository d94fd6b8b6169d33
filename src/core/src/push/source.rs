//! Where push evaluation reads what its caches miss: the write transaction it runs in, or a pool
//! connection taken only when a read is actually needed (evaluation ahead of the group commit
//! mostly finds everything cached and then never touches the pool).

use sqlx::{Any, AnyPool, pool::PoolConnection};

use crate::{Result, storage::Conn};

/// A connection to read from, borrowed or taken from the pool on first use.
pub enum Source<'a> {
    /// A connection (or transaction) the caller holds.
    Conn(&'a mut Conn),
    /// The pool, and the connection taken from it once needed.
    Pool(&'a AnyPool, Option<PoolConnection<Any>>),
}

impl Source<'_> {
    /// The connection to read from.
    pub async fn conn(&mut self) -> Result<&mut Conn> {
        match self {
            Source::Conn(conn) => Ok(conn),
            Source::Pool(pool, taken) => {
                if taken.is_none() {
                    *taken = Some(pool.acquire().await?);
                }
                match taken {
                    Some(conn) => Ok(conn),
                    None => Err(crate::Error::Internal(anyhow::anyhow!("pool connection vanished"))),
                }
            }
        }
    }
}
