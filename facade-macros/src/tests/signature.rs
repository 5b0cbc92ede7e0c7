//! Which functions `#[reader]` / `#[writer]` accept, and what they say about
//! the others.

use super::{messages, pointed_at, tokens};
use crate::args::Role;
use crate::ast::DataAccessFn;

fn check(role: Role, source: &str) -> syn::Result<()> {
    let function = DataAccessFn::parse(role, tokens(source))?;
    function.validate(role).map(|_| ())
}

/// The text each error points at, and the messages.
fn rejected(role: Role, source: &str) -> (Vec<String>, Vec<String>) {
    let error = check(role, source).expect_err(source);
    (pointed_at(source, &error), messages(error))
}

#[test]
fn accepted_signatures() {
    let sources = [
        "fn f(ctx: &mut RequestContext) -> QueryResult<()> {}",
        "pub(crate) fn f(ctx: &mut RequestContext, id: i32) -> Result<i32, MyError> {}",
        "fn f<C: TransactionContext>(ctx: &mut C) -> anyhow::Result<()> {}",
        "fn f<'a, C>(ctx: &'a mut C) -> std::result::Result<(), E> where C: TransactionContext {}",
        "fn f(&self, ctx: &mut RequestContext) -> AppResult<()> {}",
        "fn f(self: Box<Self>, ctx: &mut RequestContext) -> QueryResult<()> {}",
        "fn f(mut self, ctx: &mut Self) -> QueryResult<()> {}",
        "fn f(_: &mut RequestContext) -> QueryResult<()> {}",
        "fn f(mut ctx: &mut RequestContext) -> QueryResult<()> {}",
        "unsafe fn f(ctx: &mut Ctx<'_>) -> QueryResult<()> {}",
        "fn f(ctx: &mut RequestContext) -> QueryResult<impl Iterator<Item = i32>> {}",
    ];
    for role in [Role::Reader, Role::Writer] {
        for source in sources {
            check(role, source).unwrap_or_else(|error| panic!("{source}: {error}"));
        }
    }
}

/// Asserts that `source` is rejected with errors pointing at `at`, the
/// first of which contains `message`.
fn assert_rejected(role: Role, source: &str, at: &[&str], message: &str) {
    let (pointed, messages) = rejected(role, source);
    assert_eq!(pointed, at, "{source}");
    assert!(messages[0].contains(message), "{source}: {messages:?}");
}

#[test]
fn qualifiers_that_cannot_run_a_transaction() {
    assert_rejected(
        Role::Writer,
        "async fn f(ctx: &mut RequestContext) -> QueryResult<()> {}",
        &["async"],
        "`#[writer]` cannot be applied to an `async fn`: diesel is synchronous;",
    );
    assert_rejected(
        Role::Reader,
        "const fn f(ctx: &mut RequestContext) -> QueryResult<()> {}",
        &["const"],
        "`#[reader]` cannot be applied to a `const fn`",
    );
    assert_rejected(
        Role::Reader,
        "extern \"C\" fn f(ctx: &mut RequestContext) -> QueryResult<()> {}",
        &["extern \"C\""],
        "`#[reader]` cannot be applied to an `extern` function",
    );
    assert_rejected(
        Role::Writer,
        "unsafe fn f(ctx: &mut RequestContext, ...) -> QueryResult<()> {}",
        &["..."],
        "`#[writer]` cannot be applied to a variadic function",
    );
}

#[test]
fn a_missing_context_points_at_the_parameters() {
    assert_rejected(
        Role::Writer,
        "fn f() -> QueryResult<()> {}",
        &["()"],
        "`#[writer]` needs a context parameter: the first parameter must be `&mut C`",
    );
    assert_rejected(
        Role::Reader,
        "fn f(&self) -> QueryResult<()> {}",
        &["(&self)"],
        "the first parameter after `self` must be `&mut C`",
    );
}

#[test]
fn the_context_must_be_a_mutable_reference() {
    assert_rejected(
        Role::Reader,
        "fn f(ctx: &RequestContext) -> QueryResult<()> {}",
        &["&RequestContext"],
        "the context parameter must be `&mut`, not `&`",
    );
    assert_rejected(
        Role::Writer,
        "fn f(&self, ctx: RequestContext) -> QueryResult<()> {}",
        &["RequestContext"],
        "the context parameter must be a mutable reference `&mut C`",
    );
}

#[test]
fn an_impl_trait_context_asks_for_a_named_generic() {
    let named_generic = "use a named generic parameter instead, \
                         e.g. `fn name<C: TransactionContext>(ctx: &mut C, ..)`";
    assert_rejected(
        Role::Writer,
        "fn f(ctx: &mut impl TransactionContext) -> QueryResult<()> {}",
        &["impl TransactionContext"],
        named_generic,
    );
    assert_rejected(
        Role::Reader,
        "fn f(ctx: &mut Wrapper<impl Sized>) -> QueryResult<()> {}",
        &["impl Sized"],
        named_generic,
    );
}

#[test]
fn the_return_type_must_be_a_result() {
    let expected =
        "`#[reader]` functions must return `Result<T, E>` with `E: From<diesel_facade::Error>`";
    for (source, output) in [
        // No return type: the error goes where it belongs.
        ("fn f(ctx: &mut RequestContext) {}", ")"),
        ("fn f(ctx: &mut RequestContext) -> i32 {}", "i32"),
        (
            "fn f(ctx: &mut RequestContext) -> Option<i32> {}",
            "Option<i32>",
        ),
        (
            "fn f(ctx: &mut RequestContext) -> impl Sized {}",
            "impl Sized",
        ),
    ] {
        assert_rejected(Role::Reader, source, &[output], expected);
    }
}

#[test]
fn every_problem_of_a_signature_is_reported() {
    let (at, messages) = rejected(Role::Writer, "async fn f(ctx: &Ctx) -> i32 {}");
    assert_eq!(at, ["async", "&Ctx", "i32"]);
    assert_eq!(messages.len(), 3);
}

#[test]
fn items_that_are_not_functions_with_a_body() {
    let error = check(Role::Writer, "struct S;").unwrap_err();
    assert_eq!(messages(error), ["`#[writer]` applies to functions only"]);

    let source = "fn f(ctx: &mut RequestContext) -> QueryResult<()>;";
    let (at, messages) = rejected(Role::Reader, source);
    assert_eq!(at, ["fn f(ctx: &mut RequestContext) -> QueryResult<()>"]);
    assert!(messages[0].starts_with("`#[reader]` needs a function body"));
}
