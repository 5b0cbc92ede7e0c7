//! Two databases on one context, possibly on different backends: the
//! default one (`#[facade] main`) and `#[facade(api)] api`. Each scenario
//! is generic over both connection types and run by `tests/tests/named.rs`
//! on SQLite + PostgreSQL and MariaDB + PostgreSQL.

use diesel::QueryResult;
use diesel_facade::{
    reader, writer, ErrorKind, Facade, ReadOnlyConnection, SupportedConnection, TransactionContext,
};

use crate::scenarios::TypedQueries;

/// A request context with a default database and a named one.
#[derive(TransactionContext)]
pub struct TwoDatabases<M: SupportedConnection, A: SupportedConnection> {
    #[facade]
    pub main: Facade<M>,
    #[facade(api)]
    pub api: Facade<A>,
}

impl<M: TypedQueries, A: TypedQueries> TwoDatabases<M, A> {
    /// Fresh databases for `test` on `M`'s and `A`'s test servers.
    #[track_caller]
    pub fn setup(test: &str) -> Self {
        TwoDatabases {
            main: crate::facade::<M>(&format!("{test}_m"), |b| b),
            api: crate::facade::<A>(&format!("{test}_a"), |b| b),
        }
    }
}

#[writer(db = api)]
fn insert_api_item<M: TypedQueries, A: TypedQueries>(
    ctx: &mut TwoDatabases<M, A>,
    id: i32,
) -> QueryResult<usize> {
    // The api database's own connection type, not the default one's.
    let conn: &mut A = ctx.conn();
    A::insert_item(conn, id, format!("api-{id}"), 1)
}

#[reader(db = api)]
fn api_item_exists<M: TypedQueries, A: TypedQueries>(
    ctx: &mut TwoDatabases<M, A>,
    id: i32,
) -> QueryResult<bool> {
    let conn: &mut ReadOnlyConnection<A> = ctx.conn();
    A::item_exists(conn, id)
}

#[reader(db = api, allow_replica)]
fn api_item_count<M: TypedQueries, A: TypedQueries>(
    ctx: &mut TwoDatabases<M, A>,
) -> QueryResult<i64> {
    A::count_items(ctx.conn())
}

#[writer]
fn insert_main_item<M: TypedQueries, A: TypedQueries>(
    ctx: &mut TwoDatabases<M, A>,
    id: i32,
) -> QueryResult<usize> {
    let conn: &mut M = ctx.conn();
    M::insert_item(conn, id, format!("main-{id}"), 1)
}

#[reader]
fn main_item_exists<M: TypedQueries, A: TypedQueries>(
    ctx: &mut TwoDatabases<M, A>,
    id: i32,
) -> QueryResult<bool> {
    let conn: &mut ReadOnlyConnection<M> = ctx.conn();
    M::item_exists(conn, id)
}

/// An api writer composed of api writers and readers, which join its
/// transaction; fails after the writes when `fail` is set.
#[writer(db = api, retry)]
fn insert_two_api_items<M: TypedQueries, A: TypedQueries>(
    ctx: &mut TwoDatabases<M, A>,
    first: i32,
    fail: bool,
) -> QueryResult<i64> {
    insert_api_item(ctx, first)?;
    assert!(
        api_item_exists(ctx, first)?,
        "a joined api reader sees the api writer's row"
    );
    savepoint_api_item(ctx, first + 1)?;
    if fail {
        return Err(diesel::result::Error::RollbackTransaction);
    }
    api_item_count(ctx)
}

#[writer(db = api, savepoint)]
fn savepoint_api_item<M: TypedQueries, A: TypedQueries>(
    ctx: &mut TwoDatabases<M, A>,
    id: i32,
) -> QueryResult<usize> {
    insert_api_item(ctx, id)
}

