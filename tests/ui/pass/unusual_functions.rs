//! Valid functions of unusual shapes keep compiling and running as written: const generics in braces in the where-clause, `impl Trait` returns, inner doc comments and attributes at the top of the body, `#[cfg]`-gated statements, labeled blocks, `return` and `?`, `Self` in methods, `unsafe fn`, and doc comments between attributes.
#![deny(unused_variables, unused_mut, unreachable_code)]
use diesel::prelude::*;
use diesel::SqliteConnection;
use diesel_facade::{reader, writer, Facade, TransactionContext};

diesel::table! { items (id) { id -> Integer, name -> Text, qty -> Integer } }

#[derive(TransactionContext)]
struct Ctx {
    #[facade]
    db: Facade<SqliteConnection>,
}

struct Arr<const N: usize>;

trait Len {
    const LEN: usize;
}

impl<const N: usize> Len for Arr<N> {
    const LEN: usize = N;
}

/// A const generic in braces in the where-clause: the body starts after it.
#[reader]
fn braces_in_where<const N: usize>(ctx: &mut Ctx) -> QueryResult<usize>
where
    Arr<{ N }>: Len,
{
    let _ = ctx.conn();
    Ok(<Arr<{ N }> as Len>::LEN)
}

/// An `impl Trait` in the return type.
#[reader]
fn names(ctx: &mut Ctx) -> QueryResult<impl Iterator<Item = String>> {
    let names: Vec<String> = items::table.select(items::name).load(ctx.conn())?;
    Ok(names.into_iter())
}

#[reader]
fn inner_docs(ctx: &mut Ctx) -> QueryResult<i64> {
    //! An inner doc comment, then an inner attribute, at the top of the body.
    #![doc = "More documentation."]
    #![allow(unused_variables)]
    let unused = 1;
    items::table.count().get_result(ctx.conn())
}

#[writer]
fn cfg_gated(ctx: &mut Ctx) -> QueryResult<i32> {
    #[cfg(any())]
    let qty = compile_error!("cfg'd out");
    #[cfg(all())]
    let qty = 3;
    #[cfg(any())]
    {
        compile_error!("cfg'd out");
    }
    diesel::insert_into(items::table)
        .values((items::name.eq("cfg"), items::qty.eq(qty)))
        .execute(ctx.conn())?;
    Ok(qty)
}

#[reader]
fn labeled(ctx: &mut Ctx, id: i32) -> QueryResult<i32> {
    let qty = 'found: {
        if id < 0 {
            break 'found 0;
        }
        'rows: loop {
            let qty: Option<i32> = items::table
                .find(id)
                .select(items::qty)
                .first(ctx.conn())
                .optional()?;
            match qty {
                Some(qty) => break 'found qty,
                None => break 'rows,
            }
        }
        -1
    };
    Ok(qty)
}

#[reader]
fn early_return(ctx: &mut Ctx, id: i32) -> QueryResult<i32> {
    if id == 0 {
        return Ok(0);
    }
    let qty = items::table
        .find(id)
        .select(items::qty)
        .first::<i32>(ctx.conn())?;
    return Ok(qty * 2);
}

struct Repo {
    factor: i32,
}

impl Repo {
    const BASE: i32 = 100;

    /// `Self` in the body and the return type of a method.
    #[reader]
    fn load(&self, ctx: &mut Ctx) -> QueryResult<Self> {
        let count: i64 = items::table.count().get_result(ctx.conn())?;
        Ok(Self {
            factor: self.factor + Self::BASE + count as i32,
        })
    }

    /// `mut self` by value.
    #[writer]
    fn consume(mut self, ctx: &mut Ctx) -> QueryResult<i32> {
        self.factor += 1;
        let repo = Self::load(&self, ctx)?;
        Ok(repo.factor - Self::BASE)
    }
}

/// # Safety
///
/// None needed: an `unsafe fn` keeps its qualifier.
#[reader]
unsafe fn unsafe_reader(ctx: &mut Ctx, ptr: *const i32) -> QueryResult<i32> {
    let _ = ctx.conn();
    Ok(unsafe { *ptr })
}

#[allow(dead_code)]
/// A doc comment between attributes,
#[writer]
/// and one after the attribute.
#[allow(clippy::needless_return)]
pub(crate) fn doc_between(ctx: &mut Ctx) -> QueryResult<()> {
    diesel::delete(items::table).execute(ctx.conn())?;
    return Ok(());
}

/// A data-access function written by a `macro_rules!` macro: the body
/// arrives as a `$body:block` fragment, the return type as a `$ret:ty`.
macro_rules! counting_reader {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($ctx:ident) -> $ret:ty $body:block) => {
        $(#[$meta])*
        #[reader]
        $vis fn $name($ctx: &mut Ctx) -> $ret $body
    };
}

counting_reader! {
    /// The number of items.
    pub(crate) fn count_items(ctx) -> QueryResult<i64> {
        items::table.count().get_result(ctx.conn())
    }
}

#[writer]
fn create_table(ctx: &mut Ctx) -> QueryResult<usize> {
    diesel::sql_query(
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, qty INTEGER NOT NULL)",
    )
    .execute(ctx.conn())
}

fn main() {
    let path = std::env::temp_dir().join(format!("unusual-functions-{}.db", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let mut ctx = Ctx {
        db: Facade::builder()
            .writer(path.to_str().expect("utf-8"))
            .build()
            .expect("facade"),
    };
    create_table(&mut ctx).expect("schema");
    assert_eq!(braces_in_where::<3>(&mut ctx).expect("braces"), 3);
    assert_eq!(cfg_gated(&mut ctx).expect("cfg"), 3);
    assert_eq!(names(&mut ctx).expect("names").collect::<Vec<_>>(), ["cfg"]);
    assert_eq!(inner_docs(&mut ctx).expect("inner docs"), 1);
    assert_eq!(labeled(&mut ctx, 1).expect("labeled"), 3);
    assert_eq!(labeled(&mut ctx, 2).expect("labeled"), -1);
    assert_eq!(labeled(&mut ctx, -1).expect("labeled"), 0);
    assert_eq!(early_return(&mut ctx, 0).expect("return"), 0);
    assert_eq!(early_return(&mut ctx, 1).expect("return"), 6);
    let repo = Repo { factor: 1 };
    assert_eq!(repo.load(&mut ctx).expect("load").factor, 102);
    assert_eq!(repo.consume(&mut ctx).expect("consume"), 3);
    let value = 7;
    assert_eq!(unsafe { unsafe_reader(&mut ctx, &value) }.expect("unsafe"), 7);
    assert_eq!(count_items(&mut ctx).expect("count"), 1);
    doc_between(&mut ctx).expect("delete");
    assert_eq!(inner_docs(&mut ctx).expect("inner docs"), 0);
    drop(ctx);
    let _ = std::fs::remove_file(&path);
}
