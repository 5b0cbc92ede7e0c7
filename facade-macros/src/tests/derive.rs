//! `#[derive(TransactionContext)]`.

use syn::{DeriveInput, File};

use super::{messages, normalized, pointed_at, tokens};
use crate::derive::{derive_transaction_context, transaction_context_impl};

fn derive(source: &str) -> String {
    let input: DeriveInput = syn::parse2(tokens(source)).expect("derive input must parse");
    let output = derive_transaction_context(&input);
    let items: File =
        syn::parse2(output.clone()).unwrap_or_else(|error| panic!("not items ({error}): {output}"));
    normalized(items)
}

fn expected_impl(source: &str) -> String {
    normalized(syn::parse_str::<File>(source).expect("expected source must parse"))
}

fn rejected(source: &str) -> (Vec<String>, Vec<String>) {
    let input: DeriveInput = syn::parse2(tokens(source)).expect("derive input must parse");
    let error = transaction_context_impl(&input).expect_err(source);
    (pointed_at(source, &error), messages(error))
}

/// The impls of `TransactionContext` and `Retarget`, given the first's
/// header up to its where-predicates, the field's type (bounded by
/// `FacadeField` last) and member.
fn facade_impl(header: &str, field_type: &str, member: &str) -> String {
    let retarget = header.replace(
        "::diesel_facade::TransactionContext",
        "::diesel_facade::Retarget",
    );
    expected_impl(&format!(
        "#[automatically_derived]
        impl {header} {field_type}: ::diesel_facade::__private::FacadeField {{
            type Connection = <{field_type} as ::diesel_facade::__private::FacadeField>::Connection;
            #[inline]
            fn facade(&self) -> &::diesel_facade::Facade<Self::Connection> {{
                ::diesel_facade::__private::FacadeField::as_facade(&self.{member})
            }}
        }}
        #[automatically_derived]
        impl {retarget} {field_type}: ::diesel_facade::__private::FacadeField {{
            #[inline]
            fn facade_mut(&mut self) -> &mut ::diesel_facade::Facade<Self::Connection> {{
                ::diesel_facade::__private::FacadeField::as_facade_mut(&mut self.{member})
            }}
        }}"
    ))
}

#[test]
fn a_read_position_field_is_handed_out_and_set_aside_when_retargeting() {
    let field = "::diesel_facade::__private::FacadeField";
    assert_eq!(
        derive("struct Ctx { #[facade] db: Db, #[read_position] pos: ReadPosition }"),
        expected_impl(&format!(
            "#[automatically_derived]
            impl ::diesel_facade::TransactionContext for Ctx where Db: {field} {{
                type Connection = <Db as {field}>::Connection;
                #[inline]
                fn facade(&self) -> &::diesel_facade::Facade<Self::Connection> {{
                    {field}::as_facade(&self.db)
                }}
                #[inline]
                fn read_position(&self) -> ::core::option::Option<&::diesel_facade::ReadPosition> {{
                    ::core::option::Option::Some(&self.pos)
                }}
            }}
            #[automatically_derived]
            impl ::diesel_facade::Retarget for Ctx where Db: {field} {{
                #[inline]
                fn facade_mut(&mut self) -> &mut ::diesel_facade::Facade<Self::Connection> {{
                    {field}::as_facade_mut(&mut self.db)
                }}
                #[inline]
                fn read_position_mut(
                    &mut self,
                ) -> ::core::option::Option<&mut ::diesel_facade::ReadPosition> {{
                    ::core::option::Option::Some(&mut self.pos)
                }}
            }}"
        )),
    );
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
        let error = transaction_context_impl(&input).unwrap_err();
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
fn the_marker_takes_a_database_name_at_most() {
    let (at, messages) =
        rejected("struct Ctx { #[facade] m: Facade<Pg>, #[facade(a, b)] db: Facade<Pg> }");
    assert_eq!(at, ["(a, b)"]);
    assert!(
        messages[0].starts_with("`#[facade(..)]` takes the name of the database, one identifier"),
        "{messages:?}"
    );

    let (at, _) =
        rejected("struct Ctx { #[facade] m: Facade<Pg>, #[facade(\"api\")] db: Facade<Pg> }");
    assert_eq!(at, ["(\"api\")"]);

    let (at, _) = rejected("struct Ctx { #[facade = \"db\"] db: Facade<Pg> }");
    assert_eq!(at, ["= \"db\""]);

    let (at, messages) = rejected("struct Ctx { #[facade] #[facade] db: Facade<Pg> }");
    assert_eq!(at, ["#[facade]"]);
    assert_eq!(
        messages,
        ["duplicate `#[facade]` attribute: the field is already marked; remove this one"]
    );
}

#[test]
fn the_read_position_marker_is_checked_like_the_facade_marker() {
    let (at, messages) = rejected(
        "struct Ctx { #[facade] db: Facade<Pg>, #[read_position] #[read_position] pos: ReadPosition }",
    );
    assert_eq!(at, ["#[read_position]"]);
    assert_eq!(
        messages,
        ["duplicate `#[read_position]` attribute: the field is already marked; remove this one"]
    );

    let (at, messages) =
        rejected("struct Ctx { #[facade] db: Facade<Pg>, #[read_position(db)] pos: ReadPosition }");
    assert_eq!(at, ["(db)"]);
    assert_eq!(messages, ["`#[read_position]` takes no arguments"]);

    let (at, _) =
        rejected("struct Ctx { #[facade] db: Facade<Pg>, #[read_position = 1] pos: ReadPosition }");
    assert_eq!(at, ["= 1"]);
}

#[test]
fn one_field_only_is_the_read_position() {
    let (at, messages) = rejected(
        "struct Ctx { #[facade] db: Facade<Pg>, #[read_position] a: P, #[read_position] b: P, #[read_position] c: P }",
    );
    assert_eq!(at, ["#[read_position]", "#[read_position]"]);
    assert_eq!(
        messages,
        ["only one field can be the context's `#[read_position]`"; 2]
    );
}

#[test]
fn every_problem_of_a_struct_is_reported_at_once() {
    let source = "#[facade] struct Ctx {
        primary: Facade<Pg>,
        archive: Facade<Pg>,
        #[read_position(primary)] first: ReadPosition,
        #[read_position] #[read_position] second: ReadPosition,
    }";
    let (at, messages) = rejected(source);
    assert_eq!(
        at,
        [
            "#[facade]",
            "(primary)",
            "#[read_position]",
            "Ctx",
            "#[read_position]"
        ]
    );
    assert!(messages[0].starts_with("`#[facade]` marks a field"));
    assert_eq!(messages[1], "`#[read_position]` takes no arguments");
    assert!(messages[2].starts_with("duplicate `#[read_position]` attribute"));
    assert!(messages[3].starts_with("several fields hold a `Facade`"));
    assert_eq!(
        messages[4],
        "only one field can be the context's `#[read_position]`"
    );
    // The duplicate is the second marker on `second`, the extra field the first.
    let input: DeriveInput = syn::parse2(tokens(source)).unwrap();
    let error = transaction_context_impl(&input).unwrap_err();
    let columns: Vec<(usize, usize)> = error
        .into_iter()
        .map(|e| (e.span().start().line, e.span().start().column))
        .collect();
    let line = source.lines().nth(4).unwrap();
    let first = line.find("#[read_position]").unwrap();
    let second = line.rfind("#[read_position]").unwrap();
    assert_eq!(columns[2], (5, second));
    assert_eq!(columns[4], (5, first));
}

