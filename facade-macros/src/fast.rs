//! The usual data-access function, rewritten at the token level.
//!
//! Every annotated function is expanded again on every build, incremental
//! rebuilds included, and cargo compiles a proc-macro crate without
//! optimisation in every profile, so syn parsing a signature and printing it
//! back cost more than everything else the macro does (docs/performance.md,
//! "Seventh pass"). A function of the usual shape is therefore rewritten
//! here by looking at its tokens, which are moved, not rebuilt:
//!
//! - the attribute has no arguments (`#[reader]`, `#[writer]`);
//! - outer attributes (doc comments included), none of which mentions
//!   `inline`;
//! - `fn` or `pub(..) fn`: no `const`, `async`, `unsafe`, `extern`, no
//!   generic parameters and no where-clause;
//! - an optional receiver (`self`, `&self`, `&'a mut self`, `self: Type`,
//!   ... token for token), then the context parameter as
//!   `name: &mut Path` or `name: &'a mut Path`, where `name` is an identifier
//!   that is no keyword and `Path` is made of identifiers, `::`, `<`, `>` and
//!   `,` only (no lifetime, reference, `impl` or group in it), without
//!   attributes;
//! - a return type that is a path whose last segment ends with `Result`,
//!   with no `impl` anywhere in it.
//!
//! Anything else gets `None`, and `expand` takes the general path, which
//! reads every form and reports every error. On every function this path
//! accepts, the two produce the same tokens with the same spans, with two
//! exceptions where syn rebuilds what the user wrote and this path keeps
//! it: a negative literal (`Foo<-1>`, `#[attr = -1]`; syn makes `-` and `1`
//! one token, spanned on both) and the invisible group around a
//! `macro_rules!` fragment (`$p:pat`), which syn removes. Both read the
//! same to the compiler; the kept tokens give it better suggestions.
//! (Tests in `tests/fast.rs`; an attack pass compared the two paths on
//! about 48,000 generated signatures and through rustc.)

use proc_macro2::{Delimiter, Group, Ident, Punct, Spacing, Span, TokenStream, TokenTree};

use crate::args::{ReadRoute, Role, Transaction, WriteMode};
use crate::ast::mentions;
use crate::runtime::Runtime;

