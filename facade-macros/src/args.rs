//! Arguments of `#[reader(..)]` and `#[writer(..)]`: what transaction a
//! data-access function asks for.
//!
//! Argument parsing recovers: a bad, repeated or conflicting argument is
//! reported and dropped while the others still apply, so a typo costs one
//! error on its own token instead of a function that no longer expands (and
//! a cascade of errors in its body).

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::ToTokens;
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser};
use syn::spanned::Spanned;
use syn::{token, Error, Expr, ExprLit, ExprUnary, Ident, Lit, Token, UnOp};

use crate::errors::Errors;

/// Which of the two attributes is being expanded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    Reader,
    Writer,
}

impl Role {
    /// The attribute as users write it, for messages.
    pub(crate) fn attribute(self) -> &'static str {
        match self {
            Role::Reader => "#[reader]",
            Role::Writer => "#[writer]",
        }
    }

    /// The arguments the attribute takes, for messages.
    fn accepted_args(self) -> &'static str {
        match self {
            Role::Reader => "`db = NAME`, `replica` or `allow_replica`",
            Role::Writer => "`db = NAME`, `savepoint`, `independent`, `retry` or `retry = N`",
        }
    }
}

/// The transaction a data-access function asks for: what its attribute means.
#[derive(Clone, Debug)]
pub(crate) enum Transaction {
    Read(ReadRoute),
    Write {
        mode: WriteMode,
        retry: Option<Retry>,
    },
}

/// Where an outermost reader begins, and whether it may join a replica scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReadRoute {
    /// `#[reader]`
    Primary,
    /// `#[reader(allow_replica)]`
    AllowReplica,
    /// `#[reader(replica)]`
    Replica,
}

/// How a writer relates to a writer already open on the context.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WriteMode {
    /// `#[writer]`
    Join,
    /// `#[writer(savepoint)]`
    Savepoint,
    /// `#[writer(independent)]`
    Independent,
}

/// `retry` or `retry = N`.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Retry {
    DefaultAttempts,
    /// The count, and the span of the literal it was written as.
    Retries(u32, Span),
}

/// The parsed arguments: the transaction asked for, minus whatever was
/// rejected, and the errors for what was rejected.
pub(crate) struct Args {
    pub transaction: Transaction,
    /// `db = NAME`: the named database of the context, or `None` for the
    /// default one.
    pub database: Option<Ident>,
    pub error: Option<Error>,
}

pub(crate) fn parse_args(role: Role, tokens: TokenStream) -> Args {
    let mut errors = Errors::default();
    let mut args = Vec::new();
    // A syntax error stops the list there; the arguments before it still count.
    if let Err(error) = (|input: ParseStream| parse_arg_list(input, &mut args)).parse2(tokens) {
        errors.push(error);
    }
    let database = database(&args, &mut errors);
    let args: Vec<Arg> = args.into_iter().filter(|arg| arg.name != "db").collect();
    let transaction = match role {
        Role::Reader => Transaction::Read(read_route(&args, &mut errors)),
        Role::Writer => write_mode(&args, &mut errors),
    };
    Args {
        transaction,
        database,
        error: errors.into_error(),
    }
}

/// The name of `db = NAME`, if given (once, as an identifier).
fn database(args: &[Arg], errors: &mut Errors) -> Option<Ident> {
    let mut chosen: Option<Ident> = None;
    for arg in args.iter().filter(|arg| arg.name == "db") {
        let name = match &arg.value {
            Value::Assigned(_, expr) => database_name(expr),
            Value::Flag | Value::Delimited(_) => None,
        };
        let Some(name) = name else {
            errors.push(Error::new_spanned(
                arg.tokens(),
                "write the database as `db = NAME`, with the name its context declares in \
                 `#[facade(NAME)]`, e.g. `db = api`",
            ));
            continue;
        };
        if chosen.is_some() {
            errors.push(duplicate(&arg.name));
        } else {
            chosen = Some(name);
        }
    }
    chosen
}