#[writer(db = api, independent)]
fn insert_api_item_independently<M: TypedQueries, A: TypedQueries>(
    ctx: &mut TwoDatabases<M, A>,
    id: i32,
) -> QueryResult<usize> {
    insert_api_item(ctx, id)
}

/// `db = api` functions use the api database (its own connection type,
/// pool and transactions); the others the default database.
pub fn each_function_uses_the_database_it_names<M: TypedQueries, A: TypedQueries>() {
    let mut ctx = TwoDatabases::<M, A>::setup("named_each");
    let (main_before, api_before) = (ctx.main.stats(), ctx.api.stats());

    insert_main_item(&mut ctx, 1).unwrap();
    insert_api_item(&mut ctx, 2).unwrap();

    assert!(main_item_exists(&mut ctx, 1).unwrap());
    assert!(!main_item_exists(&mut ctx, 2).unwrap(), "api row in main");
    assert!(api_item_exists(&mut ctx, 2).unwrap());
    assert!(!api_item_exists(&mut ctx, 1).unwrap(), "main row in api");

    let (main_after, api_after) = (ctx.main.stats(), ctx.api.stats());
    assert_eq!(main_after.transactions - main_before.transactions, 3);
    assert_eq!(main_after.commits - main_before.commits, 3);
    assert_eq!(api_after.transactions - api_before.transactions, 3);
    assert_eq!(api_after.commits - api_before.commits, 3);
}

/// On the named database the nesting table holds as on the default one:
/// readers and writers join, a savepoint writer nests, `Err` rolls all of
/// it back, an independent writer commits on its own.
pub fn a_named_database_nests_like_the_default<M: TypedQueries, A: TypedQueries>() {
    let mut ctx = TwoDatabases::<M, A>::setup("named_nests");
    let (main_before, before) = (ctx.main.stats(), ctx.api.stats());

    assert_eq!(insert_two_api_items(&mut ctx, 10, false).unwrap(), 2);
    let after = ctx.api.stats();
    assert_eq!(
        after.transactions - before.transactions,
        1,
        "one api transaction"
    );
    assert!(
        api_item_exists(&mut ctx, 11).unwrap(),
        "the savepoint's row"
    );

    assert!(insert_two_api_items(&mut ctx, 20, true).is_err());
    assert!(!api_item_exists(&mut ctx, 20).unwrap(), "rolled back");
    assert!(!api_item_exists(&mut ctx, 21).unwrap(), "rolled back");

    insert_api_item_independently(&mut ctx, 30).unwrap();
    assert!(api_item_exists(&mut ctx, 30).unwrap());
    assert_eq!(
        ctx.main.stats().transactions,
        main_before.transactions,
        "main was never used"
    );
}

/// A second context on the same databases, as another request would be.
fn other<M: TypedQueries, A: TypedQueries>(ctx: &TwoDatabases<M, A>) -> TwoDatabases<M, A> {
    TwoDatabases {
        main: ctx.main.clone(),
        api: ctx.api.clone(),
    }
}

#[reader(db = api)]
fn api_reader_calls_main_writer<M: TypedQueries, A: TypedQueries>(
    ctx: &mut TwoDatabases<M, A>,
    id: i32,
    others: &mut TwoDatabases<M, A>,
) -> QueryResult<bool> {
    insert_main_item(ctx, id)?;
    assert!(
        main_item_exists(ctx, id)?,
        "main's reader joins main's writer"
    );
    // The main transaction began inside the api one: its COMMIT waits.
    main_item_exists(others, id)
}

/// A default-database writer called inside an api reader begins the
/// default database's own transaction (the api one is read-only and another
/// database), and commits it when the outermost call ends, not before.
pub fn a_default_writer_inside_an_api_reader_commits_with_the_outermost_call<
    M: TypedQueries,
    A: TypedQueries,
