//! Which functions `#[reader]` / `#[writer]` accept, and what they say about
//! the others.

use super::{messages, pointed_at, tokens};
use crate::ast::DataAccessFn;
use crate::attr::Role;

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

#[test]
fn async_fn_is_rejected_on_async() {
    let (at, messages) = rejected(
        Role::Writer,
        "async fn f(ctx: &mut RequestContext) -> QueryResult<()> {}",
    );
    assert_eq!(at, ["async"]);
    assert!(
        messages[0]
            .starts_with("`#[writer]` cannot be applied to an `async fn`: diesel is synchronous;"),
        "{messages:?}"
    );
}

#[test]
fn const_extern_and_variadic_functions_are_rejected() {
    let (at, messages) = rejected(
        Role::Reader,
        "const fn f(ctx: &mut RequestContext) -> QueryResult<()> {}",
    );
    assert_eq!(at, ["const"]);
    assert!(messages[0].contains("`const fn`"));

    let (at, messages) = rejected(
        Role::Reader,
        "extern \"C\" fn f(ctx: &mut RequestContext) -> QueryResult<()> {}",
    );
    assert_eq!(at, ["extern \"C\""]);
    assert!(messages[0].contains("`extern` function"));

    let (at, messages) = rejected(
        Role::Writer,
        "unsafe extern \"C\" fn f(ctx: &mut RequestContext, ...) -> QueryResult<()> {}",
    );
    assert_eq!(at, ["extern \"C\"", "..."]);
    assert!(messages[1].contains("variadic"));
}

#[test]
fn a_missing_context_points_at_the_parameters() {
    let (at, messages) = rejected(Role::Writer, "fn f() -> QueryResult<()> {}");
    assert_eq!(at, ["()"]);
    assert!(
        messages[0].starts_with(
            "`#[writer]` needs a context parameter: the first parameter must be `&mut C`"
        ),
        "{messages:?}"
    );

    let (at, messages) = rejected(Role::Reader, "fn f(&self) -> QueryResult<()> {}");
    assert_eq!(at, ["(&self)"]);
    assert!(messages[0].contains("the first parameter after `self` must be"));
}

#[test]
fn the_context_must_be_a_mutable_reference() {
    let (at, messages) = rejected(
        Role::Reader,
        "fn f(ctx: &RequestContext) -> QueryResult<()> {}",
    );
    assert_eq!(at, ["&RequestContext"]);
    assert!(messages[0].starts_with("the context parameter must be `&mut`, not `&`"));

    let (at, messages) = rejected(
        Role::Writer,
        "fn f(&self, ctx: RequestContext) -> QueryResult<()> {}",
    );
    assert_eq!(at, ["RequestContext"]);
    assert!(messages[0].starts_with("the context parameter must be a mutable reference `&mut C`"));
}

#[test]
fn an_impl_trait_context_asks_for_a_named_generic() {
    let (at, messages) = rejected(
        Role::Writer,
        "fn f(ctx: &mut impl TransactionContext) -> QueryResult<()> {}",
    );
    assert_eq!(at, ["impl TransactionContext"]);
    assert!(
        messages[0].contains("use a named generic parameter instead, e.g. `fn name<C: TransactionContext>(ctx: &mut C, ..)`"),
        "{messages:?}"
    );

    let (at, _) = rejected(
        Role::Reader,
        "fn f(ctx: &mut Wrapper<impl Sized>) -> QueryResult<()> {}",
    );
    assert_eq!(at, ["impl Sized"]);
}

#[test]
fn the_return_type_must_be_a_result() {
    let expected =
        "`#[reader]` functions must return `Result<T, E>` with `E: From<diesel_facade::Error>`";
    let (at, messages) = rejected(Role::Reader, "fn f(ctx: &mut RequestContext) {}");
    assert_eq!(at, [")"]);
    assert!(messages[0].starts_with(expected), "{messages:?}");

    for (source, output) in [
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
        let (at, messages) = rejected(Role::Reader, source);
        assert_eq!(at, [output], "{source}");
        assert!(messages[0].starts_with(expected), "{source}: {messages:?}");
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
