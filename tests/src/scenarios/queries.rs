//! The typed diesel queries the scenarios run, written once for every
//! backend.
//!
//! diesel checks a query against one concrete connection type, so a
//! function generic over the connection cannot run `items::table.find(id)`
//! without a bound that names the query's type. [`TypedQueries`] gathers
//! those bounds in one blanket impl: a scenario bound by `C: TypedQueries`
//! calls `C::get_item(ctx.conn(), id)`, and the three connection types get
//! it because each satisfies the bounds. The queries keep their typed form
//! (selects through [`ReadOnlyConnection`], `as_select`, a bare table's
//! `as_query`), which is part of what the scenarios exercise.

use diesel::dsl;
use diesel::prelude::*;
use diesel::query_builder::{AsQuery, SqlQuery};
use diesel::query_dsl::methods::ExecuteDsl;
use diesel::query_dsl::LoadQuery;
use diesel_facade::ReadOnlyConnection;

use crate::schema::{counters, items, locks};
use crate::{Item, SessionId, TestBackend};

/// The row of [`TypedQueries::read_flag`].
#[derive(QueryableByName)]
pub struct Flag {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    flag: bool,
}

#[dsl::auto_type]
fn item_by_id(id: i32) -> _ {
    items::table.find(id)
}

#[dsl::auto_type]
fn item_with_id_exists(id: i32) -> _ {
    let item: item_by_id = item_by_id(id);
    dsl::select(dsl::exists(item))
}

#[dsl::auto_type]
fn item_count() -> _ {
    items::table.count()
}

#[dsl::auto_type]
fn new_item(id: i32, name: String, qty: i32) -> _ {
    dsl::insert_into(items::table).values((
        items::id.eq(id),
        items::name.eq(name),
        items::qty.eq(qty),
    ))
}

#[dsl::auto_type]
fn item_qty_set(id: i32, qty: i32) -> _ {
    let item: item_by_id = item_by_id(id);
    dsl::update(item).set(items::qty.eq(qty))
}

#[dsl::auto_type]
fn counter_c() -> _ {
    counters::table.find("c").select(counters::value)
}

#[dsl::auto_type]
fn counter_c_set(value: i32) -> _ {
    dsl::update(counters::table.find("c")).set(counters::value.eq(value))
}

#[dsl::auto_type]
fn lock_rows_named(name: String) -> _ {
    locks::table.filter(locks::id.eq(name)).select(locks::id)
}

/// The typed queries of the scenarios, on every connection type that can run
/// them (see the module's documentation).
pub trait TypedQueries: TestBackend {
    /// The item `id`, selected with `Item::as_select()`.
    fn get_item(conn: &mut ReadOnlyConnection<Self>, id: i32) -> QueryResult<Item>;
    /// `SELECT EXISTS (item id)`.
    fn item_exists(conn: &mut ReadOnlyConnection<Self>, id: i32) -> QueryResult<bool>;
    /// `SELECT COUNT(*) FROM items`.
    fn count_items(conn: &mut ReadOnlyConnection<Self>) -> QueryResult<i64>;
    /// Every item, loaded from the bare table through `as_query()`.
    fn all_items_as_query(
        conn: &mut ReadOnlyConnection<Self>,
    ) -> QueryResult<Vec<(i32, String, i32)>>;
    /// The value of counter `c`, read in a reader.
    fn counter_value(conn: &mut ReadOnlyConnection<Self>) -> QueryResult<i32>;
    /// The BOOLEAN column `flag` of the single row `sql` returns, run as a
    /// prepared `sql_query` in a reader.
    fn read_flag(conn: &mut ReadOnlyConnection<Self>, sql: &str) -> QueryResult<bool>;
    /// The ids of the `locks` rows equal to `name`.
    fn lock_rows_named(conn: &mut ReadOnlyConnection<Self>, name: &str)
        -> QueryResult<Vec<String>>;