/// A bare identifier (also when a `macro_rules!` `$db:expr` grouped it).
fn database_name(expr: &Expr) -> Option<Ident> {
    match expr {
        Expr::Group(group) => database_name(&group.expr),
        Expr::Path(path) if path.attrs.is_empty() && path.qself.is_none() => {
            path.path.get_ident().cloned()
        }
        _ => None,
    }
}

/// One argument as written: `name`, `name = value` or `name(..)`.
struct Arg {
    name: Ident,
    value: Value,
}

enum Value {
    Flag,
    Assigned(Token![=], Box<Expr>),
    Delimited(TokenTree),
}

impl Arg {
    /// The whole argument, for errors about it rather than its name.
    fn tokens(&self) -> TokenStream {
        let mut tokens = self.name.to_token_stream();
        match &self.value {
            Value::Flag => {}
            Value::Assigned(eq, value) => {
                eq.to_tokens(&mut tokens);
                value.to_tokens(&mut tokens);
            }
            Value::Delimited(group) => group.to_tokens(&mut tokens),
        }
        tokens
    }

    /// Rejects a value on an argument that is a plain flag.
    fn expect_flag(&self, errors: &mut Errors) {
        if !matches!(self.value, Value::Flag) {
            errors.push(Error::new_spanned(
                self.tokens(),
                format!("`{}` takes no value", self.name),
            ));
        }
    }
}

fn parse_arg_list(input: ParseStream, args: &mut Vec<Arg>) -> syn::Result<()> {
    while !input.is_empty() {
        // `parse_any`, so that a keyword (`move`, `async`) is reported as an
        // unknown argument rather than as "expected identifier".
        let name = input.call(Ident::parse_any)?;
        let value = if input.peek(Token![=]) {
            Value::Assigned(input.parse()?, input.parse()?)
        } else if input.peek(token::Paren) || input.peek(token::Bracket) || input.peek(token::Brace)
        {
            Value::Delimited(input.parse()?)
        } else {
            Value::Flag
        };
        args.push(Arg { name, value });
        if !input.is_empty() {
            input.parse::<Token![,]>()?;
        }
    }
    Ok(())
}

fn read_route(args: &[Arg], errors: &mut Errors) -> ReadRoute {
    let mut chosen: Option<(ReadRoute, &Ident)> = None;
    for arg in args {
        let route = match arg.name.to_string().as_str() {
            "replica" => ReadRoute::Replica,
            "allow_replica" => ReadRoute::AllowReplica,
            _ => {
                errors.push(not_accepted(Role::Reader, arg));
                continue;
            }
        };
        arg.expect_flag(errors);
        choose(
            &mut chosen,
            route,
            &arg.name,
            "`replica` begins on a replica, `allow_replica` begins on the primary, and \
             both join a replica reader; choose one",
            errors,
        );
    }
    chosen.map_or(ReadRoute::Primary, |(route, _)| route)
}

fn write_mode(args: &[Arg], errors: &mut Errors) -> Transaction {
    let mut mode: Option<(WriteMode, &Ident)> = None;
    let mut retry: Option<Retry> = None;
    for arg in args {
        let this_mode = match arg.name.to_string().as_str() {
            "savepoint" => WriteMode::Savepoint,
            "independent" => WriteMode::Independent,
            "retry" => {
                if retry.is_some() {
                    errors.push(duplicate(&arg.name));
                } else if let Some(parsed) = retry_value(arg, errors) {
                    retry = Some(parsed);
                }
                continue;
            }
            _ => {
                errors.push(not_accepted(Role::Writer, arg));
                continue;
            }
        };
        arg.expect_flag(errors);
        choose(
            &mut mode,
            this_mode,
            &arg.name,
            "`independent` begins its own transaction on another connection, `savepoint` \
             nests inside the caller's transaction; choose one",
            errors,
        );
    }
    Transaction::Write {
        mode: mode.map_or(WriteMode::Join, |(mode, _)| mode),
        retry,
    }
}

