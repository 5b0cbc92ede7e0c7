//! Code generation.
//!
//! A data-access function keeps everything the caller and rustdoc see
//! (attributes, visibility, qualifiers, receiver, generics, where-clause,
//! return type); only its context parameter becomes `&mut dyn` the access
//! trait (the idle context or a scope) and its body becomes one call into
//! `diesel_facade::__private`, with the
//! original block as a closure. The block's tokens are moved, not rebuilt,
//! so the compiler reports problems in it on the user's own lines.
//!
//! On an error in the function the original item is emitted unchanged next
//! to the errors, so the rest of the crate still sees the function and does
//! not add a cascade of "cannot find function" errors. Errors in the
//! arguments alone do not stop the expansion: the arguments that were
//! accepted apply (see `attr`).

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::visit_mut::{self, VisitMut};
use syn::{
    parse_quote, parse_quote_spanned, AngleBracketedGenericArguments, FnArg, GenericArgument,
    GenericParam, Ident, Lifetime, LifetimeParam, ParenthesizedGenericArguments, Pat, PatIdent,
    PatType, Path, PathArguments, PathSegment, Token, TraitBound, TraitBoundModifier, Type,
    TypeBareFn, TypeParamBound, TypeReference, TypeTraitObject,
};

use crate::args::{self, Args, Role, Transaction};
use crate::ast::DataAccessFn;
use crate::database::named_database;
use crate::fast;
use crate::runtime::Runtime;
use crate::valid::{find_impl_trait, CheckedFn};

/// The binding for a context parameter whose pattern is not a plain name
/// (`_`, `&mut ctx`): the runtime call needs something to pass.
const HIDDEN_CONTEXT: &str = "__facade_context";

pub(crate) fn data_access_fn(role: Role, args: TokenStream, item: TokenStream) -> TokenStream {
    if args.is_empty() {
        if let Some(function) = fast::data_access_fn(role, &item) {
            return function;
        }
    }
    general(role, args, item)
}

