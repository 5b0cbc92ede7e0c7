//! Checks that turn a parsed item into what the expansion may rely on, or
//! into errors spanned on the offending tokens.
//!
//! Independent problems are all reported in one pass (`syn::Error::combine`),
//! so fixing one does not just reveal the next. Nothing here panics: a check
//! either hands `expand` the pieces it needs or returns an error.

use syn::visit::{self, Visit};
use syn::{Attribute, Error, Ident, ReturnType, Signature, Type, TypeImplTrait, TypeReference};

use crate::args::Role;
use crate::ast::{ContextParam, ContextStruct, DataAccessFn, Field};
use crate::attr::FieldAttrs;
use crate::errors::{both, Errors};

/// A signature the expansion can rewrite.
pub(crate) struct CheckedFn<'a> {
    pub context: ContextParam<'a>,
    /// The context parameter's type, `&mut C` or `&'a mut C`, with `C` free
    /// of `impl Trait`.
    pub reference: &'a TypeReference,
    /// The declared return type, a `…Result<..>`.
    pub output: &'a Type,
}

impl DataAccessFn {
    pub(crate) fn validate(&self, role: Role) -> syn::Result<CheckedFn<'_>> {
        let qualifiers = check_qualifiers(&self.item.sig, role);
        let context = self.check_context(role);
        let output = check_output(&self.item.sig, role);
        let (((), (context, reference)), output) = both(both(qualifiers, context), output)?;
        Ok(CheckedFn {
            context,
            reference,
            output,
        })
    }

    fn check_context(&self, role: Role) -> syn::Result<(ContextParam<'_>, &TypeReference)> {
        let Some(context) = self.context_param() else {
            let after = if self.has_receiver() {
                " after `self`"
            } else {
                ""
            };
            return Err(Error::new(
                self.item.sig.paren_token.span.join(),
                format!(
                    "`{}` needs a context parameter: the first parameter{after} must be \
                     `&mut C` where `C: diesel_facade::TransactionContext`, \
                     e.g. `ctx: &mut RequestContext`",
                    role.attribute()
                ),
            ));
        };
        let reference = match peel(&context.param.ty) {
            Type::Reference(reference) if reference.mutability.is_some() => reference,
            Type::Reference(reference) => {
                return Err(Error::new_spanned(
                    reference,
                    "the context parameter must be `&mut`, not `&`: the transaction in \
                     progress is tracked through it, e.g. `ctx: &mut RequestContext`",
                ))
            }
            other => {
                return Err(Error::new_spanned(
                    other,
                    "the context parameter must be a mutable reference `&mut C` where \
                     `C: diesel_facade::TransactionContext`, e.g. `ctx: &mut RequestContext`",
                ))
            }
        };
        if let Some(impl_trait) = find_impl_trait(&reference.elem) {
            return Err(Error::new_spanned(
                impl_trait,
                format!(
                    "`{}` cannot name an `impl Trait` context: use a named generic parameter \
                     instead, e.g. `fn name<C: TransactionContext>(ctx: &mut C, ..)`",
                    role.attribute()
                ),
            ));
        }
        Ok((context, reference))
    }
}

/// Rejects what cannot run a synchronous transaction around its body.
fn check_qualifiers(sig: &Signature, role: Role) -> syn::Result<()> {
    let attribute = role.attribute();
    let mut errors = Errors::default();
    if let Some(asyncness) = &sig.asyncness {
        errors.push(Error::new_spanned(
            asyncness,
            format!(
                "`{attribute}` cannot be applied to an `async fn`: diesel is synchronous; \
                 make this a plain `fn` and call it from a blocking thread \
                 (e.g. inside `tokio::task::spawn_blocking`)"
            ),
        ));
    }
    if let Some(constness) = &sig.constness {
        errors.push(Error::new_spanned(
            constness,
            format!(
                "`{attribute}` cannot be applied to a `const fn`: a transaction runs at run time"
            ),
        ));
    }
    if let Some(abi) = &sig.abi {
        errors.push(Error::new_spanned(
            abi,
            format!(
                "`{attribute}` cannot be applied to an `extern` function: its context \
                 parameter becomes generic; wrap it in a Rust function instead"
            ),
        ));
    }
    if let Some(variadic) = &sig.variadic {
        errors.push(Error::new_spanned(
            variadic,
            format!("`{attribute}` cannot be applied to a variadic function"),
        ));
    }
    errors.finish()
}

fn check_output(sig: &Signature, role: Role) -> syn::Result<&Type> {
    let message = format!(
        "`{}` functions must return `Result<T, E>` with `E: From<diesel_facade::Error>` \
         (`QueryResult<T>` qualifies): the transaction commits on `Ok` and rolls back on `Err`",
        role.attribute()
    );
    match &sig.output {
        // Where the return type is missing: right after the parameters.
        ReturnType::Default => Err(Error::new(sig.paren_token.span.close(), message)),
        ReturnType::Type(_, ty) if is_result(ty) => Ok(ty),
        ReturnType::Type(_, ty) => Err(Error::new_spanned(ty, message)),
    }
}

/// `Result<..>`, `QueryResult<..>`, `anyhow::Result<..>`, `AppResult<..>`:
/// a path whose last segment ends with `Result`. Whether it really is a
/// `Result` with a suitable error is left to the type checker.
fn is_result(ty: &Type) -> bool {
    last_segment(ty).is_some_and(|ident| ident.to_string().ends_with("Result"))
}

/// The name a type is spelled with: `Facade` for `diesel_facade::Facade<C>`.
fn last_segment(ty: &Type) -> Option<&Ident> {
    match peel(ty) {
        Type::Path(path) => path.path.segments.last().map(|segment| &segment.ident),
        _ => None,
    }
}

