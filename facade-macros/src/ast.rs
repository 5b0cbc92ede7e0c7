//! Typed views of the items the macros are applied to: the function under
//! `#[reader]` / `#[writer]` and the struct under
//! `#[derive(TransactionContext)]`.
//!
//! These only say what the item *is*; whether it is acceptable is decided in
//! `valid`, so that every problem can be reported at once. Only what makes
//! a model impossible (a derive on an enum, an attribute on something that
//! is not a function) stops here; errors in the derive's field attributes
//! are recorded and the model is still built.

use proc_macro2::{Delimiter, Group, Span, TokenStream, TokenTree};
use quote::{quote, ToTokens};
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream, Parser};
use syn::{
    AttrStyle, Attribute, Data, DeriveInput, Error, FnArg, Ident, Index, Item, Member, PatType,
    Result, Signature, Token, Type, Visibility,
};

use crate::args::Role;
use crate::attr::{self, FieldAttrs};
use crate::errors::Errors;

/// A function under `#[reader]` or `#[writer]`.
pub(crate) struct DataAccessFn {
    pub item: FnItem,
}

/// A function item whose body is kept as tokens: the macros read only the
/// signature, and parsing (and printing again) every statement of every
/// annotated function would cost each build, incremental ones included.
#[derive(Clone)]
pub(crate) struct FnItem {
    /// Outer attributes, then the body's leading inner ones (`#![...]`),
    /// which stay at the top of the function's own body.
    pub attrs: Vec<Attribute>,
    pub vis: Visibility,
    pub sig: Signature,
    /// The body, braces included, minus its leading inner attributes.
    pub block: Group,
}

impl Parse for FnItem {
    fn parse(input: ParseStream) -> Result<Self> {
        let mut attrs = input.call(Attribute::parse_outer)?;
        let vis = input.parse()?;
        let sig = input.parse()?;
        let body;
        let brace = syn::braced!(body in input);
        attrs.extend(body.call(Attribute::parse_inner)?);
        let rest: TokenStream = body.parse()?;
        let mut block = Group::new(Delimiter::Brace, rest);
        block.set_span(brace.span.join());
        Ok(FnItem {
            attrs,
            vis,
            sig,
            block,
        })
    }
}

impl FnItem {
    /// The usual case, parsed cheaply: syn reads only the tokens before the
    /// body, and the body (the item's last token tree, a brace group) is
    /// kept as the handle it came as, never walked. Every annotated function
    /// is expanded again on every build, so this is paid per build.
    ///
    /// `None` when the body starts with an inner attribute (to be hoisted)
    /// or the item is not a function with a body: `Parse` then reads the
    /// whole item, and gives its result or its errors. Both read the header
    /// with the same parsers, so they agree on every function (see the
    /// tests below).
    pub(crate) fn parse_header(tokens: TokenStream) -> Option<Self> {
        let mut trees: Vec<TokenTree> = tokens.into_iter().collect();
        let block = match trees.pop() {
            Some(TokenTree::Group(group)) if group.delimiter() == Delimiter::Brace => group,
            _ => return None,
        };
        let mut body = block.stream().into_iter();
        if let (Some(TokenTree::Punct(hash)), Some(TokenTree::Punct(bang))) =
            (body.next(), body.next())
        {
            if hash.as_char() == '#' && bang.as_char() == '!' {
                // `#![..]`: the full parse hoists it.
                return None;
            }
        }
        let header = |input: ParseStream| {
            let attrs = input.call(Attribute::parse_outer)?;
            let vis = input.parse()?;
            let sig = input.parse()?;
            Ok((attrs, vis, sig))
        };
        let (attrs, vis, sig) = header.parse2(trees.into_iter().collect()).ok()?;
        Some(FnItem {
            attrs,
            vis,
            sig,
            block,
        })
    }

