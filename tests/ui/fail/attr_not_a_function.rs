//! `#[reader]`/`#[writer]` on something that is not a function: the error points at the attribute.
use diesel_facade::{reader, writer};

#[writer]
struct NotAFunction {
    id: i32,
}

#[reader]
const QTY: i32 = 1;

fn main() {}
