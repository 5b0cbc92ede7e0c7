//! Unit tests of each phase on `proc_macro2` tokens: argument parsing,
//! signature checks, the generated function and the derive. Whether the
//! generated code compiles against the runtime is for the workspace's
//! trybuild suite.

mod args;
mod derive;
mod expansion;
mod fast;
mod signature;

use proc_macro2::{Span, TokenStream};

/// Tokens with real line/column spans (the `span-locations` fallback), so a
/// test can ask which source text an error points at.
fn tokens(source: &str) -> TokenStream {
    source.parse().expect("test source must tokenize")
}

/// Every message of a (possibly combined) error, in order.
fn messages(error: syn::Error) -> Vec<String> {
    error.into_iter().map(|error| error.to_string()).collect()
}

/// The source text of every message of `error`: what each one points at.
fn pointed_at(source: &str, error: &syn::Error) -> Vec<String> {
    error
        .clone()
        .into_iter()
        .map(|error| covered(source, error.span()))
        .collect()
}

/// The text of `source` between the start and end of `span`.
fn covered(source: &str, span: Span) -> String {
    let offset = |line: usize, column: usize| -> usize {
        let line_start: usize = source
            .split_inclusive('\n')
            .take(line - 1)
            .map(|line| line.chars().count())
            .sum();
        line_start + column
    };
    let (start, end) = (span.start(), span.end());
    let from = offset(start.line, start.column);
    let to = offset(end.line, end.column);
    source.chars().skip(from).take(to - from).collect()
}

/// Token text with the spacing of `to_string`, for comparing shapes.
fn normalized(tokens: impl quote::ToTokens) -> String {
    tokens.to_token_stream().to_string()
}