    /// The item with `body` (the contents of its braces) as its body, not
    /// inlined into its callers unless it says otherwise.
    ///
    /// The body is one call into diesel-facade; inlined, that call's
    /// shell (the kept result, its unwinding paths) was copied into every
    /// caller, which made an application's release build measurably slower
    /// to compile (docs/performance.md, "Sixth pass") for no speed: the
    /// call begins or joins a transaction. A function with an `inline` attribute of its
    /// own (or a `cfg_attr` that may add one) keeps only that.
    pub(crate) fn with_body(&self, body: TokenStream) -> TokenStream {
        let outer = self
            .attrs
            .iter()
            .filter(|attr| matches!(attr.style, AttrStyle::Outer));
        let inner = self
            .attrs
            .iter()
            .filter(|attr| matches!(attr.style, AttrStyle::Inner(_)));
        let (vis, sig) = (&self.vis, &self.sig);
        let mut block = Group::new(Delimiter::Brace, quote!(#(#inner)* #body));
        block.set_span(self.block.span());
        let never = (!self.attrs.iter().any(may_set_inline)).then(|| quote!(#[inline(never)]));
        quote!(#(#outer)* #never #vis #sig #block)
    }
}

/// Whether `attr` is an `inline` attribute, or a `cfg_attr` that names one
/// (rustc applies a `cfg_attr` before the macro runs; this is in case one
/// reaches it). Raw identifiers count: `#[r#inline]` is `#[inline]`.
fn may_set_inline(attr: &Attribute) -> bool {
    let is = |name: &str| attr.path().get_ident().is_some_and(|i| i.unraw() == name);
    is("inline") || (is("cfg_attr") && mentions(attr.meta.to_token_stream(), "inline"))
}

/// Whether `tokens` hold the identifier `name` (raw or not), at any depth.
pub(crate) fn mentions(tokens: TokenStream, name: &str) -> bool {
    tokens.into_iter().any(|tree| match tree {
        TokenTree::Ident(ident) => ident.unraw() == name,
        TokenTree::Group(group) => mentions(group.stream(), name),
        _ => false,
    })
}

/// The parameter that carries the request context.
pub(crate) struct ContextParam<'a> {
    /// Its position in `sig.inputs` (1 after a receiver, else 0).
    pub index: usize,
    pub param: &'a PatType,
}

impl DataAccessFn {
    pub(crate) fn parse(role: Role, tokens: TokenStream) -> Result<Self> {
        if let Some(item) = FnItem::parse_header(tokens.clone()) {
            return Ok(DataAccessFn { item });
        }
        match syn::parse2::<FnItem>(tokens.clone()) {
            Ok(item) => Ok(DataAccessFn { item }),
            Err(error) => Err(not_a_function(role, tokens).unwrap_or(error)),
        }
    }

    /// The first typed parameter: the one after the receiver if there is one
    /// (a receiver, `self: Box<Self>` included, is never typed).
    pub(crate) fn context_param(&self) -> Option<ContextParam<'_>> {
        self.item
            .sig
            .inputs
            .iter()
            .enumerate()
            .find_map(|(index, arg)| match arg {
                FnArg::Typed(param) => Some(ContextParam { index, param }),
                FnArg::Receiver(_) => None,
            })
    }

    pub(crate) fn has_receiver(&self) -> bool {
        self.item.sig.receiver().is_some()
    }
}

/// A clearer error than syn's "expected `fn`" for the two ways an attribute
/// lands on something that is not a function with a body.
fn not_a_function(role: Role, tokens: TokenStream) -> Option<Error> {
    let declaration = |input: ParseStream| {
        input.call(Attribute::parse_outer)?;
        input.parse::<Visibility>()?;
        let sig: Signature = input.parse()?;
        input.parse::<Token![;]>()?;
        Ok(sig)
    };
    if let Ok(sig) = declaration.parse2(tokens.clone()) {
        return Some(Error::new_spanned(
            sig,
            format!(
                "`{}` needs a function body: it wraps the body in a transaction",
                role.attribute()
            ),
        ));
    }
    match syn::parse2::<Item>(tokens) {
        Ok(Item::Fn(_) | Item::Verbatim(_)) | Err(_) => None,
        // Pointing at the attribute, as rustc does for misplaced built-in attributes.
        Ok(_) => Some(Error::new(
            Span::call_site(),
            format!("`{}` applies to functions only", role.attribute()),
        )),
    }
}

/// A struct under `#[derive(TransactionContext)]`.
pub(crate) struct ContextStruct<'a> {
    pub ident: &'a Ident,
    pub input: &'a DeriveInput,
    pub fields: Vec<Field<'a>>,
}

pub(crate) struct Field<'a> {
    /// `self.<member>`: a name, or a position in a tuple struct.
    pub member: Member,
    pub ty: &'a Type,
    /// Its `#[facade]` and `#[read_position]` markers.
    pub attrs: FieldAttrs<'a>,
}

impl<'a> ContextStruct<'a> {
    /// The struct's model. Only an enum or a union is an `Err`; errors in
    /// the markers go to `errors` (a marker with arguments still marks its
    /// field), so that `validate` can check the struct as a whole as well.
    pub(crate) fn from_syn(input: &'a DeriveInput, errors: &mut Errors) -> Result<Self> {
        let data = match &input.data {
            Data::Struct(data) => data,
            Data::Enum(data) => return Err(not_a_struct(data.enum_token)),
            Data::Union(data) => return Err(not_a_struct(data.union_token)),
        };
        attr::reject_container_markers(&input.attrs, errors);
        let fields = data
            .fields
            .iter()
            .enumerate()
            .map(|(position, field)| Field {
                member: match &field.ident {
                    Some(ident) => Member::Named(ident.clone()),
                    None => Member::Unnamed(Index::from(position)),
                },
                ty: &field.ty,
                attrs: FieldAttrs::parse(&field.attrs, errors),
            })
            .collect();
        Ok(ContextStruct {
            ident: &input.ident,
            input,
            fields,
        })
    }
}

fn not_a_struct(keyword: impl quote::ToTokens) -> Error {
    Error::new_spanned(
        keyword,
        "`TransactionContext` can only be derived for a struct: it hands out the \
         `Facade` held in one of its fields",
    )
}