    /// Insert an item.
    fn insert_item(conn: &mut Self, id: i32, name: String, qty: i32) -> QueryResult<usize>;
    /// Set the quantity of item `id`.
    fn set_qty(conn: &mut Self, id: i32, qty: i32) -> QueryResult<usize>;
    /// The value of counter `c`, read in a writer.
    fn read_counter(conn: &mut Self) -> QueryResult<i32>;
    /// Set counter `c` to `value`.
    fn set_counter(conn: &mut Self, value: i32) -> QueryResult<usize>;
    /// Run `sql` as a prepared `sql_query`.
    fn execute_sql(conn: &mut Self, sql: &str) -> QueryResult<usize>;
    /// The `id` column of `sql` (a `TestBackend::KILL` query), run as a
    /// prepared `sql_query`.
    fn session_id(conn: &mut Self, sql: &str) -> QueryResult<i64>;
}

impl<C> TypedQueries for C
where
    C: TestBackend,
    for<'q> dsl::Limit<dsl::Select<item_by_id, dsl::AsSelect<Item, C::Backend>>>:
        LoadQuery<'q, ReadOnlyConnection<C>, Item>,
    for<'q> item_with_id_exists: LoadQuery<'q, ReadOnlyConnection<C>, bool>,
    for<'q> item_count: LoadQuery<'q, ReadOnlyConnection<C>, i64>,
    for<'q> <items::table as AsQuery>::Query:
        LoadQuery<'q, ReadOnlyConnection<C>, (i32, String, i32)>,
    for<'q> dsl::Limit<counter_c>:
        LoadQuery<'q, ReadOnlyConnection<C>, i32> + LoadQuery<'q, C, i32>,
    for<'q> lock_rows_named: LoadQuery<'q, ReadOnlyConnection<C>, String>,
    for<'q> SqlQuery: LoadQuery<'q, C, SessionId> + LoadQuery<'q, ReadOnlyConnection<C>, Flag>,
    SqlQuery: ExecuteDsl<C>,
    new_item: ExecuteDsl<C>,
    item_qty_set: ExecuteDsl<C>,
    counter_c_set: ExecuteDsl<C>,
{
    fn get_item(conn: &mut ReadOnlyConnection<Self>, id: i32) -> QueryResult<Item> {
        item_by_id(id).select(Item::as_select()).first(conn)
    }

    fn item_exists(conn: &mut ReadOnlyConnection<Self>, id: i32) -> QueryResult<bool> {
        item_with_id_exists(id).get_result(conn)
    }

    fn count_items(conn: &mut ReadOnlyConnection<Self>) -> QueryResult<i64> {
        item_count().get_result(conn)
    }

    fn all_items_as_query(
        conn: &mut ReadOnlyConnection<Self>,
    ) -> QueryResult<Vec<(i32, String, i32)>> {
        items::table.as_query().load(conn)
    }

    fn counter_value(conn: &mut ReadOnlyConnection<Self>) -> QueryResult<i32> {
        counter_c().first(conn)
    }

    fn read_flag(conn: &mut ReadOnlyConnection<Self>, sql: &str) -> QueryResult<bool> {
        diesel::sql_query(sql)
            .get_result::<Flag>(conn)
            .map(|row| row.flag)
    }

    fn lock_rows_named(
        conn: &mut ReadOnlyConnection<Self>,
        name: &str,
    ) -> QueryResult<Vec<String>> {
        lock_rows_named(name.to_owned()).load(conn)
    }

    fn insert_item(conn: &mut Self, id: i32, name: String, qty: i32) -> QueryResult<usize> {
        new_item(id, name, qty).execute(conn)
    }

    fn set_qty(conn: &mut Self, id: i32, qty: i32) -> QueryResult<usize> {
        item_qty_set(id, qty).execute(conn)
    }

    fn read_counter(conn: &mut Self) -> QueryResult<i32> {
        counter_c().first(conn)
    }

    fn set_counter(conn: &mut Self, value: i32) -> QueryResult<usize> {
        counter_c_set(value).execute(conn)
    }

    fn execute_sql(conn: &mut Self, sql: &str) -> QueryResult<usize> {
        diesel::sql_query(sql).execute(conn)
    }

    fn session_id(conn: &mut Self, sql: &str) -> QueryResult<i64> {
        diesel::sql_query(sql)
            .get_result::<SessionId>(conn)
            .map(|row| row.id)
    }
}
