//! The token-level path (`fast`) against the general one: the same tokens,
//! with the same spans, for every function it accepts, and `None` for every
//! shape it leaves to the general path.

use proc_macro2::{TokenStream, TokenTree};
use syn::ItemFn;

use super::{normalized, tokens};
use crate::args::Role;
use crate::expand::general;
use crate::fast;

/// Functions of the usual shape, as users write them.
const ACCEPTED: &[&str] = &[
    "fn f(ctx: &mut Ctx) -> QueryResult<()> { Ok(()) }",
    "pub fn find_user(ctx: &mut Ctx, id: i32) -> QueryResult<Option<User>> {
        users::table.find(id).first(ctx.conn()).optional()
    }",
    "pub fn create_post(
        ctx: &mut Ctx,
        user_id: i32,
        title: &str,
    ) -> QueryResult<Post> {
        let post = insert(ctx, user_id, title)?;
        Ok(post)
    }",
    "pub(crate) fn f(ctx: &mut Ctx,) -> QueryResult<()> { Ok(()) }",
    "pub(in crate::a) fn f(ctx: &mut Ctx) -> QueryResult<()> { Ok(()) }",
    "/// Finds a user.\n///\n/// More.\n#[allow(clippy::needless_question_mark)]\n#[cfg(test)]\npub fn f(ctx: &mut Ctx) -> QueryResult<()> { Ok(()) }",
    "#[doc(alias = \"inline_user\")] fn f(ctx: &mut Ctx) -> QueryResult<()> { Ok(()) }",
    "fn f(&self, ctx: &mut Ctx) -> QueryResult<()> { Ok(()) }",
    "fn f(&mut self, ctx: &mut Ctx, n: u8) -> QueryResult<()> { Ok(()) }",
    "fn f(self, ctx: &mut Ctx) -> QueryResult<()> { Ok(()) }",
    "fn f(mut self, ctx: &mut Self) -> QueryResult<()> { Ok(()) }",
    "fn f(self: Box<Self>, ctx: &mut Ctx) -> QueryResult<()> { Ok(()) }",
    "fn f(&'a self, ctx: &'a mut Ctx) -> QueryResult<()> { Ok(()) }",
    "fn f(ctx: &'static mut Ctx) -> QueryResult<()> { Ok(()) }",
    "fn f(ctx: &mut crate::context::AppCtx<diesel::PgConnection>) -> QueryResult<()> { Ok(()) }",
    "fn f(ctx: &mut ::app::Ctx<A, B<C>>) -> QueryResult<()> { Ok(()) }",
    "fn f(ctx: &mut Ctx) -> Result<Vec<(i32, String)>, MyError> { Ok(vec![]) }",
    "fn f(ctx: &mut Ctx) -> anyhow::Result<()> { Ok(()) }",
    "fn f(ctx: &mut Ctx) -> ::core::result::Result<(), E> { Ok(()) }",
    "fn f(ctx: &mut Ctx) -> std::result::Result<Box<dyn Fn(i32) -> i32>, E> { todo!() }",
    "fn f(ctx: &mut Ctx) -> AppResult<Vec<Vec<Vec<i32>>>> { Ok(vec![]) }",
    "fn f(ctx: &mut Ctx) -> r#Result<[u8; 4]> { Ok([0; 4]) }",
    "fn f(ctx: &mut Ctx, g: impl Fn(i32) -> i32, rows: &[Row]) -> QueryResult<()> { Ok(()) }",
    "fn f(ctx: &mut Ctx, map: HashMap<String, Vec<u8>>, (a, b): (i32, i32), mut n: u32) -> QueryResult<()> { Ok(()) }",
    "fn f(ctx: &mut Ctx, #[allow(unused)] x: i32, f: fn(&str) -> bool) -> QueryResult<()> { Ok(()) }",
    "fn r#match(r#ctx: &mut Ctx, r#type: i32) -> QueryResult<()> { Ok(()) }",
    "fn f(ctx:&mut Ctx)->QueryResult<()>{Ok(())}",
];

