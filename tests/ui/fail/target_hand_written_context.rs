//! A hand-written context that does not implement `Retarget` is told how to get it.
use diesel::SqliteConnection;
use diesel_facade::{Facade, TargetCell, TransactionContext};

struct Job {
    db: Facade<SqliteConnection>,
}

impl TransactionContext for Job {
    type Connection = SqliteConnection;
    fn facade(&self) -> &Facade<SqliteConnection> {
        &self.db
    }
}

fn switch(job: &mut Job, cell: &Facade<SqliteConnection>) {
    job.target(cell, |_| ());
}

fn main() {}
