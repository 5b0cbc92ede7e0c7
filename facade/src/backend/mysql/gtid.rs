//! MariaDB GTID positions: the primary's `@@last_gtid` as a [`Position`],
//! and whether a server's GTID list covers one (what `MASTER_GTID_WAIT`
//! waits for). Token parsing and the canonical text are `replica.rs`'s.

use crate::replica::{format_gtid_list, parse_gtid_list, GtidTriple, Position};

/// A position from the primary's `@@last_gtid`; `Written` if it is empty
/// (no binary log) or does not parse (then the context's replica reads use
/// the primary).
pub(super) fn position_from_last_gtid(text: &str) -> Position {
    parse_gtid_list(text.trim()).map_or(Position::Written, |list| {
        Position::Gtid(format_gtid_list(&list))
    })
}

/// Whether a server that has applied `applied` (a replica's
/// `gtid_slave_pos`, or a primary's `gtid_binlog_pos`) has everything
/// `wanted` names, domain by domain, as `MASTER_GTID_WAIT` judges it.
pub(super) fn gtid_list_covers(applied: &[GtidTriple], wanted: &[GtidTriple]) -> bool {
    wanted.iter().all(|w| {
        applied
            .iter()
            .any(|r| r.domain == w.domain && r.seq >= w.seq)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_primarys_gtid_is_canonical_or_written() {
        assert_eq!(
            position_from_last_gtid("0-1-42"),
            Position::Gtid("0-1-42".into())
        );
        assert_eq!(position_from_last_gtid(""), Position::Written);
    }

    #[test]
    fn gtid_coverage_is_per_domain() {
        let list = |s: &str| parse_gtid_list(s).unwrap();
        assert!(gtid_list_covers(&list("0-1-10,1-1-5"), &list("0-2-10")));
        assert!(!gtid_list_covers(&list("0-1-10"), &list("0-1-11")));
        assert!(!gtid_list_covers(&list("0-1-10"), &list("1-1-1")));
    }
}
