//! The helper attributes of `#[derive(TransactionContext)]`: the `#[facade]`
//! field marker.

use quote::quote;
use syn::{Attribute, Error, Meta};

use crate::errors::Errors;

/// Whether `attr` is a `#[facade]` marker (well-formed or not).
fn is_facade_marker(attr: &Attribute) -> bool {
    attr.path().is_ident("facade")
}

/// The `#[facade]` marker among a field's attributes, if any. A marker with
/// arguments or a repeated marker is reported; the field still counts as
/// marked, so the derive goes on to check the rest.
pub(crate) fn facade_marker<'a>(
    attrs: &'a [Attribute],
    errors: &mut Errors,
) -> Option<&'a Attribute> {
    let mut found = None;
    for attr in attrs.iter().filter(|attr| is_facade_marker(attr)) {
        match &attr.meta {
            Meta::Path(_) => {}
            Meta::List(list) => errors.push(Error::new(
                list.delimiter.span().join(),
                "`#[facade]` takes no arguments",
            )),
            Meta::NameValue(name_value) => {
                let (eq, value) = (&name_value.eq_token, &name_value.value);
                errors.push(Error::new_spanned(
                    quote!(#eq #value),
                    "`#[facade]` takes no arguments",
                ));
            }
        }
        if found.is_some() {
            errors.push(Error::new_spanned(attr, "duplicate `#[facade]` attribute"));
        } else {
            found = Some(attr);
        }
    }
    found
}

/// Reports `#[facade]` where it marks nothing: on the struct itself.
pub(crate) fn reject_container_markers(attrs: &[Attribute], errors: &mut Errors) {
    for attr in attrs.iter().filter(|attr| is_facade_marker(attr)) {
        errors.push(Error::new_spanned(
            attr,
            "`#[facade]` marks a field: put it on the field that holds the \
             `diesel_facade::Facade`",
        ));
    }
}
