//! `#[derive(TransactionContext)]`.

use syn::{DeriveInput, ItemImpl};

use super::{messages, normalized, pointed_at, tokens};
use crate::ast::ContextStruct;
use crate::expand::derive_transaction_context;

fn derive(source: &str) -> String {
    let input: DeriveInput = syn::parse2(tokens(source)).expect("derive input must parse");
    let output = derive_transaction_context(&input);
    let item: ItemImpl = syn::parse2(output.clone())
        .unwrap_or_else(|error| panic!("not one impl ({error}): {output}"));
    normalized(item)
}

fn expected_impl(source: &str) -> String {
    normalized(syn::parse_str::<ItemImpl>(source).expect("expected source must parse"))
}

fn rejected(source: &str) -> (Vec<String>, Vec<String>) {
    let input: DeriveInput = syn::parse2(tokens(source)).expect("derive input must parse");
    let error = ContextStruct::from_syn(&input)
        .and_then(|context| context.facade_field().map(|_| ()))
        .expect_err(source);
    (pointed_at(source, &error), messages(error))
}

/// The impl, given its header up to its where-predicates, the field's type
/// (bounded by `FacadeField` last) and member.
fn facade_impl(header: &str, field_type: &str, member: &str) -> String {
    expected_impl(&format!(
        "#[automatically_derived]
        impl {header} {field_type}: ::diesel_facade::__private::FacadeField {{
            type Connection = <{field_type} as ::diesel_facade::__private::FacadeField>::Connection;
            #[inline]
            fn facade(&self) -> &::diesel_facade::Facade<Self::Connection> {{
                ::diesel_facade::__private::FacadeField::as_facade(&self.{member})
            }}
        }}"
    ))
}

#[test]
fn the_marked_field_is_handed_out() {
    assert_eq!(
        derive(
            "struct RequestContext { request_id: String, #[facade] db: Facade<SqliteConnection> }"
        ),
        facade_impl(
            "::diesel_facade::TransactionContext for RequestContext where",
            "Facade<SqliteConnection>",
            "db"
        ),
    );
}

#[test]
fn a_type_alias_goes_through_facade_field() {
    assert_eq!(
        derive("struct Ctx { #[facade] db: Db, other: Facade<Pg> }"),
        facade_impl(
            "::diesel_facade::TransactionContext for Ctx where",
            "Db",
            "db"
        ),
    );
}

#[test]
fn the_only_facade_field_needs_no_marker() {
    assert_eq!(
        derive("struct Ctx { id: u64, db: diesel_facade::Facade<PgConnection> }"),
        facade_impl(
            "::diesel_facade::TransactionContext for Ctx where",
            "diesel_facade::Facade<PgConnection>",
            "db"
        ),
    );
}

#[test]
fn tuple_structs_use_the_field_position() {
    assert_eq!(
        derive("struct Ctx(#[facade] Db, u64);"),
        facade_impl(
            "::diesel_facade::TransactionContext for Ctx where",
            "Db",
            "0"
        ),
    );
    assert_eq!(
        derive("struct Ctx(u64, Facade<C>);"),
        facade_impl(
            "::diesel_facade::TransactionContext for Ctx where",
            "Facade<C>",
            "1"
        ),
    );
}

#[test]
fn generics_and_where_clauses_carry_over() {
    assert_eq!(
        derive(
            "pub struct Ctx<'a, C: Connection, const N: usize> where C: Send { #[facade] db: Facade<C>, name: &'a str }"
        ),
        facade_impl(
            "<'a, C: Connection, const N: usize> ::diesel_facade::TransactionContext for Ctx<'a, C, N> where C: Send,",
            "Facade<C>",
            "db"
        ),
    );
}

#[test]
fn only_structs_derive_it() {
    let (at, messages) = rejected("enum Ctx { A(Facade<C>) }");
    assert_eq!(at, ["enum"]);
    assert!(messages[0].starts_with("`TransactionContext` can only be derived for a struct"));
    let (at, _) = rejected("union Ctx { a: u32 }");
    assert_eq!(at, ["union"]);
}

#[test]
fn a_context_without_a_facade_field_is_told_to_mark_it() {
    let (at, messages) = rejected("struct RequestContext { db: Pool, id: u64 }");
    assert_eq!(at, ["RequestContext"]);
    assert_eq!(
        messages,
        ["mark the field that holds the `diesel_facade::Facade` with `#[facade]`"]
    );

    let (at, messages) = rejected("struct Ctx;");
    assert_eq!(at, ["Ctx"]);
    assert_eq!(messages.len(), 1);

    let (at, messages) = rejected("struct Ctx { a: Facade<Pg>, b: Facade<Pg> }");
    assert_eq!(at, ["Ctx"]);
    assert!(messages[0].starts_with("several fields hold a `Facade`; mark the field"));
}

#[test]
fn one_field_only_is_marked() {
    let source = "struct Ctx { #[facade] a: Facade<Pg>, #[facade] b: Facade<Pg>, #[facade] c: Db }";
    let (at, messages) = rejected(source);
    assert_eq!(at, ["#[facade]", "#[facade]"]);
    assert!(messages[0].starts_with("only one field can be marked `#[facade]`"));
    let error_columns: Vec<usize> = {
        let input: DeriveInput = syn::parse2(tokens(source)).unwrap();
        let context = ContextStruct::from_syn(&input).unwrap();
        let error = context.facade_field().map(|_| ()).unwrap_err();
        error.into_iter().map(|e| e.span().start().column).collect()
    };
    assert_eq!(
        error_columns,
        [
            source.find("#[facade] b").unwrap(),
            source.find("#[facade] c").unwrap()
        ]
    );
}

#[test]
fn the_marker_takes_no_arguments() {
    let (at, messages) = rejected("struct Ctx { #[facade(primary)] db: Facade<Pg> }");
    assert_eq!(at, ["(primary)"]);
    assert_eq!(messages, ["`#[facade]` takes no arguments"]);

    let (at, _) = rejected("struct Ctx { #[facade = \"db\"] db: Facade<Pg> }");
    assert_eq!(at, ["= \"db\""]);

    let (at, messages) = rejected("struct Ctx { #[facade] #[facade] db: Facade<Pg> }");
    assert_eq!(at, ["#[facade]"]);
    assert_eq!(messages, ["duplicate `#[facade]` attribute"]);
}

#[test]
fn the_marker_belongs_on_a_field() {
    let (at, messages) = rejected("#[facade] struct Ctx { db: Facade<Pg> }");
    assert_eq!(at, ["#[facade]"]);
    assert!(messages[0].starts_with("`#[facade]` marks a field"));
}
