//! The ways to increment the counter: the facade's `ctx.lock`, each
//! backend's native lock and `SELECT … FOR UPDATE` by hand, and the
//! unlocked transaction the log-bytes measurement subtracts.

use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, Pool};
use diesel::sql_types::{BigInt, Nullable, Text};
use diesel::{MysqlConnection, PgConnection};
use diesel_facade::{writer, Context, Facade};

use crate::common::in_transaction;

diesel::table! {
    counters (id) {
        id -> Text,
        value -> Integer,
    }
}

/// The lock every method takes (the facade's lock name, and the MariaDB
/// `GET_LOCK` name).
pub const LOCK_NAME: &str = "counter";
/// The `pg_advisory_xact_lock` key of the native PostgreSQL method.
const ADVISORY_KEY: i64 = 42;
/// The statements that are the same on every backend, for one connection
/// type: the facade side, the `FOR UPDATE` side, and the unlocked
/// transaction the log-bytes measurement subtracts.
macro_rules! increments {
    ($module:ident, $conn:ty) => {
        pub mod $module {
            use super::*;

            pub type Conn = $conn;
            pub type BasePool = Pool<ConnectionManager<Conn>>;

            /// Read the counter and write it back plus one.
            pub fn increment(conn: &mut Conn) -> QueryResult<()> {
                let value: i32 = counters::table
                    .find("c")
                    .select(counters::value)
                    .first(conn)?;
                diesel::update(counters::table.find("c"))
                    .set(counters::value.eq(value + 1))
                    .execute(conn)
                    .map(drop)
            }

            #[writer]
            pub fn writer_unlocked(ctx: &mut Context<Conn>) -> Result<(), diesel_facade::Error> {
                increment(ctx.conn())?;
                Ok(())
            }

            #[writer]
            pub fn ctx_lock(ctx: &mut Context<Conn>) -> Result<(), diesel_facade::Error> {
                ctx.lock(LOCK_NAME)?;
                increment(ctx.conn())?;
                Ok(())
            }

            pub fn for_update(pool: &BasePool) -> QueryResult<()> {
                let mut conn = pool.get().expect("baseline checkout");
                in_transaction(&mut *conn, "BEGIN", |conn| {
                    let value: i32 = counters::table
                        .find("c")
                        .select(counters::value)
                        .for_update()
                        .first(conn)?;
                    diesel::update(counters::table.find("c"))
                        .set(counters::value.eq(value + 1))
                        .execute(conn)
                        .map(drop)
                })
            }

            /// The same transaction without any lock: only for the
            /// log-bytes measurement (it would lose updates under
            /// contention).
            pub fn unlocked(pool: &BasePool) -> QueryResult<()> {
                let mut conn = pool.get().expect("baseline checkout");
                in_transaction(&mut *conn, "BEGIN", increment)
            }

            pub fn counter_value(pool: &BasePool) -> i64 {
                let value: i32 = counters::table
                    .find("c")
                    .select(counters::value)
                    .first(&mut *pool.get().expect("checkout"))
                    .expect("read the counter");
                i64::from(value)
            }
        }
    };
}

increments!(pg, PgConnection);
increments!(mysql, MysqlConnection);

/// PostgreSQL's native lock: a transaction-scoped advisory lock.
pub fn pg_advisory(pool: &pg::BasePool) -> QueryResult<()> {
    let mut conn = pool.get().expect("baseline checkout");
    in_transaction(&mut *conn, "BEGIN", |conn| {
        diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
            .bind::<BigInt, _>(ADVISORY_KEY)
            .execute(conn)?;
        pg::increment(conn)
    })
}

#[derive(QueryableByName)]
pub struct NullableInt {
    #[diesel(sql_type = Nullable<BigInt>)]
    pub value: Option<i64>,
}

/// MariaDB's native lock: `GET_LOCK` is a session lock, so it is taken
/// before `BEGIN` and released after `COMMIT`.
pub fn mysql_get_lock(pool: &mysql::BasePool) -> QueryResult<()> {
    let mut conn = pool.get().expect("baseline checkout");
    let conn = &mut *conn;
    let got = diesel::sql_query("SELECT GET_LOCK(?, 30) AS value")
        .bind::<Text, _>(LOCK_NAME)
        .get_result::<NullableInt>(conn)?;
    if got.value != Some(1) {
        return Err(diesel::result::Error::QueryBuilderError(
            format!("GET_LOCK returned {:?}", got.value).into(),
        ));
    }
    let incremented = in_transaction(conn, "BEGIN", mysql::increment);
    let released = diesel::sql_query("SELECT RELEASE_LOCK(?) AS value")
        .bind::<Text, _>(LOCK_NAME)
        .get_result::<NullableInt>(conn);
    incremented?;
    released.map(drop)
}

