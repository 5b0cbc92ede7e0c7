//! The idle context is mutably borrowed by the open transaction: it cannot be re-targeted from inside the closure form.
use diesel::SqliteConnection;
use diesel_facade::{Facade, TargetCell};

fn main() {
    let main = Facade::<SqliteConnection>::builder().writer(":memory:").build().unwrap();
    let cell = main.clone();
    let mut ctx = main.context();
    let _ = diesel_facade::write(&mut ctx, |_scope| {
        ctx.target(&cell, |_| ());
        Ok::<_, diesel_facade::Error>(())
    });
}
