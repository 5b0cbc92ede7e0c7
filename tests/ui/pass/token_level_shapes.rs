//! The shapes `#[reader]` / `#[writer]` without arguments rewrite at the
//! token level (`facade-macros/src/fast.rs`): receivers of every form, a
//! named context lifetime, a path to the context, trailing commas, doc
//! comments and attributes, raw identifiers, `->` and `impl` in the other
//! parameters, `>>>` and a qualified `Result` in the return type, a negative
//! const argument. Every form compiles and runs, warnings denied.
#![deny(warnings)]
use diesel::prelude::*;
use diesel::SqliteConnection;
use diesel_facade::{reader, writer, Facade, TransactionContext};

diesel::table! { items (id) { id -> Integer, name -> Text, qty -> Integer } }

mod context {
    use super::*;

    #[derive(TransactionContext)]
    pub struct Ctx {
        #[facade]
        pub db: Facade<SqliteConnection>,
    }
}
use context::Ctx;

pub struct Offset<const N: i32>;

pub struct Repo {
    base: i32,
}

impl Repo {
    /// Reads with `&self`.
    #[reader]
    pub fn by_ref(&self, ctx: &mut Ctx, id: i32) -> QueryResult<i32> {
        let qty: i32 = items::table.find(id).select(items::qty).first(ctx.conn())?;
        Ok(qty + self.base)
    }

    #[writer]
    pub(crate) fn by_mut(&mut self, ctx: &mut crate::context::Ctx) -> QueryResult<usize> {
        self.base += 1;
        diesel::update(items::table).set(items::qty.eq(items::qty + 1)).execute(ctx.conn())
    }

    #[reader]
    fn by_value(self, ctx: &mut Ctx) -> diesel::result::QueryResult<i32> {
        let _ = ctx;
        Ok(self.base)
    }

    #[reader]
    fn boxed(self: Box<Self>, ctx: &mut Ctx) -> QueryResult<i32> {
        let _ = ctx;
        Ok(self.base)
    }

    #[reader]
    fn with_lifetime<'a>(&'a self, ctx: &mut Ctx) -> QueryResult<&'a i32> {
        let _ = ctx;
        Ok(&self.base)
    }
}

/// Many parameters, written the way rustfmt breaks them.
#[writer]
pub fn create(
    ctx: &mut Ctx,
    r#type: &str,
    qty: i32,
    adjust: impl Fn(i32) -> i32,
    rows: &[(i32, String)],
) -> std::result::Result<Vec<Vec<Option<i32>>>, diesel::result::Error> {
    diesel::insert_into(items::table)
        .values((items::name.eq(r#type), items::qty.eq(adjust(qty))))
        .execute(ctx.conn())?;
    Ok(vec![rows.iter().map(|(id, _)| Some(*id)).collect()])
}

#[reader]
#[allow(clippy::needless_question_mark)]
fn r#match(r#ctx: &mut Ctx, _offset: Offset<-1>) -> QueryResult<i64> {
    Ok(items::table.count().get_result(r#ctx.conn())?)
}

#[writer]
fn unused_but_allowed(ctx: &mut Ctx,) -> QueryResult<()> {
    let _ = ctx;
    Ok(())
}

/// Every function above, called from a writer (so each joins its scope).
#[writer]
pub fn all(ctx: &mut Ctx) -> QueryResult<i32> {
    let mut repo = Repo { base: 1 };
    repo.by_mut(ctx)?;
    let read = repo.by_ref(ctx, 1)? + *repo.with_lifetime(ctx)?;
    create(ctx, "bolt", 2, |qty| qty + 1, &[(1, "a".to_owned())])?;
    unused_but_allowed(ctx)?;
    let count = r#match(ctx, Offset::<-1>)?;
    let boxed = Box::new(Repo { base: 2 }).boxed(ctx)?;
    Ok(read + Repo { base: 3 }.by_value(ctx)? + boxed + count as i32)
}

fn main() {}
