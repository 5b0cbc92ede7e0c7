//! The function `#[reader]` / `#[writer]` generate.

use proc_macro2::TokenStream;
use syn::ItemFn;

use super::{normalized, tokens};
use crate::args::Role;
use crate::expand::data_access_fn;

fn expand(role: Role, args: &str, item: &str) -> TokenStream {
    data_access_fn(role, tokens(args), tokens(item))
}

/// The generated function, printed the way syn prints the expected one.
fn expanded_fn(role: Role, args: &str, item: &str) -> String {
    let output = expand(role, args, item);
    let function: ItemFn = syn::parse2(output.clone())
        .unwrap_or_else(|error| panic!("not one function ({error}): {output}"));
    normalized(function)
}

fn expected_fn(source: &str) -> String {
    normalized(syn::parse_str::<ItemFn>(source).expect("expected source must parse"))
}

#[test]
fn writer_matches_the_documented_shape() {
    let generated = expanded_fn(
        Role::Writer,
        "",
        "fn restock(ctx: &mut RequestContext, id: i32) -> QueryResult<Item> { let item = get_item(ctx, id)?; Ok(item) }",
    );
    let expected = expected_fn(
        "#[inline(never)] fn restock(
            ctx: &mut dyn ::diesel_facade::__private::DynWrite<RequestContext>, id: i32
        ) -> QueryResult<Item> {
            ::diesel_facade::__private::write(
                ctx,
                false,
                |ctx: &mut ::diesel_facade::WriterScope<'_, RequestContext>| -> QueryResult<Item> {
                    let item = get_item(ctx, id)?; Ok(item)
                }
            )
        }",
    );
    assert_eq!(generated, expected);
}

#[test]
fn each_form_calls_its_runtime_function() {
    const ITEM: &str = "fn f(ctx: &mut Ctx) -> QueryResult<()> { Ok(()) }";
    let policy = "::diesel_facade::__private::RetryPolicy::";
    let route = "::diesel_facade::__private::Route::";
    let cases = [
        (Role::Reader, "", "read(ctx,", "DynRead", "ReaderScope"),
        (
            Role::Reader,
            "allow_replica",
            &format!("read_replica(ctx, {route}Primary,"),
            "DynReplicaRead",
            "ReplicaScope",
        ),
        (
            Role::Reader,
            "replica",
            &format!("read_replica(ctx, {route}Replica,"),
            "DynReplicaRead",
            "ReplicaScope",
        ),
        (
            Role::Writer,
            "",
            "write(ctx, false,",
            "DynWrite",
            "WriterScope",
        ),
        (
            Role::Writer,
            "savepoint",
            "write(ctx, true,",
            "DynWrite",
            "WriterScope",
        ),
        (
            Role::Writer,
            "independent",
            "writer_independent(ctx,",
            "DynIndependent",
            "WriterScope",
        ),
        (
            Role::Writer,
            "retry",
            &format!("write_retry(ctx, false, {policy}default_attempts(),"),
            "DynWrite",
            "WriterScope",
        ),
        (
            Role::Writer,
            "retry = 5",
            &format!("write_retry(ctx, false, {policy}retries(5),"),
            "DynWrite",
            "WriterScope",
        ),
        (
            Role::Writer,
            "savepoint, retry",
            &format!("write_retry(ctx, true, {policy}default_attempts(),"),
            "DynWrite",
            "WriterScope",
        ),
        (
            Role::Writer,
            "retry = 2, independent",
            &format!("writer_independent_retry(ctx, {policy}retries(2),"),
            "DynIndependent",
            "WriterScope",
        ),
    ];
    for (role, args, call, access, scope) in cases {
        let generated = expanded_fn(role, args, ITEM);
        let expected = expected_fn(&format!(
            "#[inline(never)] fn f(ctx: &mut dyn ::diesel_facade::__private::{access}<Ctx>) -> QueryResult<()> {{
                ::diesel_facade::__private::{call}
                    |ctx: &mut ::diesel_facade::{scope}<'_, Ctx>| -> QueryResult<()> {{ Ok(()) }})
            }}"
        ));
        assert_eq!(generated, expected, "{args}");
    }
}

#[test]
fn the_signature_around_the_context_is_kept() {
    let generated = expanded_fn(
        Role::Reader,
        "",
        "/// Docs.
        #[inline]
        #[cfg(feature = \"x\")]
        pub(crate) unsafe fn f<'a, C, T: Clone, const N: usize>(&'a self, ctx: &'a mut C, rows: [T; N])
            -> Result<&'a str, E>
        where
            C: TransactionContext,
        {
            #![allow(unused)]
            self.get(ctx, rows)
        }",
    );
    let expected = expected_fn(
        "/// Docs.
        #[inline]
        #[cfg(feature = \"x\")]
        pub(crate) unsafe fn f<'a, C, T: Clone, const N: usize>(
            &'a self, ctx: &'a mut dyn ::diesel_facade::__private::DynRead<C>, rows: [T; N]
        ) -> Result<&'a str, E>
        where
            C: TransactionContext,
        {
            #![allow(unused)]
            ::diesel_facade::__private::read(
                ctx,
                |ctx: &mut ::diesel_facade::ReaderScope<'_, C>| -> Result<&'a str, E> { self.get(ctx, rows) }
            )
        }",
    );
    assert_eq!(generated, expected);
}

