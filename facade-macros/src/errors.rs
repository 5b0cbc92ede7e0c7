//! The error accumulator every phase reports into.
//!
//! A macro that stops at its first error makes the user fix one problem per
//! compile; each phase here instead records what it rejects and goes on, and
//! the expansion emits all of it as one `syn::Error` (one diagnostic per
//! offending token). This module depends on nothing else in the crate, so
//! every phase can use it.

use syn::Error;

/// Accumulates errors instead of stopping at the first.
#[derive(Default)]
pub(crate) struct Errors(Option<Error>);

impl Errors {
    pub(crate) fn push(&mut self, error: Error) {
        match &mut self.0 {
            Some(errors) => errors.combine(error),
            None => self.0 = Some(error),
        }
    }

    pub(crate) fn into_error(self) -> Option<Error> {
        self.0
    }

    pub(crate) fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}

/// Both results, or every error of the two.
pub(crate) fn both<A, B>(a: syn::Result<A>, b: syn::Result<B>) -> syn::Result<(A, B)> {
    match (a, b) {
        (Ok(a), Ok(b)) => Ok((a, b)),
        (Err(mut first), Err(second)) => {
            first.combine(second);
            Err(first)
        }
        (Err(error), Ok(_)) | (Ok(_), Err(error)) => Err(error),
    }
}
