//! Code generation for `#[derive(TransactionContext)]`: the context's
//! `TransactionContext` implementation, a `Database<Ctx>` implementation
//! per `#[facade(NAME)]` field, and the checks that two fields are not one
//! database.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{parse_quote, DeriveInput, Generics, Ident, Type};

use crate::ast::{ContextStruct, Field};
use crate::database::named_database;
use crate::errors::{both, Errors};
use crate::valid::CheckedContext;

/// `Database<Ctx>` for the marker of `#[facade(NAME)] field`: what makes
/// `db = NAME` compile for this context, with the field's connection type.
/// The context's generics with `field_type: FacadeField` added. The bound
/// makes a generic field type (`db: F`) work wherever it holds, and on a
/// concrete type that is no facade it is the one error rustc reports (every
/// use of `Connection` in the impl then holds by it).
fn bounded_by_facade_field(
    context: &ContextStruct,
    field_type: &Type,
    facade_field: &TokenStream,
) -> Generics {
    let mut generics = context.input.generics.clone();
    generics
        .make_where_clause()
        .predicates
        .push(parse_quote!(#field_type: #facade_field));
    generics
}

fn impl_named_database(context: &ContextStruct, field: &Field, name: &Ident) -> TokenStream {
    let ident = context.ident;
    let field_type = field.ty;
    let member = &field.member;
    let span = field_type.span();
    let facade_field = quote_spanned!(span=> ::diesel_facade::__private::FacadeField);
    let marker = named_database(name);
    let name = name.to_string();
    let generics = bounded_by_facade_field(context, field_type, &facade_field);
    let (impl_generics, type_generics, where_clause) = generics.split_for_impl();
    quote! {
        #[automatically_derived]
        impl #impl_generics ::diesel_facade::Database<#ident #type_generics> for #marker
        #where_clause
        {
            type Connection = <#field_type as #facade_field>::Connection;
            const NAME: &'static str = #name;

            #[inline]
            fn facade<'__facade_ctx>(
                ctx: &'__facade_ctx #ident #type_generics,
            ) -> &'__facade_ctx ::diesel_facade::Facade<Self::Connection> {
                #facade_field::as_facade(&ctx.#member)
            }
        }
    }
}

/// `SameDb` for each ordered pair of the context's databases but
/// (`Main`, `Main`), which the runtime states for every context: what lets
/// a scope tell the callee's database from its own at compile time.
fn impl_same_db(context: &ContextStruct, checked: &CheckedContext) -> TokenStream {
    if checked.databases.is_empty() {
        return TokenStream::new();
    }
    let ident = context.ident;
    let (impl_generics, type_generics, where_clause) = context.input.generics.split_for_impl();
    let mut markers = vec![(String::new(), quote!(::diesel_facade::Main))];
    markers.extend(
        checked
            .databases
            .iter()
            .map(|(_, name)| (name.to_string(), named_database(name))),
    );
    let mut impls = TokenStream::new();
    for (first, first_marker) in &markers {
        for (second, second_marker) in &markers {
            if first.is_empty() && second.is_empty() {
                continue;
            }
            let answer = if first == second {
                quote!(::diesel_facade::__private::True)
            } else {
                quote!(::diesel_facade::__private::False)
            };
            impls.extend(quote! {
                #[automatically_derived]
                impl #impl_generics ::diesel_facade::__private::SameDb<#second_marker, #ident #type_generics>
                    for #first_marker #where_clause
                {
                    type Eq = #answer;
                }
            });
        }
    }
    impls
}

pub(crate) fn derive_transaction_context(input: &DeriveInput) -> TokenStream {
    transaction_context_impl(input).unwrap_or_else(syn::Error::into_compile_error)
}

/// The impl, or every error in the struct: those in its attributes and
/// those in its choice of fields, together.
pub(crate) fn transaction_context_impl(input: &DeriveInput) -> syn::Result<TokenStream> {
    let mut attr_errors = Errors::default();
    let context = ContextStruct::from_syn(input, &mut attr_errors)?;
    let ((), checked) = both(attr_errors.finish(), context.validate())?;
    Ok(impl_transaction_context(&context, &checked))
}

fn impl_transaction_context(context: &ContextStruct, checked: &CheckedContext) -> TokenStream {
    let field = checked.facade;
    let ident = context.ident;
    let field_type = field.ty;
    let member = &field.member;
    // A field that holds no `Facade` is reported on its type.
    let span = field_type.span();
    let facade_field = quote_spanned!(span=> ::diesel_facade::__private::FacadeField);
    let connection = quote_spanned!(span=> <#field_type as #facade_field>::Connection);
    let facade = quote_spanned!(span=> ::diesel_facade::Facade<Self::Connection>);
    let as_facade = quote_spanned!(span=> #facade_field::as_facade(&self.#member));
    let generics = bounded_by_facade_field(context, field_type, &facade_field);
    let (impl_generics, type_generics, where_clause) = generics.split_for_impl();
    let as_facade_mut = quote_spanned!(span=> #facade_field::as_facade_mut(&mut self.#member));
    let read_position = checked.read_position.map(|field| {
        let member = &field.member;
        let span = field.ty.span();
        quote_spanned! {span=>
            #[inline]
            fn read_position(&self) -> ::core::option::Option<&::diesel_facade::ReadPosition> {
                ::core::option::Option::Some(&self.#member)
            }
        }
    });
    // `Retarget` (pointing the context at a cell) swaps the same field, and
    // sets the `#[read_position]` field aside meanwhile.
    let read_position_mut = checked.read_position.map(|field| {
        let member = &field.member;
        let span = field.ty.span();
        quote_spanned! {span=>
            #[inline]
            fn read_position_mut(
                &mut self,
            ) -> ::core::option::Option<&mut ::diesel_facade::ReadPosition> {
                ::core::option::Option::Some(&mut self.#member)
            }
        }
    });
    let databases = checked
        .databases
        .iter()
        .map(|(field, name)| impl_named_database(context, field, name));
    let same_db = impl_same_db(context, checked);
    quote! {
        #(#databases)*
        #same_db

        #[automatically_derived]
        impl #impl_generics ::diesel_facade::TransactionContext for #ident #type_generics
        #where_clause
        {
            type Connection = #connection;

            #[inline]
            fn facade(&self) -> &#facade {
                #as_facade
            }

            #read_position
        }

        #[automatically_derived]
        impl #impl_generics ::diesel_facade::Retarget for #ident #type_generics
        #where_clause
        {
            #[inline]
            fn facade_mut(&mut self) -> &mut #facade {
                #as_facade_mut
            }

            #read_position_mut
        }
    }
}