>() {
    let mut ctx = TwoDatabases::<M, A>::setup("named_inside");
    let mut others = other(&ctx);
    let (main_before, api_before) = (ctx.main.stats(), ctx.api.stats());
    let seen_before_the_end = api_reader_calls_main_writer(&mut ctx, 1, &mut others).unwrap();
    let (main_after, api_after) = (ctx.main.stats(), ctx.api.stats());
    assert!(
        !seen_before_the_end,
        "committed before the outermost call ended"
    );
    // The writer's transaction, joined by the reader after it; and the
    // other context's read.
    assert_eq!(main_after.transactions - main_before.transactions, 2);
    assert_eq!(main_after.commits - main_before.commits, 2);
    assert_eq!(api_after.commits - api_before.commits, 1);
    assert!(
        main_item_exists(&mut others, 1).unwrap(),
        "committed at the end"
    );
}

#[writer]
fn main_writer_through_api<M: TypedQueries, A: TypedQueries>(
    ctx: &mut TwoDatabases<M, A>,
    id: i32,
    fail: bool,
) -> QueryResult<()> {
    insert_main_item(ctx, id)?;
    api_writer_calls_main(ctx, id)?;
    if fail {
        return Err(diesel::result::Error::RollbackTransaction);
    }
    Ok(())
}

#[writer(db = api)]
fn api_writer_calls_main<M: TypedQueries, A: TypedQueries>(
    ctx: &mut TwoDatabases<M, A>,
    id: i32,
) -> QueryResult<()> {
    insert_api_item(ctx, id)?;
    // Back on main: joins the writer open further out.
    assert!(main_item_exists(ctx, id)?, "joined main's open transaction");
    insert_main_item(ctx, id + 1)?;
    Ok(())
}

/// A default-database call inside an api call inside a default-database
/// writer joins that writer's transaction; an error of the outermost body
/// rolls back both databases.
pub fn calls_back_into_a_database_join_its_open_transaction<M: TypedQueries, A: TypedQueries>() {
    let mut ctx = TwoDatabases::<M, A>::setup("named_back");
    let (main_before, api_before) = (ctx.main.stats(), ctx.api.stats());
    main_writer_through_api(&mut ctx, 1, false).unwrap();
    let (main_after, api_after) = (ctx.main.stats(), ctx.api.stats());
    assert_eq!(
        main_after.transactions - main_before.transactions,
        1,
        "one main transaction"
    );
    assert_eq!(api_after.transactions - api_before.transactions, 1);
    assert!(main_item_exists(&mut ctx, 2).unwrap());
    assert!(api_item_exists(&mut ctx, 1).unwrap());

    main_writer_through_api(&mut ctx, 10, true).unwrap_err();
    assert!(!main_item_exists(&mut ctx, 10).unwrap(), "main rolled back");
    assert!(!main_item_exists(&mut ctx, 11).unwrap(), "main rolled back");
    assert!(!api_item_exists(&mut ctx, 10).unwrap(), "api rolled back");
}

#[reader]
fn main_reader_through_api_reader<M: TypedQueries, A: TypedQueries>(
    ctx: &mut TwoDatabases<M, A>,
) -> Result<(), diesel_facade::Error> {
    api_reader_writes_main(ctx)
}

#[reader(db = api)]
fn api_reader_writes_main<M: TypedQueries, A: TypedQueries>(
    ctx: &mut TwoDatabases<M, A>,
) -> Result<(), diesel_facade::Error> {
    insert_main_item(ctx, 5)?;
    Ok(())
}

/// A default-database writer reached through an api reader inside a
/// default-database reader would write in a read-only transaction: the
/// compiler cannot see it (the api function is compiled once for every
/// caller), so it is a `WrongNesting` error at run time, before any SQL.
pub fn a_writer_reached_through_another_database_inside_a_reader_is_wrong_nesting<
    M: TypedQueries,
    A: TypedQueries,