/// The rewritten function, or `None` if `item` is not of the usual shape.
/// `args` must be empty (checked by the caller).
pub(crate) fn data_access_fn(role: Role, item: &TokenStream) -> Option<TokenStream> {
    let mut trees: Vec<TokenTree> = item.clone().into_iter().collect();
    let body = match trees.pop()? {
        TokenTree::Group(group) if group.delimiter() == Delimiter::Brace => group,
        _ => return None,
    };
    if starts_with_inner_attribute(&body) {
        return None;
    }
    let mut trees = trees.into_iter().peekable();

    // Outer attributes: `#` and a bracketed group each.
    let mut attrs = Vec::new();
    while matches!(trees.peek(), Some(TokenTree::Punct(p)) if p.as_char() == '#') {
        let pound = trees.next()?;
        let group = match trees.next()? {
            TokenTree::Group(group) if group.delimiter() == Delimiter::Bracket => group,
            _ => return None,
        };
        if mentions(group.stream(), "inline") {
            return None;
        }
        attrs.push(pound);
        attrs.push(TokenTree::Group(group));
    }

    // `pub`, `pub(..)` or nothing, then `fn` and the name.
    let mut vis = Vec::new();
    if matches!(trees.peek(), Some(TokenTree::Ident(i)) if i == "pub") {
        vis.push(trees.next()?);
        if matches!(trees.peek(), Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Parenthesis)
        {
            vis.push(trees.next()?);
        }
    }
    let fn_token = match trees.next()? {
        TokenTree::Ident(ident) if ident == "fn" => ident,
        _ => return None,
    };
    let name = match trees.next()? {
        TokenTree::Ident(ident) => ident,
        _ => return None,
    };
    let params = match trees.next()? {
        TokenTree::Group(group) if group.delimiter() == Delimiter::Parenthesis => group,
        _ => return None,
    };
    let arrow = match (trees.next()?, trees.next()?) {
        (TokenTree::Punct(dash), TokenTree::Punct(gt))
            if dash.as_char() == '-' && dash.spacing() == Spacing::Joint && gt.as_char() == '>' =>
        {
            [dash, gt]
        }
        _ => return None,
    };
    let output: Vec<TokenTree> = trees.collect();
    if !is_result_path(&output) {
        return None;
    }

    // The parameters, each with the comma after it.
    let mut split = split_params(params.stream())?;
    let context_index = usize::from(split.first().is_some_and(|(param, _)| is_receiver(param)));
    let context = split
        .get(context_index)
        .and_then(|(param, _)| ContextParam::of(param))?;
    for (param, _) in &split {
        if param
            .iter()
            .any(|tree| matches!(tree, TokenTree::Punct(p) if p.as_char() == '.'))
        {
            // `...`: the general path says what is wrong with it.
            return None;
        }
    }

    let runtime = Runtime::of(&match role {
        Role::Reader => Transaction::Read(ReadRoute::Primary),
        Role::Writer => Transaction::Write {
            mode: WriteMode::Join,
            retry: None,
        },
    });
    // The tokens are gathered in vectors and each group's become one
    // stream at once: every stream built is a round trip to the compiler.
    // Spans are those of the general path's output: `span` is the context
    // type's (first token joined to the last), `site` the attribute's.
    let ty = &context.ty;
    let span = match (ty.first(), ty.last()) {
        (Some(first), Some(last)) if ty.len() > 1 => {
            first.span().join(last.span()).unwrap_or(first.span())
        }
        (Some(first), _) => first.span(),
        _ => return None,
    };
    let site = Span::call_site();

    // The context parameter becomes `name: &mut dyn ::diesel_facade::__private::Access<C>`.
    let ContextParam {
        name: binding,
        colon,
        reference,
        ty,
    } = context;
    let mut param = Tokens(vec![TokenTree::Ident(binding.clone()), colon]);
    param.0.extend(reference);
    param.ident("dyn", span);
    param.path(&[
        (span, "diesel_facade", span),
        (site, "__private", span),
        (site, runtime.access, site),
    ]);
    param.punct('<', span);
    param.0.extend(ty.iter().cloned());
    param.punct('>', span);
    split[context_index].0 = param.0;
    let mut inputs = Tokens(Vec::new());
    for (param, comma) in split {
        inputs.0.extend(param);
        inputs.0.extend(comma.map(TokenTree::Punct));
    }

    // `::diesel_facade::__private::FUNCTION(name, [false,] |name: &mut
    // ::diesel_facade::SCOPE<'_, C>| -> OUTPUT BODY)`
    let mut args = Tokens(vec![TokenTree::Ident(binding.clone())]);
    args.punct(',', site);
    if let Some(savepoint) = runtime.savepoint {
        args.ident(if savepoint { "true" } else { "false" }, site);
        args.punct(',', site);
    }
    args.punct('|', site);
    args.0.push(TokenTree::Ident(binding));
    args.punct(':', site);
    args.punct('&', site);
    args.ident("mut", site);
    args.path(&[(span, "diesel_facade", span), (span, runtime.scope, site)]);
    args.punct('<', span);
    args.0.push(TokenTree::Punct(joint('\'', span)));
    args.ident("_", span);
    args.punct(',', span);
    args.0.extend(ty);
    args.punct('>', span);
    args.punct('|', site);
    args.0.push(TokenTree::Punct(joint('-', site)));
    args.punct('>', site);
    args.0.extend(output.iter().cloned());
    let body_span = body.span();
    args.0.push(TokenTree::Group(body));
    let mut call = Tokens(Vec::new());
    call.path(&[
        (site, "diesel_facade", site),
        (site, "__private", site),
        (site, runtime.function, site),
    ]);
    call.group(Delimiter::Parenthesis, site, args);

    let mut function = Tokens(attrs);
    function.punct('#', site);
    let mut never = Tokens(Vec::new());
    never.ident("never", site);
    let mut inline = Tokens(Vec::new());
    inline.ident("inline", site);
    inline.group(Delimiter::Parenthesis, site, never);
    function.group(Delimiter::Bracket, site, inline);
    function.0.extend(vis);
    function.0.push(TokenTree::Ident(fn_token));
    function.0.push(TokenTree::Ident(name));
    function.group(Delimiter::Parenthesis, params.span(), inputs);
    function.0.extend(arrow.map(TokenTree::Punct));
    function.0.extend(output);
    function.group(Delimiter::Brace, body_span, call);
    Some(function.0.into_iter().collect())
}

/// Tokens on their way to a stream.
struct Tokens(Vec<TokenTree>);

impl Tokens {
    fn ident(&mut self, name: &str, span: Span) {
        self.0.push(TokenTree::Ident(Ident::new(name, span)));
    }

    fn punct(&mut self, ch: char, span: Span) {
        let mut punct = Punct::new(ch, Spacing::Alone);
        punct.set_span(span);
        self.0.push(TokenTree::Punct(punct));
    }

    fn colon2(&mut self, span: Span) {
        self.0.push(TokenTree::Punct(joint(':', span)));
        self.punct(':', span);
    }

