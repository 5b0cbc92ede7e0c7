//! What each transaction kind calls in `diesel_facade::__private`, and
//! with which arguments: shared by both code generators (`fast` and
//! `expand`).

use proc_macro2::{Literal, TokenStream};
use quote::quote;

use crate::args::{ReadRoute, Retry, Transaction, WriteMode};

/// What a transaction kind calls in the runtime.
pub(crate) struct Runtime {
    /// `diesel_facade::__private::<function>`, which hands the body to the
    /// scope argument (a trait object), whose implementation for the
    /// caller's type begins or joins.
    pub(crate) function: &'static str,
    /// The `Route` argument of `read_replica`.
    pub(crate) route: Option<&'static str>,
    /// The `savepoint` argument of `write` and `write_retry`.
    pub(crate) savepoint: Option<bool>,
    /// `diesel_facade::__private::<access>`: the bound on the scope
    /// parameter, which decides at the call site what may call this function.
    pub(crate) access: &'static str,
    /// `diesel_facade::<scope>`: what the body's context is.
    pub(crate) scope: &'static str,
    /// The `RetryPolicy` argument of the `…_retry` functions.
    pub(crate) policy: Option<TokenStream>,
}

impl Runtime {
    pub(crate) fn of(transaction: &Transaction) -> Self {
        let mut route = None;
        let mut savepoint = None;
        let (function, access, scope) = match transaction {
            Transaction::Read(ReadRoute::Primary) => ("read", "DynRead", "ReaderScope"),
            Transaction::Read(ReadRoute::AllowReplica) => {
                route = Some("Primary");
                ("read_replica", "DynReplicaRead", "ReplicaScope")
            }
            Transaction::Read(ReadRoute::Replica) => {
                route = Some("Replica");
                ("read_replica", "DynReplicaRead", "ReplicaScope")
            }
            Transaction::Write { mode, retry } => {
                let (function, access) = match (mode, retry.is_some()) {
                    (WriteMode::Independent, false) => ("writer_independent", "DynIndependent"),
                    (WriteMode::Independent, true) => {
                        ("writer_independent_retry", "DynIndependent")
                    }
                    (WriteMode::Join | WriteMode::Savepoint, retry) => {
                        savepoint = Some(*mode == WriteMode::Savepoint);
                        (if retry { "write_retry" } else { "write" }, "DynWrite")
                    }
                };
                (function, access, "WriterScope")
            }
        };
        let policy = match transaction {
            Transaction::Write {
                retry: Some(retry), ..
            } => Some(retry_policy(*retry)),
            _ => None,
        };
        Runtime {
            function,
            route,
            savepoint,
            access,
            scope,
            policy,
        }
    }
}

fn retry_policy(retry: Retry) -> TokenStream {
    match retry {
        Retry::DefaultAttempts => {
            quote!(::diesel_facade::__private::RetryPolicy::default_attempts())
        }
        Retry::Retries(count, span) => {
            let mut count = Literal::u32_unsuffixed(count);
            count.set_span(span);
            quote!(::diesel_facade::__private::RetryPolicy::retries(#count))
        }
    }
}