>() {
    let mut ctx = TwoDatabases::<M, A>::setup("named_wrong");
    let err = main_reader_through_api_reader(&mut ctx).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WrongNesting, "{err}");
    assert!(err.to_string().contains("the default database"), "{err}");
    assert!(!main_item_exists(&mut ctx, 5).unwrap());
}

#[writer(db = api)]
fn insert_api_item_and_tell_its_session<M: TypedQueries, A: TypedQueries>(
    ctx: &mut TwoDatabases<M, A>,
    id: i32,
    own_id_sql: &str,
) -> QueryResult<i64> {
    insert_api_item(ctx, id)?;
    A::session_id(ctx.conn(), own_id_sql)
}

#[writer]
fn main_writer_kills_the_api_session<M: TypedQueries, A: TypedQueries>(
    ctx: &mut TwoDatabases<M, A>,
    own_id_sql: &str,
    admin_url: &str,
) -> Result<(), diesel_facade::Error> {
    insert_main_item(ctx, 1)?;
    let api_session = insert_api_item_and_tell_its_session(ctx, 2, own_id_sql)?;
    // The api transaction waits for this call to end; its session dies
    // before its COMMIT.
    crate::kill_session::<A>(admin_url, api_session);
    Ok(())
}

#[writer(db = api)]
fn api_writer_kills_its_own_session<M: TypedQueries, A: TypedQueries>(
    ctx: &mut TwoDatabases<M, A>,
    own_id_sql: &str,
    admin_url: &str,
) -> Result<(), diesel_facade::Error> {
    insert_api_item(ctx, 3)?;
    insert_main_item(ctx, 4)?; // begins main inside, committed after api
    let api_session = A::session_id(ctx.conn(), own_id_sql)?;
    crate::kill_session::<A>(admin_url, api_session);
    Ok(())
}

/// The commit order and its failure modes, with the api database's session
/// killed before its COMMIT: the outermost call's database commits first.
/// When the api transaction is the inner one, the default database has
/// committed by then: `PartiallyCommitted`, naming both. When the api
/// transaction is the outermost one, nothing is committed: the default
/// database's transaction, which began inside it, is rolled back.
pub fn a_failed_commit_after_another_database_committed_is_partially_committed<
    M: TypedQueries,
    A: TypedQueries,
>() {
    let (own_id_sql, _) = A::KILL.expect("the api database is a server backend");
    let admin_url = crate::server_url::<A>();
    let mut ctx = TwoDatabases::<M, A>::setup("named_partial");

    let err = main_writer_kills_the_api_session(&mut ctx, own_id_sql, &admin_url).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PartiallyCommitted, "{err}");
    let message = err.to_string();
    assert!(
        message.contains("committed on the default database, then the COMMIT on `api` failed"),
        "{message}"
    );
    assert!(
        std::error::Error::source(&err).is_some(),
        "the COMMIT's error"
    );
    assert!(main_item_exists(&mut ctx, 1).unwrap(), "main committed");
    assert!(!api_item_exists(&mut ctx, 2).unwrap(), "api did not");

    let err = api_writer_kills_its_own_session(&mut ctx, own_id_sql, &admin_url).unwrap_err();
    assert_ne!(err.kind(), ErrorKind::PartiallyCommitted, "{err}");
    assert!(
        matches!(
            err.kind(),
            ErrorKind::CommitUnknown | ErrorKind::Disconnected
        ),
        "{err}"
    );
    assert!(!api_item_exists(&mut ctx, 3).unwrap());
    assert!(!main_item_exists(&mut ctx, 4).unwrap(), "main rolled back");
}

#[reader(replica)]
fn main_replica_reader_through_api<M: TypedQueries, A: TypedQueries>(
    ctx: &mut TwoDatabases<M, A>,
) -> Result<bool, diesel_facade::Error> {
    api_reader_reads_main(ctx)
}

#[reader(db = api)]
fn api_reader_reads_main<M: TypedQueries, A: TypedQueries>(
    ctx: &mut TwoDatabases<M, A>,
) -> Result<bool, diesel_facade::Error> {
    Ok(main_item_exists(ctx, 1)?)
}