/// Shapes the general path reads, or rejects with its own errors.
const DECLINED: &[&str] = &[
    "fn f<C: TransactionContext>(ctx: &mut C) -> QueryResult<()> { Ok(()) }",
    "fn f(ctx: &mut Ctx) -> QueryResult<()> where Ctx: Sized { Ok(()) }",
    "async fn f(ctx: &mut Ctx) -> QueryResult<()> { Ok(()) }",
    "const fn f(ctx: &mut Ctx) -> QueryResult<()> { Ok(()) }",
    "unsafe fn f(ctx: &mut Ctx) -> QueryResult<()> { Ok(()) }",
    "extern \"C\" fn f(ctx: &mut Ctx) -> QueryResult<()> { Ok(()) }",
    "pub unsafe fn f(ctx: &mut Ctx) -> QueryResult<()> { Ok(()) }",
    "#[inline] fn f(ctx: &mut Ctx) -> QueryResult<()> { Ok(()) }",
    "#[r#inline(always)] fn f(ctx: &mut Ctx) -> QueryResult<()> { Ok(()) }",
    "#[cfg_attr(feature = \"x\", inline)] fn f(ctx: &mut Ctx) -> QueryResult<()> { Ok(()) }",
    "fn f(ctx: &mut Ctx) -> QueryResult<()> { #![allow(unused)] Ok(()) }",
    "fn f(mut ctx: &mut Ctx) -> QueryResult<()> { Ok(()) }",
    "fn f(_: &mut Ctx) -> QueryResult<()> { Ok(()) }",
    "fn f(ref ctx: &mut Ctx) -> QueryResult<()> { Ok(()) }",
    "fn f(ctx: &Ctx) -> QueryResult<()> { Ok(()) }",
    "fn f(ctx: Ctx) -> QueryResult<()> { Ok(()) }",
    "fn f(ctx: &&mut Ctx) -> QueryResult<()> { Ok(()) }",
    "fn f(ctx: &mut Ctx<'_>) -> QueryResult<()> { Ok(()) }",
    "fn f(ctx: &'_ mut Ctx) -> QueryResult<()> { Ok(()) }",
    "fn f(ctx: &mut Ctx<'a>) -> QueryResult<()> { Ok(()) }",
    "fn f(ctx: &mut Ctx<&'static str>) -> QueryResult<()> { Ok(()) }",
    "fn f(ctx: &mut impl TransactionContext) -> QueryResult<()> { Ok(()) }",
    "fn f(ctx: &mut Wrapper<impl Sized>) -> QueryResult<()> { Ok(()) }",
    "fn f(ctx: &mut dyn Context) -> QueryResult<()> { Ok(()) }",
    "fn f(ctx: &mut (Ctx)) -> QueryResult<()> { Ok(()) }",
    "fn f(ctx: &mut [Ctx; 1]) -> QueryResult<()> { Ok(()) }",
    "fn f(#[allow(unused)] ctx: &mut Ctx) -> QueryResult<()> { Ok(()) }",
    "fn f((ctx): &mut Ctx) -> QueryResult<()> { Ok(()) }",
    "fn f(ctx: &mut Ctx) { }",
    "fn f(ctx: &mut Ctx) -> i32 { 0 }",
    "fn f(ctx: &mut Ctx) -> Option<i32> { None }",
    "fn f(ctx: &mut Ctx) -> impl Sized { }",
    "fn f(ctx: &mut Ctx) -> QueryResult<impl Iterator<Item = i32>> { todo!() }",
    "fn f(ctx: &mut Ctx) -> QueryResult<(impl Sized, i32)> { todo!() }",
    "fn f(ctx: &mut Ctx) -> <T as Trait>::Result { todo!() }",
    "fn f(ctx: &mut Ctx) -> &'static QueryResult<()> { todo!() }",
    "fn f(ctx: &mut Ctx) -> (QueryResult<()>) { todo!() }",
    "fn f(ctx: &mut Ctx, ...) -> QueryResult<()> { Ok(()) }",
    "fn f() -> QueryResult<()> { Ok(()) }",
    "fn f(&self) -> QueryResult<()> { Ok(()) }",
    "fn f(ctx: &mut Ctx) -> QueryResult<()>;",
    "struct S;",
    // Found by an attack pass: a path pattern that starts with `self` is
    // no receiver (the general path takes it for the context and says
    // why it is not one), and keywords are no names.
    "fn f(self::Unit: Unit, ctx: &mut Ctx) -> QueryResult<()> { Ok(()) }",
    "fn f(self::Unit {}: Unit, ctx: &mut Ctx) -> QueryResult<()> { Ok(()) }",
    "fn f(self:&Self, ctx: &mut Ctx) -> QueryResult<()> { Ok(()) }",
    "fn f(true: &mut Ctx) -> QueryResult<()> { Ok(()) }",
    "fn f(false: &mut Ctx) -> QueryResult<()> { Ok(()) }",
    "fn f(crate: &mut Ctx) -> QueryResult<()> { Ok(()) }",
    "fn f(super: &mut Ctx) -> QueryResult<()> { Ok(()) }",
    "fn f(Self: &mut Ctx) -> QueryResult<()> { Ok(()) }",
];

