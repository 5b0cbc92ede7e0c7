//! Targeting and the cell map on SQLite: the facade and the read position
//! come back on return and on a panic, positions never cross cells, ids and
//! `DATABASE_CELLS` are checked, and scatter-gather keeps each cell's
//! answer to itself.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use diesel::SqliteConnection;

use super::map::parse_cell_list;
use super::*;
use crate::error::{Error, ErrorKind};
use crate::replica::Position;

type Db = Facade<SqliteConnection>;

fn memory(name: &str) -> Db {
    Facade::builder()
        .writer(format!("file:{name}?mode=memory&cache=shared"))
        .build()
        .expect("an in-memory database")
}

/// A derived-like context with its position in a field of its own.
struct OwnPosition {
    db: Db,
    position: ReadPosition,
}

impl TransactionContext for OwnPosition {
    type Connection = SqliteConnection;
    fn facade(&self) -> &Db {
        &self.db
    }
    fn read_position(&self) -> Option<&ReadPosition> {
        Some(&self.position)
    }
}

impl Retarget for OwnPosition {
    fn facade_mut(&mut self) -> &mut Db {
        &mut self.db
    }
    fn read_position_mut(&mut self) -> Option<&mut ReadPosition> {
        Some(&mut self.position)
    }
}

#[test]
fn target_points_at_the_cell_and_back_and_nests() {
    let (main, a, b) = (memory("t_main"), memory("t_a"), memory("t_b"));
    let mut ctx = main.context();
    let seen = ctx.target(&a, |ctx| {
        let inner = ctx.target(&b, |ctx| ctx.facade().writer_url().to_owned());
        (ctx.facade().writer_url().to_owned(), inner)
    });
    assert_eq!(
        seen,
        (
            "file:t_a?mode=memory&cache=shared".to_owned(),
            "file:t_b?mode=memory&cache=shared".to_owned()
        )
    );
    assert_eq!(ctx.facade().writer_url(), main.writer_url());
}

#[test]
fn target_reverts_after_a_panic() {
    let (main, cell) = (memory("p_main"), memory("p_cell"));
    let mut ctx = OwnPosition {
        db: main.clone(),
        position: ReadPosition::from_token("pg:0/16B3740").unwrap(),
    };
    let caught = catch_unwind(AssertUnwindSafe(|| {
        ctx.target(&cell, |ctx| {
            assert_eq!(ctx.facade().writer_url(), cell.writer_url());
            panic!("inside the cell");
        })
    }));
    assert!(caught.is_err());
    assert_eq!(ctx.facade().writer_url(), main.writer_url());
    assert_eq!(ctx.position.token().as_deref(), Some("pg:0/16B3740"));
}

/// The default position travels with the facade handle: inside, the
/// cell's (empty); afterwards, the context's own again, and a position the
/// cell recorded is not carried out.
#[test]
fn the_handles_position_is_swapped_with_the_facade() {
    let (main, cell) = (memory("h_main"), memory("h_cell"));
    let mut ctx = main.context();
    ctx.facade()
        .read_position()
        .set(Some(Position::PgLsn("0/AA".to_owned())));
    ctx.target(&cell, |ctx| {
        assert_eq!(ctx.read_position().unwrap().token(), None);
        // A commit on the cell records its own position here.
        ctx.read_position()
            .unwrap()
            .set(Some(Position::PgLsn("0/BB".to_owned())));
    });
    assert_eq!(
        ctx.read_position().unwrap().token().as_deref(),
        Some("pg:0/AA")
    );
    // The map's (here: the caller's) handle of the cell is not written.
    assert_eq!(cell.read_position().token(), None);
}

/// A `#[read_position]` field is set aside: the cell starts empty, the
/// field comes back unchanged.
#[test]
fn an_own_position_field_is_set_aside() {
    let (main, cell) = (memory("o_main"), memory("o_cell"));
    let mut ctx = OwnPosition {
        db: main,
        position: ReadPosition::from_token("gtid:0-1-42").unwrap(),
    };
    ctx.target(&cell, |ctx| {
        assert_eq!(ctx.position.token(), None);
        ctx.position.set(Some(Position::Gtid("0-1-7".to_owned())));
    });
    assert_eq!(ctx.position.token().as_deref(), Some("gtid:0-1-42"));
}

