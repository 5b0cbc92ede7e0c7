//! A function of another database may be called inside a transaction: a
//! default-database writer inside an api reader begins (or joins) the
//! default database's own transaction, and the api reader's own nesting
//! rules are unchanged.
use diesel::prelude::*;
use diesel::{PgConnection, SqliteConnection};
use diesel_facade::{reader, writer, Facade, TransactionContext};

#[derive(TransactionContext)]
struct Ctx {
    #[facade]
    main: Facade<SqliteConnection>,
    #[facade(api)]
    api: Facade<PgConnection>,
}

#[writer]
fn touch_main(ctx: &mut Ctx) -> QueryResult<usize> {
    diesel::sql_query("UPDATE t SET x = 1").execute(ctx.conn())
}

#[reader]
fn read_main(ctx: &mut Ctx) -> QueryResult<i64> {
    diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>("1")).get_result(ctx.conn())
}

#[reader(db = api)]
fn read_api_and_touch_main(ctx: &mut Ctx) -> QueryResult<usize> {
    read_main(ctx)?;
    touch_main(ctx)
}

#[writer(db = api, savepoint)]
fn api_savepoint_touches_main(ctx: &mut Ctx) -> QueryResult<usize> {
    touch_main(ctx)
}

#[writer]
fn main_writer_through_api(ctx: &mut Ctx) -> QueryResult<usize> {
    // Joins main's own transaction on the way back.
    read_api_and_touch_main(ctx)?;
    api_savepoint_touches_main(ctx)
}

#[reader(db = api, replica)]
fn api_replica_reads_main(ctx: &mut Ctx) -> QueryResult<i64> {
    read_main(ctx)
}

fn main() {
    let _ = |ctx: &mut Ctx| -> QueryResult<i64> {
        main_writer_through_api(ctx)?;
        api_replica_reads_main(ctx)
    };
}
