//! A named database as the macros see it: the marker type of
//! `#[facade(NAME)]` / `db = NAME`, and the hash that is its identity. Used
//! by the attribute's expansion, the derive and its validation alike.

use proc_macro2::{Ident, Literal, TokenStream};
use quote::quote_spanned;

/// `diesel_facade::Named<ID>` for `db = NAME`: the type the derive
/// implements `Database<Ctx>` for when the context declares `#[facade(NAME)]`.
pub(crate) fn named_database(name: &Ident) -> TokenStream {
    let id = Literal::u64_suffixed(database_id(&name.to_string()));
    quote_spanned!(name.span()=> ::diesel_facade::Named<#id>)
}

/// The 64-bit FNV-1a hash of `name`: `diesel_facade::database_id`, which
/// must compute the same value.
pub(crate) fn database_id(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