#[test]
fn cell_ids_are_checked_and_unknown_ids_named() {
    let mut cells = CellMap::new();
    for bad in ["", "a b", "x=y", "é", &"c".repeat(65), "a\nb"] {
        let err = cells.insert(bad, memory("ids")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{bad:?}: {err}");
    }
    cells.insert("cell_1.eu-west", memory("ids")).unwrap();
    let err = cells.get("cell\n2").unwrap_err();
    assert_eq!(
        err.message(),
        "no cell `cell\\n2` in this CellMap (its cells: cell_1.eu-west)"
    );
    let err = CellMap::<SqliteConnection>::from_configs([
        ("c1", crate::FacadeConfig::default()),
        ("c1", crate::FacadeConfig::default()),
    ])
    .unwrap_err();
    // The first build already fails: an empty SQLite path.
    assert!(err.message().starts_with("cell `c1`: "), "{err}");
}

#[test]
fn a_cell_that_fails_to_build_is_named_without_its_password() {
    let config = crate::FacadeConfig {
        connection: ":memory:".into(),
        max_pool_size: Some(0),
        ..Default::default()
    };
    let twice =
        CellMap::<SqliteConnection>::from_configs([("c1", config.clone()), ("c1", config.clone())])
            .unwrap_err();
    assert!(twice.message().starts_with("cell `c1`: "), "{twice}");
    let ok = crate::FacadeConfig {
        connection: ":memory:".into(),
        ..Default::default()
    };
    let twice = CellMap::<SqliteConnection>::from_configs([("c1", &ok), ("c1", &ok)]).unwrap_err();
    assert_eq!(twice.message(), "cell `c1` is configured twice");
}

#[test]
fn the_cells_variable_keeps_failover_lists_and_rejects_junk() {
    let parsed =
        parse_cell_list("c1=mysql://u:p,w@a/db,mysql://u:p@b/db, c2 = /tmp/x.db,c3=file:y?mode=ro")
            .unwrap();
    assert_eq!(
        parsed,
        [
            (
                "c1".to_owned(),
                "mysql://u:p,w@a/db,mysql://u:p@b/db".to_owned()
            ),
            ("c2".to_owned(), "/tmp/x.db".to_owned()),
            ("c3".to_owned(), "file:y?mode=ro".to_owned()),
        ]
    );
    for bad in ["", " , ", "postgres://u:secret@h/db"] {
        let err = parse_cell_list(bad).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(!err.message().contains("secret"), "{err}");
    }
}

#[test]
fn scatter_gather_reports_each_cells_value_or_error() {
    use diesel::RunQueryDsl;
    let mut cells = CellMap::new();
    for (id, n) in [("a", 1), ("b", 2), ("c", 3)] {
        let db = memory(&format!("sg_{id}"));
        crate::entry::write(&mut db.context(), |ctx| {
            diesel::sql_query("CREATE TABLE IF NOT EXISTS n (v INTEGER)").execute(ctx.conn())?;
            diesel::sql_query(format!("INSERT INTO n VALUES ({n})")).execute(ctx.conn())
        })
        .unwrap();
        cells.insert(id, db).unwrap();
    }
    // A cell without the table: its error, not the others'.
    cells.insert("d", memory("sg_d")).unwrap();
    let ctx = cells.get("a").unwrap().context();
    let started = Instant::now();
    let out = cells.scatter_gather(&ctx, Duration::from_secs(10), |ctx| {
        diesel::select(diesel::dsl::sql::<diesel::sql_types::Integer>(
            "(SELECT v FROM n)",
        ))
        .get_result::<i32>(ctx.conn())
        .map_err(Error::from)
    });
    assert!(started.elapsed() < Duration::from_secs(10));
    let values: Vec<_> = out.iter().map(|(id, o)| (id.as_str(), o.value())).collect();
    assert_eq!(
        values,
        [
            ("a", Some(&1)),
            ("b", Some(&2)),
            ("c", Some(&3)),
            ("d", None)
        ]
    );
    assert!(out["d"]
        .error()
        .unwrap()
        .message()
        .contains("no such table"));
}

#[test]
fn scatter_gather_resumes_a_cells_panic() {
    let mut cells = CellMap::new();
    cells.insert("a", memory("pan_a")).unwrap();
    let ctx = cells.get("a").unwrap().context();
    let caught = catch_unwind(AssertUnwindSafe(|| {
        cells.scatter_gather(&ctx, Duration::from_secs(10), |_| -> Result<(), Error> {
            panic!("a bug in the read")
        })
    }));
    let payload = caught.unwrap_err();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"a bug in the read"));
}

#[test]
fn scatter_gather_with_zero_timeout_times_every_cell_out() {
    let mut cells = CellMap::new();
    cells.insert("a", memory("z_a")).unwrap();
    cells.insert("b", memory("z_b")).unwrap();
    let ctx = cells.get("a").unwrap().context();
    let out = cells.scatter_gather(&ctx, Duration::ZERO, |_| Ok::<_, Error>(1));
    assert!(out.values().all(CellOutcome::is_timed_out), "{out:?}");
}