#[test]
fn elided_lifetimes_of_the_context_type_are_named() {
    let generated = expanded_fn(
        Role::Writer,
        "",
        "fn f<'a, T>(ctx: &'a mut Ctx<'_, &T, fn(&str)>) -> QueryResult<()> { Ok(()) }",
    );
    let expected = expected_fn(
        "#[inline(never)] fn f<'a, '__facade_ctx0, '__facade_ctx1, T>(ctx: &'a mut dyn ::diesel_facade::__private::DynWrite<
            Ctx<'__facade_ctx0, &'__facade_ctx1 T, fn(&str)>
        >) -> QueryResult<()> {
            ::diesel_facade::__private::write(
                ctx,
                false,
                |ctx: &mut ::diesel_facade::WriterScope<'_, Ctx<'__facade_ctx0, &'__facade_ctx1 T, fn(&str)>>|
                    -> QueryResult<()> { Ok(()) }
            )
        }",
    );
    assert_eq!(generated, expected);
}

#[test]
fn patterns_stay_on_the_closure() {
    let generated = expanded_fn(
        Role::Writer,
        "",
        "fn f(#[allow(unused_mut)] mut ctx: &mut Ctx) -> QueryResult<()> { Ok(()) }",
    );
    assert!(
        generated.contains("fn f (ctx : & mut dyn :: diesel_facade :: __private :: DynWrite"),
        "{generated}"
    );
    assert!(
        generated
            .contains("| # [allow (unused_mut)] mut ctx : & mut :: diesel_facade :: WriterScope"),
        "{generated}"
    );

    let generated = expanded_fn(
        Role::Reader,
        "",
        "fn f(_: &mut Ctx) -> QueryResult<()> { Ok(()) }",
    );
    assert!(
        generated
            .contains("(__facade_context : & mut dyn :: diesel_facade :: __private :: DynRead"),
        "{generated}"
    );
    assert!(
        generated.contains(":: read (__facade_context , | _ : & mut"),
        "{generated}"
    );
}

#[test]
fn an_impl_trait_return_type_is_inferred_in_the_closure() {
    let generated = expanded_fn(
        Role::Reader,
        "",
        "fn f(ctx: &mut Ctx) -> QueryResult<impl Iterator<Item = i32>> { Ok(0..3) }",
    );
    assert!(
        generated.contains("ReaderScope < '_ , Ctx > | { Ok (0 .. 3) }"),
        "{generated}"
    );
}

#[test]
fn an_invalid_function_keeps_its_signature_with_a_stub_body_after_its_errors() {
    let item = "async fn f(ctx: &mut Ctx) -> QueryResult<()> { Ok(()) }";
    let output = expand(Role::Writer, "retyr", item).to_string();
    let errors = output.matches("compile_error").count();
    assert_eq!(errors, 2, "{output}");
    // The signature stays (no "cannot find function" cascade at call
    // sites); the body does not (no misleading errors from inside it).
    let signature = tokens("async fn f(ctx: &mut Ctx) -> QueryResult<()>").to_string();
    assert!(output.contains(&signature), "{output}");
    assert!(output.contains("unimplemented"), "{output}");
    assert!(!output.contains("Ok (())"), "{output}");
}

#[test]
fn bad_arguments_alone_still_expand_with_the_accepted_ones() {
    let output = expand(
        Role::Writer,
        "savepoint, retyr",
        "fn f(ctx: &mut Ctx) -> QueryResult<()> { Ok(()) }",
    )
    .to_string();
    assert_eq!(output.matches("compile_error").count(), 1, "{output}");
    assert!(
        output.contains("unknown `#[writer]` argument `retyr`"),
        "{output}"
    );
    assert!(
        output.contains(":: diesel_facade :: __private :: write (ctx , true ,"),
        "{output}"
    );
}

