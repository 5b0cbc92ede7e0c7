//! The helper attributes of `#[derive(TransactionContext)]`: `#[facade]` and
//! `#[read_position]`, read by one parser.
//!
//! `#[read_position]` is a bare marker; `#[facade]` is one too, or takes the
//! name of a further database of the context, `#[facade(api)]`. Parsing recovers, like argument parsing in `args`:
//! a marker written with arguments or twice on one field, or `#[facade]` on
//! the struct itself, is reported, and a field still counts as marked once,
//! so the derive goes on to check the struct as a whole and reports every
//! problem in one pass. Which fields may carry which marker is for `valid`.

use quote::quote;
use syn::{Attribute, Error, Ident, Meta};

use crate::errors::Errors;

/// A marker the derive reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Marker {
    /// `#[facade]`: the field whose `Facade` the context hands out.
    Facade,
    /// `#[read_position]`: the field holding the context's `ReadPosition`.
    ReadPosition,
}

impl Marker {
    fn of(attr: &Attribute) -> Option<Marker> {
        let path = attr.path();
        if path.is_ident("facade") {
            Some(Marker::Facade)
        } else if path.is_ident("read_position") {
            Some(Marker::ReadPosition)
        } else {
            None
        }
    }

    /// The attribute as users write it, for messages.
    fn attribute(self) -> &'static str {
        match self {
            Marker::Facade => "#[facade]",
            Marker::ReadPosition => "#[read_position]",
        }
    }
}

/// The markers on one field, each as the attribute it was first written as
/// (for spans).
#[derive(Default)]
pub(crate) struct FieldAttrs<'a> {
    pub facade: Option<&'a Attribute>,
    /// The `api` of `#[facade(api)]`: the field is that named database, not
    /// the default one.
    pub database: Option<Ident>,
    /// Marked `#[facade(..)]`, with a valid name or not: not the default
    /// database either way.
    pub named: bool,
    pub read_position: Option<&'a Attribute>,
}

impl<'a> FieldAttrs<'a> {
    /// Reads a field's attributes, reporting a marker with arguments and a
    /// repeated marker; other attributes are not ours and are left alone.
    pub(crate) fn parse(attrs: &'a [Attribute], errors: &mut Errors) -> Self {
        let mut found = FieldAttrs::default();
        for attr in attrs {
            let Some(marker) = Marker::of(attr) else {
                continue;
            };
            let name = match (marker, &attr.meta) {
                (Marker::Facade, Meta::List(_)) => {
                    found.named = true;
                    database_name(attr, errors)
                }
                _ => {
                    reject_arguments(marker, attr, errors);
                    None
                }
            };
            let slot = match marker {
                Marker::Facade => &mut found.facade,
                Marker::ReadPosition => &mut found.read_position,
            };
            if slot.is_some() {
                errors.push(Error::new_spanned(
                    attr,
                    format!(
                        "duplicate `{}` attribute: the field is already marked; remove this one",
                        marker.attribute()
                    ),
                ));
            } else {
                *slot = Some(attr);
                if name.is_some() {
                    found.database = name;
                }
            }
        }
        found
    }
}

/// The name in `#[facade(NAME)]`, or `None` (reported) if it is not one
/// identifier.
fn database_name(attr: &Attribute, errors: &mut Errors) -> Option<Ident> {
    match attr.parse_args::<Ident>() {
        Ok(name) => Some(name),
        Err(_) => {
            let message = "`#[facade(..)]` takes the name of the database, one identifier, \
                           e.g. `#[facade(api)]`; the context's default database is the \
                           field marked `#[facade]` without one";
            match &attr.meta {
                Meta::List(list) => errors.push(Error::new(list.delimiter.span().join(), message)),
                _ => errors.push(Error::new_spanned(attr, message)),
            }
            None
        }
    }
}

/// Reports `#[facade]` where it marks nothing: on the struct itself.
pub(crate) fn reject_container_markers(attrs: &[Attribute], errors: &mut Errors) {
    for attr in attrs {
        if Marker::of(attr) == Some(Marker::Facade) {
            errors.push(Error::new_spanned(
                attr,
                "`#[facade]` marks a field: put it on the field that holds the \
                 `diesel_facade::Facade`",
            ));
        }
    }
}

/// Reports `#[marker(..)]` and `#[marker = ..]`, spanned on what follows the
/// name.
fn reject_arguments(marker: Marker, attr: &Attribute, errors: &mut Errors) {
    let message = format!("`{}` takes no arguments", marker.attribute());
    match &attr.meta {
        Meta::Path(_) => {}
        Meta::List(list) => errors.push(Error::new(list.delimiter.span().join(), message)),
        Meta::NameValue(name_value) => {
            let (eq, value) = (&name_value.eq_token, &name_value.value);
            errors.push(Error::new_spanned(quote!(#eq #value), message));
        }
    }
}