/// Functions where syn reads tokens as one that the user wrote as two (a
/// negative literal, `-` and `1`): the fast path keeps the user's tokens,
/// so the spans of the literal differ (and the compiler's suggestions are
/// better for it), and the functions are the same.
const ACCEPTED_RETOKENIZED: &[&str] = &[
    "fn f(ctx: &mut Ctx, x: Foo<-1>) -> QueryResult<()> { Ok(()) }",
    "fn f(ctx: &mut Ctx) -> QueryResult<Foo<-1i32>> { todo!() }",
    "#[my_attr = -1.5] fn f(ctx: &mut Ctx) -> QueryResult<()> { Ok(()) }",
];

/// Each token's kind, text and span (line and column of both ends),
/// groups with their delimiter and span, depth first. A `Punct`'s spacing is
/// left out: syn prints every `>` of `>>` on its own, where the fast path
/// keeps the user's tokens; `the_same_function` also compares the
/// functions as syn reads them.
fn shape(tokens: TokenStream) -> Vec<String> {
    let mut out = Vec::new();
    for tree in tokens {
        let span = tree.span();
        let at = format!(
            "{}:{}-{}:{}",
            span.start().line,
            span.start().column,
            span.end().line,
            span.end().column
        );
        match tree {
            TokenTree::Group(group) => {
                out.push(format!("group {:?} {at}", group.delimiter()));
                out.extend(shape(group.stream()));
                out.push("end".to_owned());
            }
            TokenTree::Punct(p) => out.push(format!("punct {} {at}", p.as_char())),
            TokenTree::Ident(i) => out.push(format!("ident {i} {at}")),
            TokenTree::Literal(l) => out.push(format!("literal {l} {at}")),
        }
    }
    out
}

fn the_same_function(role: Role, source: &str, same_spans: bool) {
    let fast = fast::data_access_fn(role, &tokens(source))
        .unwrap_or_else(|| panic!("the fast path declined {source}"));
    let general = general(role, TokenStream::new(), tokens(source));
    if same_spans {
        assert_eq!(shape(fast.clone()), shape(general.clone()), "{source}");
    } else {
        assert_ne!(shape(fast.clone()), shape(general.clone()), "{source}");
    }
    let read = |output: TokenStream| {
        normalized(
            syn::parse2::<ItemFn>(output.clone())
                .unwrap_or_else(|error| panic!("not one function ({error}): {output}")),
        )
    };
    assert_eq!(read(fast), read(general), "{source}");
}

#[test]
fn the_fast_path_writes_what_the_general_path_writes() {
    for source in ACCEPTED {
        the_same_function(Role::Reader, source, true);
        the_same_function(Role::Writer, source, true);
    }
    for source in ACCEPTED_RETOKENIZED {
        the_same_function(Role::Reader, source, false);
        the_same_function(Role::Writer, source, false);
    }
}

#[test]
fn the_fast_path_declines_every_other_shape() {
    for source in DECLINED {
        for role in [Role::Reader, Role::Writer] {
            assert!(
                fast::data_access_fn(role, &tokens(source)).is_none(),
                "the fast path accepted {source}"
            );
        }
    }
}

#[test]
fn arguments_take_the_general_path() {
    // `data_access_fn` only asks the fast path when the attribute has no
    // arguments; with one, the output is the general path's.
    let source = "fn f(ctx: &mut Ctx) -> QueryResult<()> { Ok(()) }";
    let expanded = crate::expand::data_access_fn(Role::Writer, tokens("retry"), tokens(source));
    assert!(expanded.to_string().contains("write_retry"), "{expanded}");
}