    /// `::a::b..`: each segment as (the span of the `::` before it, its
    /// name, the name's span).
    fn path(&mut self, segments: &[(Span, &str, Span)]) {
        for &(separator, name, span) in segments {
            self.colon2(separator);
            self.ident(name, span);
        }
    }

    fn group(&mut self, delimiter: Delimiter, span: Span, content: Tokens) {
        let mut group = Group::new(delimiter, content.0.into_iter().collect());
        group.set_span(span);
        self.0.push(TokenTree::Group(group));
    }
}

fn joint(ch: char, span: Span) -> Punct {
    let mut punct = Punct::new(ch, Spacing::Joint);
    punct.set_span(span);
    punct
}

/// The context parameter of the usual shape, split into its parts.
struct ContextParam {
    name: Ident,
    colon: TokenTree,
    /// `&` and `mut`, with the lifetime between them if there is one.
    reference: Vec<TokenTree>,
    /// The context type.
    ty: Vec<TokenTree>,
}

impl ContextParam {
    fn of(param: &[TokenTree]) -> Option<Self> {
        let mut trees = param.iter();
        let name = match trees.next()? {
            TokenTree::Ident(ident) if !is_keyword_pattern(ident) => ident.clone(),
            _ => return None,
        };
        let colon = match trees.next()? {
            TokenTree::Punct(p) if p.as_char() == ':' => TokenTree::Punct(p.clone()),
            _ => return None,
        };
        let mut reference = match trees.next()? {
            TokenTree::Punct(p) if p.as_char() == '&' => {
                vec![TokenTree::Punct(p.clone())]
            }
            _ => return None,
        };
        let mut next = trees.next()?;
        if let TokenTree::Punct(quote) = next {
            // A named lifetime: `'` (joint) and its identifier.
            let lifetime = match (quote.as_char(), quote.spacing(), trees.next()?) {
                ('\'', Spacing::Joint, TokenTree::Ident(lifetime)) if lifetime != "_" => lifetime,
                _ => return None,
            };
            reference.push(TokenTree::Punct(quote.clone()));
            reference.push(TokenTree::Ident(lifetime.clone()));
            next = trees.next()?;
        }
        match next {
            TokenTree::Ident(ident) if ident == "mut" => reference.push(next.clone()),
            _ => return None,
        }
        let ty: Vec<TokenTree> = trees.cloned().collect();
        if !is_plain_path(&ty) {
            return None;
        }
        Some(ContextParam {
            name,
            colon,
            reference,
            ty,
        })
    }
}

/// Keywords (`_`, `mut`, `ref`, `self`, `true`, `crate`, ...) are patterns
/// of their own, parts of one, or no pattern at all: not a name the general
/// path would keep as it is. (A raw identifier such as `r#type` is a name.)
fn is_keyword_pattern(ident: &Ident) -> bool {
    KEYWORDS.contains(&ident.to_string().as_str())
}

/// Rust's keywords, reserved words included, and `_`.
const KEYWORDS: &[&str] = &[
    "_", "abstract", "as", "async", "await", "become", "box", "break", "const", "continue",
    "crate", "do", "dyn", "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if",
    "impl", "in", "let", "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub",
    "ref", "return", "self", "Self", "static", "struct", "super", "trait", "true", "try", "type",
    "typeof", "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
];

/// A type made only of identifiers (no keyword that starts another kind of
/// type), `::`, `<`, `>` and `,`, starting with an identifier or `::`.
fn is_plain_path(ty: &[TokenTree]) -> bool {
    let starts_well = match ty.first() {
        Some(TokenTree::Ident(ident)) => !starts_other_type(ident),
        Some(TokenTree::Punct(p)) => p.as_char() == ':',
        _ => false,
    };
    starts_well
        && ty.iter().all(|tree| match tree {
            TokenTree::Ident(ident) => ident != "impl" && ident != "dyn" && ident != "_",
            TokenTree::Punct(p) => matches!(p.as_char(), ':' | '<' | '>' | ','),
            TokenTree::Group(_) | TokenTree::Literal(_) => false,
        })
}

/// Keywords that begin a type that is not a path (or `impl Trait`).
fn starts_other_type(ident: &Ident) -> bool {
    matches!(
        ident.to_string().as_str(),
        "impl" | "dyn" | "fn" | "for" | "unsafe" | "extern" | "_"
    )
}

