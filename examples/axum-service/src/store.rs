//! The data-access functions: they take the request context, say whether
//! they read or write, and know nothing about HTTP.

use diesel::prelude::*;
use diesel_facade::{reader, writer};
use serde::{Deserialize, Serialize};

use crate::context::RequestContext;

diesel::table! {
    items (id) {
        id -> Integer,
        name -> Varchar,
        qty -> Integer,
        created_by -> Nullable<Varchar>,
    }
}

/// One row of `items`, as the API returns it.
#[derive(Debug, Clone, Serialize, Queryable, Selectable)]
#[diesel(table_name = items)]
pub struct Item {
    pub id: i32,
    pub name: String,
    pub qty: i32,
    pub created_by: Option<String>,
}

/// The body of `POST /items`.
#[derive(Debug, Clone, Deserialize)]
pub struct NewItem {
    pub name: String,
    pub qty: i32,
}

/// Which server answered a read (the `x-db-server` response header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    Primary,
    Replica,
}

impl Server {
    pub fn as_str(self) -> &'static str {
        match self {
            Server::Primary => "primary",
            Server::Replica => "replica",
        }
    }
}

/// Insert an item; a name that exists is `ErrorKind::UniqueViolation`.
#[writer]
pub fn create_item(ctx: &mut RequestContext, new: &NewItem) -> QueryResult<Item> {
    let user = ctx.user.clone();
    diesel::insert_into(items::table)
        .values((
            items::name.eq(&new.name),
            items::qty.eq(new.qty),
            items::created_by.eq(user),
        ))
        .returning(Item::as_returning())
        .get_result(ctx.conn())
}

/// Read an item from a replica. The context's read position makes the
/// replica wait until it has this user's last write (or the primary
/// answers), so a user always sees what they wrote.
#[reader(replica)]
pub fn get_item(ctx: &mut RequestContext, id: i32) -> QueryResult<(Option<Item>, Server)> {
    let item = items::table
        .find(id)
        .select(Item::as_select())
        .first(ctx.conn())
        .optional()?;
    let server = if ctx.on_replica() {
        Server::Replica
    } else {
        Server::Primary
    };
    Ok((item, server))
}

/// Add one to an item's quantity. The increment happens in the `UPDATE`
/// itself, so concurrent restocks never lose one (a read-then-write would
/// under READ COMMITTED). A missing item is `ErrorKind::NotFound`.
#[writer]
pub fn restock(ctx: &mut RequestContext, id: i32) -> QueryResult<Item> {
    diesel::update(items::table.find(id))
        .set(items::qty.eq(items::qty + 1))
        .returning(Item::as_returning())
        .get_result(ctx.conn())
}
