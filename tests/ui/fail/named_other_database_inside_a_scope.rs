//! Not built yet (issue 10, item 2): a scope of the api database cannot
//! begin or join a transaction on the default database, so calling a
//! default-database writer inside an api reader does not compile (rather
//! than run outside the api transaction unnoticed). Call it before or
//! after, with the request context.
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

#[reader(db = api)]
fn read_api_and_touch_main(ctx: &mut Ctx) -> QueryResult<usize> {
    touch_main(ctx)
}

fn main() {}