/// A return type the general path accepts as a `Result`: a path (no
/// qualified `<T as Trait>::` start, nothing but identifiers and `::`
/// outside its angle brackets) whose last segment's name ends with
/// `Result`, and no `impl Trait` anywhere (the general path leaves the
/// closure's return type out for that).
fn is_result_path(output: &[TokenTree]) -> bool {
    match output.first() {
        Some(TokenTree::Ident(ident)) if !starts_other_type(ident) => {}
        Some(TokenTree::Punct(p)) if p.as_char() == ':' => {}
        _ => return false,
    }
    let mut depth = 0usize;
    let mut last_segment = None;
    let mut previous_joint_dash = false;
    for tree in output {
        let joint_dash = is_joint_dash(tree);
        match tree {
            TokenTree::Punct(p) if p.as_char() == '<' => depth += 1,
            TokenTree::Punct(p) if p.as_char() == '>' && !previous_joint_dash => {
                let Some(outer) = depth.checked_sub(1) else {
                    return false;
                };
                depth = outer;
            }
            TokenTree::Ident(ident) if ident == "impl" => return false,
            TokenTree::Group(group) if mentions(group.stream(), "impl") => return false,
            TokenTree::Group(group) if group.delimiter() == Delimiter::None => return false,
            TokenTree::Ident(ident) if depth == 0 => {
                if ident == "dyn" || ident == "where" {
                    return false;
                }
                last_segment = Some(ident);
            }
            TokenTree::Punct(p) if depth == 0 && p.as_char() != ':' => return false,
            TokenTree::Group(_) | TokenTree::Literal(_) if depth == 0 => return false,
            _ => {}
        }
        previous_joint_dash = joint_dash;
    }
    depth == 0 && last_segment.is_some_and(|ident| ident.to_string().ends_with("Result"))
}

/// The parameters' tokens, each with the comma that follows it (outside
/// angle brackets). `None` if the angle brackets do not balance, or a
/// parameter is empty (`(a,, b)`); a trailing comma is kept.
fn split_params(params: TokenStream) -> Option<Vec<(Vec<TokenTree>, Option<Punct>)>> {
    let mut split: Vec<(Vec<TokenTree>, Option<Punct>)> = vec![(Vec::new(), None)];
    let mut depth = 0usize;
    let mut previous_joint_dash = false;
    for tree in params {
        let joint_dash = is_joint_dash(&tree);
        if let TokenTree::Punct(p) = &tree {
            match p.as_char() {
                '<' => depth += 1,
                '>' if !previous_joint_dash => depth = depth.checked_sub(1)?,
                ',' if depth == 0 => {
                    let last = split.last_mut()?;
                    if last.0.is_empty() {
                        return None;
                    }
                    last.1 = Some(p.clone());
                    split.push((Vec::new(), None));
                    previous_joint_dash = false;
                    continue;
                }
                _ => {}
            }
        }
        previous_joint_dash = joint_dash;
        split.last_mut()?.0.push(tree);
    }
    if depth != 0 {
        return None;
    }
    if split.last().is_some_and(|(last, _)| last.is_empty()) {
        // After a trailing comma, or no parameters at all.
        split.pop();
    }
    Some(split)
}

/// The `-` of a `->`.
fn is_joint_dash(tree: &TokenTree) -> bool {
    matches!(tree, TokenTree::Punct(p) if p.as_char() == '-' && p.spacing() == Spacing::Joint)
}

/// `self`, `mut self`, `&self`, `&mut self`, `&'a self`, `&'a mut self`,
/// `self: Type` or `mut self: Type`, token for token. (A parameter that
/// only starts with `self`, such as the path pattern `self::Unit: Unit`,
/// is no receiver; it then fails `ContextParam::of` and the general path
/// reads it.)
fn is_receiver(param: &[TokenTree]) -> bool {
    let mut rest = param;
    if let [TokenTree::Punct(and), tail @ ..] = rest {
        if and.as_char() == '&' {
            rest = tail;
            if let [TokenTree::Punct(quote), TokenTree::Ident(_), tail @ ..] = rest {
                if quote.as_char() == '\'' {
                    rest = tail;
                }
            }
        }
    }
    let by_reference = rest.len() != param.len();
    if let [TokenTree::Ident(mutability), tail @ ..] = rest {
        if mutability == "mut" {
            rest = tail;
        }
    }
    match rest {
        [TokenTree::Ident(receiver)] => receiver == "self",
        [TokenTree::Ident(receiver), TokenTree::Punct(colon), _, ..] if !by_reference => {
            receiver == "self" && colon.as_char() == ':' && colon.spacing() == Spacing::Alone
        }
        _ => false,
    }
}

fn starts_with_inner_attribute(body: &Group) -> bool {
    let mut trees = body.stream().into_iter();
    matches!(
        (trees.next(), trees.next()),
        (Some(TokenTree::Punct(hash)), Some(TokenTree::Punct(bang)))
            if hash.as_char() == '#' && bang.as_char() == '!'
    )
}
