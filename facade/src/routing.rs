//! Replica routing: which replica serves a `#[reader(replica)]`, and when
//! the primary does instead.
//!
//! Replicas are tried round-robin. A replica whose pool has no connection
//! within `checkout_timeout`, or that does not answer, is skipped for
//! `retry_interval`; one that lags more than `max_lag` is skipped for this
//! read. When the context has written, the replica must first reach the
//! context's [`ReadPosition`] within `wait_timeout`; otherwise the read goes
//! to the primary (`FacadeStats::replica_fallbacks`). How positions are
//! recorded and carried is `replica.rs`'s; how a backend reads and waits
//! for one is its own (`SupportedConnection::wait_for_position`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::backend::SupportedConnection;
use crate::classify::{classify, is_connection_lost};
use crate::config::check_wait;
use crate::error::{Error, ErrorKind};
use crate::pool::{PoolSet, PooledConn};
use crate::replica::{Applied, Position, ReadPosition, Recorded};
use crate::stats::Counters;

/// A replica pool and when it may be tried again after failing.
struct Replica<C: SupportedConnection> {
    set: PoolSet<C>,
    down_until: Mutex<Option<Instant>>,
}

impl<C: SupportedConnection> Replica<C> {
    fn is_down(&self) -> bool {
        let guard = self.down_until.lock().unwrap_or_else(|p| p.into_inner());
        guard.is_some_and(|until| Instant::now() < until)
    }

    fn mark_down(&self, interval: Duration) {
        let mut guard = self.down_until.lock().unwrap_or_else(|p| p.into_inner());
        *guard = Some(Instant::now() + interval);
    }
}

/// How waiting for a context's position on a replica ended.
enum Waited {
    /// The replica has it: read there.
    Reached,
    /// Read from the primary (the replica is behind, or the position is
    /// unusable and was dropped).
    UsePrimary,
    /// The replica failed: mark it down and try the next one.
    ReplicaFailed,
}

/// Replica routing settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReplicaSettings {
    pub(crate) checkout_timeout: Duration,
    pub(crate) retry_interval: Duration,
    pub(crate) wait_timeout: Duration,
    pub(crate) max_lag: Option<Duration>,
}

impl ReplicaSettings {
    /// A `Config` error for a wait that would panic or never end.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        check_wait("replica_wait_timeout", self.wait_timeout, true)?;
        check_wait("replica_timeouts checkout", self.checkout_timeout, false)?;
        check_wait("replica_timeouts retry_interval", self.retry_interval, true)
    }
}

impl Default for ReplicaSettings {
    fn default() -> Self {
        ReplicaSettings {
            checkout_timeout: Duration::from_millis(250),
            retry_interval: Duration::from_secs(5),
            wait_timeout: Duration::from_secs(1),
            max_lag: None,
        }
    }
}

/// The replica pools of a facade and how reads are routed to them.
pub(crate) struct Replicas<C: SupportedConnection> {
    pools: Vec<Replica<C>>,
    settings: ReplicaSettings,
    /// Where the next read starts looking (round-robin).
    next: AtomicUsize,
}