/// What a method is, for the ratios and the plot's colours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The facade's `ctx.lock`.
    Table,
    /// The facade's `ctx.lock` with `pg_lock_stamp(false)` (PostgreSQL).
    TableUnstamped,
    /// The backend's own lock (advisory lock, `GET_LOCK`).
    Native,
    /// `SELECT … FOR UPDATE` on the counter row.
    ForUpdate,
    /// The hand-written transaction without any lock: the log-bytes
    /// baseline of the hand-written methods. Never swept (it would lose
    /// updates).
    Unlocked,
    /// A `#[writer]` without `ctx.lock`: the log-bytes baseline of
    /// `ctx.lock`, which keeps the facade's own statements (the Galera
    /// guard's statements) out of the lock's cost. Never swept.
    UnlockedWriter,
}

impl Role {
    pub fn swept(self) -> bool {
        !matches!(self, Role::Unlocked | Role::UnlockedWriter)
    }

    /// The unlocked method whose log bytes this one's lock adds to.
    pub fn baseline(self) -> Role {
        match self {
            Role::Table | Role::TableUnstamped | Role::UnlockedWriter => Role::UnlockedWriter,
            Role::Native | Role::ForUpdate | Role::Unlocked => Role::Unlocked,
        }
    }
}

pub type Worker<'a> = Box<dyn FnMut() -> Result<(), String> + 'a>;

/// One way to increment the counter. `worker` makes a thread's own
/// incrementer (the facade side keeps one context per thread, as a request
/// would).
pub struct Method<'a> {
    pub name: &'static str,
    pub role: Role,
    pub worker: Box<dyn Fn() -> Worker<'a> + Sync + 'a>,
}

impl<'a> Method<'a> {
    fn new<F>(name: &'static str, role: Role, worker: F) -> Self
    where
        F: Fn() -> Worker<'a> + Sync + 'a,
    {
        Method {
            name,
            role,
            worker: Box::new(worker),
        }
    }
}

/// The PostgreSQL methods: `db` is the facade with the default settings,
/// `unstamped` one with `pg_lock_stamp(false)`.
pub fn pg_methods<'a>(
    db: &'a Facade<PgConnection>,
    unstamped: &'a Facade<PgConnection>,
    pool: &'a pg::BasePool,
) -> Vec<Method<'a>> {
    let err = |e: diesel::result::Error| e.to_string();
    vec![
        Method::new("ctx.lock", Role::Table, move || {
            let mut ctx = db.context();
            Box::new(move || pg::ctx_lock(&mut ctx).map_err(|e| e.to_string()))
        }),
        Method::new("ctx.lock, no stamp", Role::TableUnstamped, move || {
            let mut ctx = unstamped.context();
            Box::new(move || pg::ctx_lock(&mut ctx).map_err(|e| e.to_string()))
        }),
        Method::new("pg_advisory_xact_lock", Role::Native, move || {
            Box::new(move || pg_advisory(pool).map_err(err))
        }),
        Method::new("FOR UPDATE", Role::ForUpdate, move || {
            Box::new(move || pg::for_update(pool).map_err(err))
        }),
        Method::new("no lock (by hand)", Role::Unlocked, move || {
            Box::new(move || pg::unlocked(pool).map_err(err))
        }),
        Method::new("no lock (#[writer])", Role::UnlockedWriter, move || {
            let mut ctx = db.context();
            Box::new(move || pg::writer_unlocked(&mut ctx).map_err(|e| e.to_string()))
        }),
    ]
}

pub fn mysql_methods<'a>(
    db: &'a Facade<MysqlConnection>,
    pool: &'a mysql::BasePool,
    galera: bool,
) -> Vec<Method<'a>> {
    let err = |e: diesel::result::Error| e.to_string();
    let mut methods = vec![Method::new("ctx.lock", Role::Table, move || {
        let mut ctx = db.context();
        Box::new(move || mysql::ctx_lock(&mut ctx).map_err(|e| e.to_string()))
    })];
    // Galera does not support GET_LOCK.
    if !galera {
        methods.push(Method::new("GET_LOCK", Role::Native, move || {
            Box::new(move || mysql_get_lock(pool).map_err(err))
        }));
    }
    methods.push(Method::new("FOR UPDATE", Role::ForUpdate, move || {
        Box::new(move || mysql::for_update(pool).map_err(err))
    }));
    methods.push(Method::new(
        "no lock (by hand)",
        Role::Unlocked,
        move || Box::new(move || mysql::unlocked(pool).map_err(err)),
    ));
    methods.push(Method::new(
        "no lock (#[writer])",
        Role::UnlockedWriter,
        move || {
            let mut ctx = db.context();
            Box::new(move || mysql::writer_unlocked(&mut ctx).map_err(|e| e.to_string()))
        },
    ));
    methods
}
