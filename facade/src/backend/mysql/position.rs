//! Where a MySQL or MariaDB server stands: the position a commit leaves
//! (the primary's GTID, or a Galera node's `wsrep_last_committed`), waiting
//! for a replica to apply one, and a replica's lag.

use std::time::Duration;

use diesel::sql_types::{BigInt, Text};
use diesel::{MysqlConnection, QueryResult, RunQueryDsl};

use super::gtid::{gtid_list_covers, position_from_last_gtid};
use super::Variable;
use crate::replica::{parse_gtid_list, Applied, Position};

#[derive(diesel::QueryableByName)]
struct Gtid {
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    value: Option<String>,
}

#[derive(diesel::QueryableByName)]
struct WaitResult {
    #[diesel(sql_type = diesel::sql_types::Nullable<BigInt>)]
    value: Option<i64>,
}

#[derive(diesel::QueryableByName)]
struct SlaveStatus {
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Unsigned<BigInt>>, column_name = "Seconds_Behind_Master")]
    seconds_behind_master: Option<u64>,
}

/// This Galera node's `wsrep_last_committed`, or `None` if it reports none.
fn galera_seqno(conn: &mut MysqlConnection) -> QueryResult<Option<u64>> {
    Ok(diesel::sql_query("SHOW STATUS LIKE 'wsrep_last_committed'")
        .load::<Variable>(conn)?
        .first()
        .and_then(|v| v.value.parse().ok()))
}

pub(super) fn commit_position(
    conn: &mut MysqlConnection,
    galera: bool,
) -> QueryResult<Option<Position>> {
    if galera {
        // Galera orders every write-set cluster-wide: once another node's
        // `wsrep_last_committed` reaches this value it has applied our
        // commit. (Read after COMMIT returned, so it includes it.)
        return Ok(galera_seqno(conn)?.map(Position::GaleraSeqno));
    }
    let gtid = diesel::sql_query("SELECT CAST(@@SESSION.last_gtid AS CHAR) AS value")
        .get_result::<Gtid>(conn)?
        .value
        .unwrap_or_default();
    // Empty without a binary log: nothing a replica could wait for, so
    // `Written` (read the primary).
    Ok(Some(position_from_last_gtid(&gtid)))
}

pub(super) fn wait_for_position(
    conn: &mut MysqlConnection,
    galera: bool,
    position: &Position,
    timeout: Duration,
) -> QueryResult<Applied> {
    match (position, galera) {
        (Position::GaleraSeqno(seqno), true) => super::super::poll_position(timeout, || {
            Ok(galera_seqno(conn)?.is_some_and(|applied| applied >= *seqno))
        }),
        (Position::Gtid(gtid), false) => {
            let reached = diesel::sql_query("SELECT MASTER_GTID_WAIT(?, ?) AS value")
                .bind::<Text, _>(gtid)
                .bind::<diesel::sql_types::Double, _>(timeout.as_secs_f64())
                .get_result::<WaitResult>(conn)?
                .value;
            Ok(if reached == Some(0) {
                Applied::Yes
            } else {
                Applied::NotYet
            })
        }
        // A position from another kind of primary cannot be checked here.
        _ => Ok(Applied::Foreign),
    }
}

pub(super) fn position_is_ahead(
    conn: &mut MysqlConnection,
    galera: bool,
    position: &Position,
) -> QueryResult<bool> {
    match (position, galera) {
        (Position::GaleraSeqno(seqno), true) => {
            Ok(galera_seqno(conn)?.is_some_and(|committed| *seqno > committed))
        }
        (Position::Gtid(gtid), false) => {
            let wanted = parse_gtid_list(gtid).unwrap_or_default();
            let binlog =
                diesel::sql_query("SELECT CAST(@@GLOBAL.gtid_binlog_pos AS CHAR) AS value")
                    .get_result::<Gtid>(conn)?
                    .value
                    .unwrap_or_default();
            // Empty without a binary log: then no GTID came from here.
            let committed = parse_gtid_list(&binlog).unwrap_or_default();
            Ok(!gtid_list_covers(&committed, &wanted))
        }
        _ => Ok(false),
    }
}

pub(super) fn replica_lag(
    conn: &mut MysqlConnection,
    galera: bool,
) -> QueryResult<Option<Duration>> {
    if galera {
        return Ok(Some(Duration::ZERO));
    }
    let status = diesel::sql_query("SHOW SLAVE STATUS").load::<SlaveStatus>(conn)?;
    Ok(match status.first() {
        // Not a replica: it is the primary, or a copy of it.
        None => Some(Duration::ZERO),
        Some(row) => row.seconds_behind_master.map(Duration::from_secs),
    })
}