#[test]
fn the_marker_belongs_on_a_field() {
    let (at, messages) = rejected("#[facade] struct Ctx { db: Facade<Pg> }");
    assert_eq!(at, ["#[facade]"]);
    assert!(messages[0].starts_with("`#[facade]` marks a field"));
}

#[test]
fn named_databases_get_a_database_impl_each() {
    let input: syn::DeriveInput = syn::parse_str(
        "struct Ctx { #[facade] main: Facade<Mysql>, #[facade(api)] api: Facade<Pg>, #[facade(cell0)] c: Facade<Pg> }",
    )
    .unwrap();
    let expanded = transaction_context_impl(&input).unwrap().to_string();
    for (name, field) in [("api", "api"), ("cell0", "c")] {
        let id = crate::database::database_id(name);
        let header = format!(
            "impl :: diesel_facade :: Database < Ctx > for :: diesel_facade :: Named < {id}u64 >"
        );
        assert!(expanded.contains(&header), "{name}: {expanded}");
        assert!(expanded.contains(&format!("const NAME : & 'static str = \"{name}\"")));
        assert!(expanded.contains(&format!("as_facade (& ctx . {field})")));
    }
    // The default database is still the unnamed `#[facade]` field.
    assert!(expanded.contains("as_facade (& self . main)"), "{expanded}");
}

#[test]
fn a_named_database_needs_its_own_name_and_a_default_database() {
    let (at, messages) = rejected(
        "struct Ctx { #[facade] m: Facade<Pg>, #[facade(api)] a: Facade<Pg>, #[facade(api)] b: Facade<Pg> }",
    );
    assert_eq!(at, ["api"]);
    assert!(messages[0].starts_with("the context already has a database named `api`"));

    let (at, messages) = rejected("struct Ctx { #[facade(api)] a: Facade<Pg> }");
    assert_eq!(at, ["Ctx"]);
    assert!(
        messages[0].starts_with("the context has no default database"),
        "{messages:?}"
    );
}

#[test]
fn the_macros_and_the_runtime_agree_on_database_ids() {
    // FNV-1a test vectors; `diesel_facade::database_id` has the same doctest values.
    assert_eq!(crate::database::database_id(""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(crate::database::database_id("a"), 0xaf63_dc4c_8601_ec8c);
}