/// The error for an argument `role` does not take: one of the other
/// attribute's, with the reason it does not apply here, or an unknown one.
fn not_accepted(role: Role, arg: &Arg) -> Error {
    let name = &arg.name;
    let accepted = role.accepted_args();
    match (role, name.to_string().as_str()) {
        (Role::Reader, "retry") => Error::new_spanned(
            arg.tokens(),
            "`retry` is a `#[writer]` argument: readers are not retried, because \
             deadlocks and certification failures come from writes and only the \
             outermost transaction can be re-run; a reader called inside a \
             `#[writer(retry)]` is re-run with that writer",
        ),
        (Role::Reader, "savepoint" | "independent") => Error::new_spanned(
            name,
            format!("`{name}` is a `#[writer]` argument; `#[reader]` accepts {accepted}"),
        ),
        (Role::Writer, "replica" | "allow_replica") => Error::new_spanned(
            name,
            format!(
                "`{name}` is a `#[reader]` argument: writes always go to the primary; \
                 `#[writer]` accepts {accepted}"
            ),
        ),
        _ => Error::new_spanned(
            name,
            format!(
                "unknown `{}` argument `{name}`: expected {accepted}",
                role.attribute()
            ),
        ),
    }
}

/// The policy of `retry` / `retry = N`, or `None` (reported) if the value is
/// not a `u32` literal.
fn retry_value(arg: &Arg, errors: &mut Errors) -> Option<Retry> {
    let expr = match &arg.value {
        Value::Flag => return Some(Retry::DefaultAttempts),
        Value::Assigned(_, expr) => expr,
        Value::Delimited(group) => {
            errors.push(Error::new_spanned(
                group,
                "write the retry count as `retry = N`, e.g. `retry = 3`",
            ));
            return None;
        }
    };
    match retry_count(expr) {
        Ok(count) => Some(Retry::Retries(count, expr.span())),
        Err(error) => {
            errors.push(error);
            None
        }
    }
}

fn retry_count(expr: &Expr) -> syn::Result<u32> {
    match expr {
        // A count passed through a `macro_rules!` `$n:expr` arrives grouped.
        Expr::Group(group) => retry_count(&group.expr),
        Expr::Lit(ExprLit {
            lit: Lit::Int(lit), ..
        }) => {
            if !matches!(lit.suffix(), "" | "u32") {
                return Err(Error::new_spanned(
                    lit,
                    "the retry count is a `u32`: write it without a suffix, e.g. `retry = 3`",
                ));
            }
            lit.base10_parse::<u32>()
                .map_err(|_| Error::new_spanned(lit, "the retry count must fit in a `u32`"))
        }
        Expr::Unary(ExprUnary {
            op: UnOp::Neg(_), ..
        }) => Err(Error::new_spanned(
            expr,
            "the retry count cannot be negative; `retry = 0` runs the transaction once",
        )),
        _ => Err(Error::new_spanned(
            expr,
            "expected an integer literal for the retry count, e.g. `retry = 3`",
        )),
    }
}

/// Records the value of an argument that excludes the others of its group:
/// the first one written wins, a repeat is a duplicate, another is a conflict.
fn choose<'a, T>(
    chosen: &mut Option<(T, &'a Ident)>,
    value: T,
    name: &'a Ident,
    why_not_both: &str,
    errors: &mut Errors,
) {
    match chosen {
        None => *chosen = Some((value, name)),
        Some((_, previous)) if *previous == name => errors.push(duplicate(name)),
        Some((_, previous)) => errors.push(Error::new_spanned(
            name,
            format!("`{previous}` and `{name}` cannot be combined: {why_not_both}"),
        )),
    }
}

fn duplicate(name: &Ident) -> Error {
    Error::new_spanned(name, format!("duplicate argument `{name}`"))
}