impl<C: SupportedConnection> Replicas<C> {
    pub(crate) fn new(pools: Vec<PoolSet<C>>, settings: ReplicaSettings) -> Self {
        Replicas {
            pools: pools
                .into_iter()
                .map(|set| Replica {
                    set,
                    down_until: Mutex::new(None),
                })
                .collect(),
            settings,
            next: AtomicUsize::new(0),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.pools.len()
    }

    /// Each replica's URL with its password replaced by `***`.
    pub(crate) fn redacted(&self) -> Vec<&str> {
        self.pools.iter().map(|r| r.set.redacted.as_str()).collect()
    }

    /// A connection to the next healthy replica that has caught up with the
    /// context's `position` (when given), or `None` if there is no replica or
    /// none can serve the read (the caller falls back to the primary).
    ///
    /// `primary` is asked whether a restored position exists at all (see
    /// [`wait_for_position`](Self::wait_for_position)).
    pub(crate) fn checkout(
        &self,
        primary: &PoolSet<C>,
        counters: &Counters,
        position: Option<&ReadPosition>,
    ) -> Option<PooledConn<C>> {
        let replicas = &self.pools;
        if replicas.is_empty() {
            return None;
        }
        let settings = self.settings;
        let recorded = position.and_then(|cell| cell.recorded().map(|r| (cell, r)));
        if recorded
            .as_ref()
            .is_some_and(|(_, r)| r.position == Position::Written)
        {
            Counters::bump(&counters.replica_fallbacks);
            tracing::debug!(
                "this context wrote but its position is unknown; reading from the primary"
            );
            return None;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        for offset in 0..replicas.len() {
            let index = (start + offset) % replicas.len();
            let replica = &replicas[index];
            if replica.is_down() {
                continue;
            }
            let mut conn = match replica.set.get_alive(
                settings.checkout_timeout,
                // A lag or position query comes before the BEGIN: a dead
                // connection there would take the replica out of use.
                settings.max_lag.is_some() || recorded.is_some(),
            ) {
                Ok(conn) => {
                    Counters::bump(&counters.checkouts);
                    conn
                }
                Err(err) => {
                    replica.mark_down(settings.retry_interval);
                    tracing::warn!(
                        replica = %replica.set.redacted,
                        error = %err,
                        retry_in = ?settings.retry_interval,
                        "replica unavailable; skipping it"
                    );
                    continue;
                }
            };
            if let Some(max_lag) = settings.max_lag {
                let managed = &mut *conn;
                match C::replica_lag(&mut managed.conn, &managed.session) {
                    Ok(Some(lag)) if lag <= max_lag => {}
                    Ok(lag) => {
                        tracing::warn!(
                            replica = %replica.set.redacted,
                            ?lag,
                            ?max_lag,
                            "replica lags too far behind; skipping it"
                        );
                        continue;
                    }
                    Err(err) => {
                        conn.broken = true;
                        replica.mark_down(settings.retry_interval);
                        tracing::warn!(replica = %replica.set.redacted, error = %err, "replica did not answer");
                        continue;
                    }
                }
            }
            if let Some((cell, recorded)) = &recorded {
                match self.wait_for_position(primary, counters, replica, &mut conn, cell, recorded)
                {
                    Waited::Reached => {}
                    Waited::UsePrimary => {
                        Counters::bump(&counters.replica_fallbacks);
                        return None;
                    }
                    Waited::ReplicaFailed => {
                        conn.broken = true;
                        replica.mark_down(settings.retry_interval);
                        continue;
                    }
                }
            }
            return Some(conn);
        }
        Counters::bump(&counters.replica_fallbacks);
        tracing::warn!("no replica could serve the read; using the primary");
        None
    }

    /// Wait, bounded, until the replica behind `conn` has applied the
    /// context's position. A position restored from a token is checked
    /// before any waiting: if the replica is behind it, the primary is asked
    /// whether it exists at all, and a position from the future is dropped
    /// rather than waited for. A replica that rejects such a position is not
    /// at fault: the position is dropped and the replica stays in use.
    fn wait_for_position(
        &self,
        primary: &PoolSet<C>,
        counters: &Counters,
        replica: &Replica<C>,
        conn: &mut PooledConn<C>,
        cell: &ReadPosition,
        recorded: &Recorded,
    ) -> Waited {
        let settings = self.settings;
        let position = &recorded.position;
        let started = Instant::now();
        let managed = &mut **conn;
        if !recorded.verified {
            match C::wait_for_position(
                &mut managed.conn,
                &managed.session,
                position,
                Duration::ZERO,
            ) {
                Ok(Applied::Yes) => {
                    cell.mark_verified(position);
                    return Waited::Reached;
                }
                Ok(Applied::NotYet) => match self.position_is_ahead(primary, counters, position) {
                    Some(true) => {
                        cell.forget(position);
                        tracing::warn!(
                            "a restored read position is ahead of the primary (a token from \
                             the future); dropped it and reading from the primary"
                        );
                        return Waited::UsePrimary;
                    }
                    Some(false) => cell.mark_verified(position),
                    // The primary could not tell right now: wait as usual.
                    None => {}
                },
                Ok(Applied::Foreign) => return self.foreign(replica, cell, recorded),
                Err(err) => return self.rejected(replica, cell, recorded, &err),
            }
        }
        match C::wait_for_position(
            &mut managed.conn,
            &managed.session,
            position,
            settings.wait_timeout,
        ) {
            Ok(Applied::Yes) => {
                tracing::debug!(
                    waited_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
                    "replica has this context's last write"
                );
                Waited::Reached
            }
            Ok(Applied::NotYet) => {
                tracing::warn!(
                    replica = %replica.set.redacted,
                    wait = ?settings.wait_timeout,
                    "replica has not applied this context's last write; reading from the primary"
                );
                Waited::UsePrimary
            }
            Ok(Applied::Foreign) => self.foreign(replica, cell, recorded),
            Err(err) => self.rejected(replica, cell, recorded, &err),
        }
    }

    /// The replica cannot check this kind of position. One from a token is
    /// invalid here and is dropped; one this process recorded (a Galera
    /// writer with a non-Galera replica, say) sends reads to the primary.
    fn foreign(&self, replica: &Replica<C>, cell: &ReadPosition, recorded: &Recorded) -> Waited {
        if !recorded.verified {
            cell.forget(&recorded.position);
        }
        tracing::warn!(
            replica = %replica.set.redacted,
            restored = !recorded.verified,
            "the replica cannot check this kind of read position; reading from the primary"
        );
        Waited::UsePrimary
    }

    /// The replica answered the wait with an error. A lost connection is the
    /// replica's fault, and so is any error about a position this process
    /// recorded itself; an error about a restored (token) position that the
    /// replica answered is the token's: drop it, keep the replica. The
    /// server's message can quote the token, so only its kind is logged.
    fn rejected(
        &self,
        replica: &Replica<C>,
        cell: &ReadPosition,
        recorded: &Recorded,
        err: &diesel::result::Error,
    ) -> Waited {
        let kind = classify(err);
        if recorded.verified || kind == ErrorKind::Disconnected || is_connection_lost(err) {
            tracing::warn!(replica = %replica.set.redacted, error = %err, "replica did not answer");
            return Waited::ReplicaFailed;
        }
        cell.forget(&recorded.position);
        tracing::warn!(
            replica = %replica.set.redacted,
            error_kind = ?kind,
            "the replica rejected a restored read position; dropped it and reading from the primary"
        );
        Waited::UsePrimary
    }

    /// Ask the primary whether `position` is ahead of everything it has
    /// committed. `None` if it cannot tell within the replica checkout
    /// timeout (then the caller just waits, bounded, as for any position).
    fn position_is_ahead(
        &self,
        primary: &PoolSet<C>,
        counters: &Counters,
        position: &Position,
    ) -> Option<bool> {
        let mut conn = primary
            .get_alive(self.settings.checkout_timeout, true)
            .ok()?;
        Counters::bump(&counters.checkouts);
        let managed = &mut *conn;
        match C::position_is_ahead(&mut managed.conn, &managed.session, position) {
            Ok(ahead) => Some(ahead),
            Err(err) => {
                if is_connection_lost(&err) {
                    conn.broken = true;
                }
                tracing::debug!(error_kind = ?classify(&err), "could not compare a read position with the primary");
                None
            }
        }
    }
}