/// Every form of data-access function, and every error: syn reads the
/// signature and prints the rewritten one.
pub(crate) fn general(role: Role, args: TokenStream, item: TokenStream) -> TokenStream {
    let Args {
        transaction,
        database,
        error: args_error,
    } = args::parse_args(role, args);
    let expanded = DataAccessFn::parse(role, item.clone()).and_then(|function| {
        let checked = function.validate(role)?;
        Ok(rewrite(
            &function,
            &checked,
            &transaction,
            database.as_ref(),
        ))
    });
    match (expanded, args_error) {
        (Ok(function), None) => function,
        (Ok(function), Some(args_error)) => {
            let args_error = args_error.into_compile_error();
            quote!(#args_error #function)
        }
        (Err(error), args_error) => {
            let error = match args_error {
                Some(mut args_error) => {
                    args_error.combine(error);
                    args_error
                }
                None => error,
            }
            .into_compile_error();
            let item = stub_body(item);
            quote!(#error #item)
        }
    }
}

/// The rejected function with its body replaced, so the only errors the
/// user sees are the macro's (the body would otherwise add misleading ones,
/// such as "no method `conn` on `&mut Ctx`"). Anything that is not a function
/// is returned unchanged.
fn stub_body(item: TokenStream) -> TokenStream {
    match syn::parse2::<syn::ItemFn>(item.clone()) {
        Ok(mut function) => {
            *function.block = parse_quote!({ ::core::unimplemented!() });
            function
                .attrs
                .push(parse_quote!(#[allow(unused_variables, unused_mut, dead_code)]));
            quote!(#function)
        }
        Err(_) => item,
    }
}

fn rewrite(
    function: &DataAccessFn,
    checked: &CheckedFn,
    transaction: &Transaction,
    database: Option<&Ident>,
) -> TokenStream {
    let runtime = Runtime::of(transaction);
    let mut item = function.item.clone();

    // `C` appears in a bound on the new parameter, where elided lifetimes
    // are not allowed: name them, as fresh parameters of the function.
    let mut context_type = (*checked.reference.elem).clone();
    let named = name_elided_lifetimes(&mut context_type);
    // Errors about `C` (say, it is no `TransactionContext`) point at the
    // user's type rather than at the attribute.
    let span = checked.reference.elem.span();
    let access = Ident::new(runtime.access, Span::call_site());
    let scope = Ident::new(runtime.scope, Span::call_site());
    // `db = NAME`: the named database's marker, as the capability's and the
    // scope's last parameter (left out for the default database, whose
    // expansion is unchanged).
    let db = database.map(named_database);
    let db_param = db.as_ref().map(|db| quote!(, #db));
    let scope_type = quote_spanned!(span=> ::diesel_facade::#scope<'_, #context_type #db_param>);

    let generics = &mut item.sig.generics;
    let after_lifetimes = generics.lifetimes().count();
    for (offset, lifetime) in named.into_iter().enumerate() {
        let param = GenericParam::Lifetime(LifetimeParam::new(lifetime));
        generics.params.insert(after_lifetimes + offset, param);
    }
    // The scope is a trait object: the function is not generic over it (it
    // is compiled once, in its own crate, and its code stays out of the
    // crate's metadata), and a turbofish names only the user's parameters.
    let scope_arg: Type = match &db {
        None => Type::TraitObject(TypeTraitObject {
            dyn_token: Some(Token![dyn](span)),
            bounds: std::iter::once(access_bound(access, context_type.clone(), span)).collect(),
        }),
        Some(db) => parse_quote_spanned! {span=>
            dyn ::diesel_facade::__private::#access<#context_type, #db>
        },
    };
    if let (Some(name), Some(db)) = (database, &db) {
        if !mentions_generic_type(&checked.reference.elem, &item.sig.generics)
            && !mentions_lifetime(&context_type)
        {
            // A name the context does not declare is one error, on the name.
            // (A where-clause with no generic parameter is checked where it
            // is written, and every later use of the database relies on it.
            // On a generic context, or one with a lifetime (`Ctx<'_>`), it
            // would hide the derive's impl from the body, which could then
            // not name the database's connection type: there the callers'
            // contexts are checked instead.)
            item.sig.generics.make_where_clause().predicates.push(
                parse_quote_spanned! {name.span()=>
                    #db: ::diesel_facade::Database<#context_type>
                },
            );
        }
    }

    let param = checked.context.param;
    let binding = match &*param.pat {
        Pat::Ident(PatIdent {
            by_ref: None,
            subpat: None,
            ident,
            ..
        }) => ident.clone(),
        _ => Ident::new(HIDDEN_CONTEXT, Span::mixed_site()),
    };
    let reference = TypeReference {
        elem: Box::new(scope_arg),
        ..checked.reference.clone()
    };
    if let Some(input) = item.sig.inputs.iter_mut().nth(checked.context.index) {
        // The parameter's attributes and pattern describe the user's
        // binding, which now lives in the closure.
        *input = FnArg::Typed(PatType {
            attrs: Vec::new(),
            pat: Box::new(Pat::Ident(PatIdent {
                attrs: Vec::new(),
                by_ref: None,
                mutability: None,
                ident: binding.clone(),
                subpat: None,
            })),
            colon_token: param.colon_token,
            ty: Box::new(Type::Reference(reference)),
        });
    }

    let attrs = &param.attrs;
    let pattern = &param.pat;
    let output = checked.output;
    // Closures cannot declare an `impl Trait` return type; inference from
    // the function's own return type covers that case.
    let output = find_impl_trait(output)
        .is_none()
        .then(|| quote!(-> #output));
    let body = &function.item.block;
    let function = Ident::new(runtime.function, Span::call_site());
    let policy = runtime.policy.map(|policy| quote!(#policy,));
    let route = runtime.route.map(|route| {
        let route = Ident::new(route, Span::call_site());
        quote!(::diesel_facade::__private::Route::#route,)
    });
    let savepoint = runtime.savepoint.map(|savepoint| quote!(#savepoint,));
    let call = quote! {
        ::diesel_facade::__private::#function(
            #binding,
            #route
            #savepoint
            #policy
            |#(#attrs)* #pattern: &mut #scope_type| #output #body
        )
    };
    item.with_body(call)
}

/// `::diesel_facade::__private::ACCESS<C>`, built as the syntax
/// tree it parses to (cheaper than printing and parsing it, on every
/// build). The tokens it adds carry `span`, the context type's.
fn access_bound(access: Ident, context_type: Type, span: Span) -> TypeParamBound {
    let mut args = Punctuated::new();
    args.push(GenericArgument::Type(context_type));
    let segments = [
        PathSegment::from(Ident::new("diesel_facade", span)),
        PathSegment::from(Ident::new("__private", span)),
        PathSegment {
            ident: access,
            arguments: PathArguments::AngleBracketed(AngleBracketedGenericArguments {
                colon2_token: None,
                lt_token: Token![<](span),
                args,
                gt_token: Token![>](span),
            }),
        },
    ];
    TypeParamBound::Trait(TraitBound {
        paren_token: None,
        modifier: TraitBoundModifier::None,
        lifetimes: None,
        path: Path {
            leading_colon: Some(Token![::](span)),
            segments: segments.into_iter().collect(),
        },
    })
}

/// Whether `ty` names a lifetime other than `'static`.
fn mentions_lifetime(ty: &Type) -> bool {
    struct Finder(bool);
    impl<'ast> syn::visit::Visit<'ast> for Finder {
        fn visit_lifetime(&mut self, lifetime: &'ast syn::Lifetime) {
            if lifetime.ident != "static" {
                self.0 = true;
            }
        }
    }
    let mut finder = Finder(false);
    syn::visit::visit_type(&mut finder, ty);
    finder.0
}

/// Whether `ty` names one of the type (or const) parameters of `generics`,
/// or `Self`. (The parameters of an enclosing `impl` are out of sight: a
/// context type that names one gets the where-clause, and `ctx.conn()` of
/// such a function only knows the connection type from a bound the user
/// writes, see `docs/databases.md`.)
fn mentions_generic_type(ty: &Type, generics: &syn::Generics) -> bool {
    struct Finder<'g> {
        params: Vec<&'g Ident>,
        found: bool,
    }
    impl<'ast> syn::visit::Visit<'ast> for Finder<'_> {
        fn visit_path(&mut self, path: &'ast syn::Path) {
            if let Some(first) = path.segments.first() {
                if first.ident == "Self" || self.params.iter().any(|param| **param == first.ident) {
                    self.found = true;
                }
            }
            syn::visit::visit_path(self, path);
        }
    }
    let params = generics
        .params
        .iter()
        .filter_map(|param| match param {
            GenericParam::Type(param) => Some(&param.ident),
            GenericParam::Const(param) => Some(&param.ident),
            GenericParam::Lifetime(_) => None,
        })
        .collect();
    let mut finder = Finder {
        params,
        found: false,
    };
    syn::visit::visit_type(&mut finder, ty);
    finder.found
}

/// Replaces `'_` and the missing lifetime of `&T` in `ty` by fresh named
/// lifetimes (`'__facade_ctx0`, ...) and returns them, in order.
fn name_elided_lifetimes(ty: &mut Type) -> Vec<Lifetime> {
    struct Namer(Vec<Lifetime>);

    impl Namer {
        fn fresh(&mut self, span: Span) -> Lifetime {
            let lifetime = Lifetime::new(&format!("'__facade_ctx{}", self.0.len()), span);
            self.0.push(lifetime.clone());
            lifetime
        }
    }

    impl VisitMut for Namer {
        fn visit_lifetime_mut(&mut self, lifetime: &mut Lifetime) {
            if lifetime.ident == "_" {
                *lifetime = self.fresh(lifetime.span());
            }
        }

        fn visit_type_reference_mut(&mut self, reference: &mut TypeReference) {
            if reference.lifetime.is_none() {
                reference.lifetime = Some(self.fresh(reference.and_token.span));
            }
            visit_mut::visit_type_reference_mut(self, reference);
        }

        // Elision inside `fn(&T)` and `dyn Fn(&T)` is higher-ranked and
        // allowed anywhere: leave it alone.
        fn visit_type_bare_fn_mut(&mut self, _: &mut TypeBareFn) {}

        fn visit_parenthesized_generic_arguments_mut(
            &mut self,
            _: &mut ParenthesizedGenericArguments,
        ) {
        }
    }

    let mut namer = Namer(Vec::new());
    namer.visit_type_mut(ty);
    namer.0
}