/// A primary-only reader reached through another database inside a
/// replica reader of its own database would read the (possibly stale)
/// replica transaction: `WrongNesting`, as the table says for one database.
pub fn a_primary_reader_reached_through_another_database_inside_a_replica_reader_is_wrong_nesting<
    M: TypedQueries,
    A: TypedQueries,
>() {
    let mut ctx = TwoDatabases::<M, A>::setup("named_wrong_replica");
    let err = main_replica_reader_through_api(&mut ctx).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WrongNesting, "{err}");
}

#[writer(db = api)]
fn api_writer_catches_a_panic_in_main<M: TypedQueries, A: TypedQueries>(
    ctx: &mut TwoDatabases<M, A>,
) -> Result<(), diesel_facade::Error> {
    insert_api_item(ctx, 1)?;
    insert_main_item(ctx, 2)?; // begins main inside the api transaction
    let caught =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| panicking_main_writer(ctx)));
    assert!(caught.is_err());
    Ok(())
}

#[writer]
fn panicking_main_writer<M: TypedQueries, A: TypedQueries>(
    ctx: &mut TwoDatabases<M, A>,
) -> QueryResult<()> {
    insert_main_item(ctx, 3)?; // joins main's waiting transaction
    panic!("a bug in a nested call");
}

/// A panic in a call that joined a waiting transaction of another database
/// rolls that transaction back; if the panic is caught and the outermost
/// body returns `Ok` anyway, nothing is committed and the call fails.
pub fn a_caught_panic_in_a_joined_other_database_commits_nothing<
    M: TypedQueries,
    A: TypedQueries,
>() {
    let mut ctx = TwoDatabases::<M, A>::setup("named_panic");
    let err = api_writer_catches_a_panic_in_main(&mut ctx).unwrap_err();
    assert!(
        err.to_string()
            .contains("a panic inside this call was caught"),
        "{err}"
    );
    assert!(!api_item_exists(&mut ctx, 1).unwrap());
    assert!(!main_item_exists(&mut ctx, 2).unwrap());
    assert!(!main_item_exists(&mut ctx, 3).unwrap());
    // Both pools are usable afterwards.
    insert_main_item(&mut ctx, 4).unwrap();
    insert_api_item(&mut ctx, 4).unwrap();
}

#[writer(independent)]
fn independent_main_writer<M: TypedQueries, A: TypedQueries>(
    ctx: &mut TwoDatabases<M, A>,
) -> QueryResult<usize> {
    insert_main_item(ctx, 9)
}

#[reader(db = api)]
fn api_reader_calls_independent_main<M: TypedQueries, A: TypedQueries>(
    ctx: &mut TwoDatabases<M, A>,
) -> Result<usize, diesel_facade::Error> {
    Ok(independent_main_writer(ctx)?)
}

#[writer]
fn main_writer_through_api_to_independent_main<M: TypedQueries, A: TypedQueries>(
    ctx: &mut TwoDatabases<M, A>,
) -> Result<usize, diesel_facade::Error> {
    api_reader_calls_independent_main(ctx)
}

/// On SQLite, an independent writer inside a writer of the same database
/// could never commit; reached through another database, the compiler
/// cannot see the outer writer, and the call fails at once (`Config`)
/// instead of waiting for its own caller.
pub fn sqlite_independent_writer_reached_through_another_database_inside_a_writer_fails_at_once<
    A: TypedQueries,
>() {
    let mut ctx = TwoDatabases::<diesel::SqliteConnection, A>::setup("named_indep");
    let started = std::time::Instant::now();
    let err = main_writer_through_api_to_independent_main(&mut ctx).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    // Outside any transaction it is an ordinary writer.
    assert_eq!(api_reader_calls_independent_main(&mut ctx).unwrap(), 1);
}