#[test]
fn db_selects_the_named_database_and_checks_the_name_on_a_concrete_context() {
    let id = crate::database::database_id("api");
    let generated = expanded_fn(
        Role::Reader,
        "db = api",
        "fn count(ctx: &mut Ctx) -> QueryResult<i64> { body(ctx) }",
    );
    let expected = expected_fn(&format!(
        "#[inline(never)] fn count(
            ctx: &mut dyn ::diesel_facade::__private::DynRead<Ctx, ::diesel_facade::Named<{id}u64>>
        ) -> QueryResult<i64>
        where ::diesel_facade::Named<{id}u64>: ::diesel_facade::Database<Ctx>
        {{
            ::diesel_facade::__private::read(
                ctx,
                |ctx: &mut ::diesel_facade::ReaderScope<'_, Ctx, ::diesel_facade::Named<{id}u64>>| -> QueryResult<i64> {{ body(ctx) }}
            )
        }}"
    ));
    assert_eq!(generated, expected);
}

#[test]
fn db_on_a_generic_context_leaves_the_check_to_the_callers() {
    // A where-clause on `C` would hide the derive's impl (and with it the
    // connection type) from the body.
    for (generics, context) in [("<C: Bound>", "C"), ("<C>", "Ctx<C>"), ("", "Self")] {
        let generated = expanded_fn(
            Role::Writer,
            "db = api",
            &format!("fn f{generics}(ctx: &mut {context}) -> QueryResult<()> {{ Ok(()) }}"),
        );
        assert!(!generated.contains("Database"), "{context}: {generated}");
        assert!(generated.contains("Named"), "{context}: {generated}");
    }
}

/// Reading only the tokens before the body (the usual path) gives the same
/// function as parsing the whole item.
#[test]
fn the_header_only_parse_agrees_with_the_full_parse() {
    use crate::ast::FnItem;
    let corpus = [
        "fn f(ctx: &mut Ctx) -> QueryResult<()> { Ok(()) }",
        "#[doc = \"x\"] #[inline] pub(crate) fn f<'a, T: Clone + 'a, const N: usize>(ctx: &'a mut Ctx<T>, x: [u8; N]) -> Result<Vec<T>, E> where T: Default, [(); N]: Sized { let v = vec![T::default()]; Ok(v) }",
        "pub async unsafe extern \"C\" fn f(&mut self, ctx: &mut Ctx, (a, b): (i32, i32)) -> QueryResult<i32> { Ok(a + b) }",
        "fn f(ctx: &mut Ctx) -> impl Iterator<Item = i32> + '_ { #[allow(unused)] let x = 1; std::iter::once(x) }",
        "fn f(ctx: &mut Ctx) -> QueryResult<()> where for<'x> &'x Ctx: Send {}",
    ];
    for source in corpus {
        let fast = FnItem::parse_header(tokens(source))
            .unwrap_or_else(|| panic!("the header-only parse declined: {source}"));
        let full: FnItem = syn::parse2(tokens(source)).expect("the full parse");
        let printed = |item: &FnItem| item.with_body(item.block.stream()).to_string();
        assert_eq!(printed(&fast), printed(&full), "{source}");
    }
}

/// What the header-only parse leaves to the full parse: inner attributes to
/// hoist, and anything that is not a function with a body (whose errors the
/// full parse words).
#[test]
fn the_header_only_parse_declines_what_it_cannot_read() {
    use crate::ast::FnItem;
    for source in [
        "fn f(ctx: &mut Ctx) -> QueryResult<()> { #![allow(unused)] Ok(()) }",
        "fn f(ctx: &mut Ctx) -> QueryResult<()>;",
        "struct S { x: i32 }",
        "fn f(ctx: &mut Ctx) -> { Ok(()) }",
        "",
    ] {
        assert!(FnItem::parse_header(tokens(source)).is_none(), "{source}");
    }
}

/// The generated function is not inlined into its callers, unless it has an
/// `inline` attribute of its own (or a `cfg_attr` that may add one): then
/// it keeps only that one.
#[test]
fn the_function_is_not_inlined_unless_it_says_so() {
    let inline_attributes = |item: &str| {
        let function: ItemFn = syn::parse2(expand(Role::Reader, "", item)).unwrap();
        function
            .attrs
            .iter()
            .map(|attr| quote::ToTokens::to_token_stream(attr).to_string())
            .collect::<Vec<_>>()
    };
    const BODY: &str = "(ctx: &mut Ctx) -> QueryResult<()> { Ok(()) }";
    assert_eq!(
        inline_attributes(&format!("/// Doc.\nfn f{BODY}")),
        ["# [doc = \" Doc.\"]", "# [inline (never)]"]
    );
    for own in [
        "#[inline]",
        "#[inline(always)]",
        "#[inline(never)]",
        "#[cfg_attr(feature = \"x\", inline)]",
        "#[r#inline]",
        "#[cfg_attr(feature = \"x\", r#inline(always))]",
    ] {
        let attrs = inline_attributes(&format!("{own} fn f{BODY}"));
        assert_eq!(attrs.len(), 1, "{own}: {attrs:?}");
    }
}