/// Looks through the invisible groups `macro_rules!` puts around a `$t:ty`,
/// and through parentheses.
pub(crate) fn peel(ty: &Type) -> &Type {
    match ty {
        Type::Group(group) => peel(&group.elem),
        Type::Paren(paren) => peel(&paren.elem),
        other => other,
    }
}

/// The first `impl Trait` anywhere in `ty`.
pub(crate) fn find_impl_trait(ty: &Type) -> Option<&TypeImplTrait> {
    struct Finder<'ast>(Option<&'ast TypeImplTrait>);
    impl<'ast> Visit<'ast> for Finder<'ast> {
        fn visit_type_impl_trait(&mut self, found: &'ast TypeImplTrait) {
            self.0.get_or_insert(found);
        }
    }
    let mut finder = Finder(None);
    visit::visit_type(&mut finder, ty);
    finder.0
}

/// A struct the derive can implement `TransactionContext` for.
pub(crate) struct CheckedContext<'s, 'a> {
    /// The field whose `Facade` the context hands out.
    pub facade: &'s Field<'a>,
    /// The field that is the context's `read_position()`, if any.
    pub read_position: Option<&'s Field<'a>>,
    /// The fields marked `#[facade(NAME)]`, with their names: further
    /// databases of the context, names distinct.
    pub databases: Vec<(&'s Field<'a>, &'s Ident)>,
}

impl<'a> ContextStruct<'a> {
    /// Every problem with the choice of fields, at once.
    pub(crate) fn validate(&self) -> syn::Result<CheckedContext<'_, 'a>> {
        let ((facade, read_position), databases) = both(
            both(self.facade_field(), self.read_position_field()),
            self.named_databases(),
        )?;
        Ok(CheckedContext {
            facade,
            read_position,
            databases,
        })
    }

    /// The `#[facade(NAME)]` fields; a name used twice (or two names the
    /// runtime could not tell apart) is an error on the later field.
    fn named_databases(&self) -> syn::Result<Vec<(&Field<'a>, &Ident)>> {
        let mut errors = Errors::default();
        let mut named: Vec<(&Field<'a>, &Ident)> = Vec::new();
        for field in &self.fields {
            let Some(name) = &field.attrs.database else {
                continue;
            };
            let id = crate::database::database_id(&name.to_string());
            match named
                .iter()
                .find(|(_, seen)| crate::database::database_id(&seen.to_string()) == id)
            {
                Some((_, seen)) if *seen == name => errors.push(Error::new_spanned(
                    name,
                    format!("the context already has a database named `{name}`; give each `#[facade(..)]` field its own name"),
                )),
                Some((_, seen)) => errors.push(Error::new_spanned(
                    name,
                    format!("the database names `{seen}` and `{name}` have the same identifier (`diesel_facade::database_id`); rename one"),
                )),
                None => named.push((field, name)),
            }
        }
        errors.finish()?;
        Ok(named)
    }

    fn facade_field(&self) -> syn::Result<&Field<'a>> {
        let marked: Vec<_> = self
            .marked(|attrs| attrs.facade)
            .into_iter()
            .filter(|(field, _)| !field.attrs.named)
            .collect();
        match marked.as_slice() {
            [(field, _)] => return Ok(field),
            [] => {}
            [_, (_, second), rest @ ..] => {
                return Err(on_each(
                    second,
                    rest,
                    "only one field can be marked `#[facade]`: it is the context's default \
                     database; mark further databases with a name, `#[facade(NAME)]`",
                ))
            }
        }
        let unmarked: Vec<&Field> = self
            .fields
            .iter()
            .filter(|f| !f.attrs.named && is_facade(f.ty))
            .collect();
        match unmarked.as_slice() {
            [field] => Ok(field),
            [] if self.fields.iter().any(|f| f.attrs.named) => Err(Error::new_spanned(
                self.ident,
                "the context has no default database: mark the field that holds it with \
                 `#[facade]` (no name); `#[facade(NAME)]` fields are further databases, \
                 chosen with `db = NAME`",
            )),
            [] => Err(Error::new_spanned(
                self.ident,
                "mark the field that holds the `diesel_facade::Facade` with `#[facade]`",
            )),
            _ => Err(Error::new_spanned(
                self.ident,
                "several fields hold a `Facade`; mark the field that holds the \
                 `diesel_facade::Facade` with `#[facade]`",
            )),
        }
    }

    /// The field marked `#[read_position]`, if any (at most one).
    fn read_position_field(&self) -> syn::Result<Option<&Field<'a>>> {
        let marked = self.marked(|attrs| attrs.read_position);
        match marked.as_slice() {
            [] => Ok(None),
            [(field, _)] => Ok(Some(field)),
            [_, (_, second), rest @ ..] => Err(on_each(
                second,
                rest,
                "only one field can be the context's `#[read_position]`",
            )),
        }
    }

    /// The fields carrying a marker, with the marker.
    fn marked(
        &self,
        marker: impl Fn(&FieldAttrs<'a>) -> Option<&'a Attribute>,
    ) -> Vec<(&Field<'a>, &'a Attribute)> {
        self.fields
            .iter()
            .filter_map(|field| Some((field, marker(&field.attrs)?)))
            .collect()
    }
}

/// One error on each marker after the first.
fn on_each(second: &Attribute, rest: &[(&Field, &Attribute)], message: &str) -> Error {
    let mut error = Error::new_spanned(second, message);
    error.extend(
        rest.iter()
            .map(|(_, marker)| Error::new_spanned(marker, message)),
    );
    error
}

/// A type spelled `Facade<..>` (or `path::to::Facade<..>`).
fn is_facade(ty: &Type) -> bool {
    last_segment(ty).is_some_and(|ident| ident == "Facade")
}
