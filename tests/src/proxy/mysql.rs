//! The MySQL/MariaDB client/server protocol, as far as the proxy needs it:
//! framing, the SQL each command carries or runs, prepared statement ids,
//! and keeping TLS off so the traffic stays readable.
//!
//! Every packet is a 3-byte little-endian payload length, a sequence id and
//! the payload. A command starts a new sequence (id 0) with its command
//! byte; the handshake and authentication packets have ids above 0.

use std::io::{self, Read};
use std::sync::Mutex;

use super::link::{lock, read_start, Conversation, FromClient, FromServer};

const COM_QUIT: u8 = 0x01;
const COM_QUERY: u8 = 0x03;
const COM_PING: u8 = 0x0e;
const COM_STMT_PREPARE: u8 = 0x16;
const COM_STMT_EXECUTE: u8 = 0x17;
const COM_STMT_CLOSE: u8 = 0x19;
const COM_STMT_RESET: u8 = 0x1a;
const COM_SET_OPTION: u8 = 0x1b;
/// Capability flag (lower 16 bits): the server can switch to TLS.
const CLIENT_SSL: u16 = 0x0800;
/// Status flag of an OK packet: another result follows.
const SERVER_MORE_RESULTS_EXIST: u16 = 0x0008;

/// One packet: (sequence id, whole packet with its header).
fn packet(from: &mut impl Read) -> io::Result<Option<(u8, Vec<u8>)>> {
    let mut head = [0u8; 4];
    if !read_start(from, &mut head)? {
        return Ok(None);
    }
    let len = u32::from_le_bytes([head[0], head[1], head[2], 0]) as usize;
    let mut bytes = head.to_vec();
    bytes.resize(4 + len, 0);
    from.read_exact(&mut bytes[4..])?;
    Ok(Some((head[3], bytes)))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn statement_id(payload: &[u8]) -> Option<String> {
    let id: [u8; 4] = payload.get(1..5)?.try_into().ok()?;
    Some(u32::from_le_bytes(id).to_string())
}

pub(super) fn from_client(
    from: &mut impl Read,
    conv: &Mutex<Conversation>,
) -> io::Result<Option<FromClient>> {
    let Some((seq, bytes)) = packet(from)? else {
        return Ok(None);
    };
    let payload = &bytes[4..];
    if seq != 0 || payload.is_empty() {
        // The handshake response and authentication: nothing to log.
        return Ok(Some(FromClient::Forward { bytes, sent: None }));
    }
    let mut conv = lock(conv);
    let (message, sql, executes) = match payload[0] {
        COM_QUERY => ("COM_QUERY", Some(text(&payload[1..])), true),
        COM_STMT_PREPARE => {
            let sql = text(&payload[1..]);
            conv.preparing = Some(sql.clone());
            ("COM_STMT_PREPARE", Some(sql), false)
        }
        COM_STMT_EXECUTE => {
            let sql = statement_id(payload).and_then(|id| conv.statements.get(&id).cloned());
            ("COM_STMT_EXECUTE", sql, true)
        }
        COM_STMT_CLOSE => {
            if let Some(id) = statement_id(payload) {
                conv.statements.remove(&id);
            }
            ("COM_STMT_CLOSE", None, false)
        }
        COM_STMT_RESET => ("COM_STMT_RESET", None, false),
        COM_PING => ("COM_PING", None, false),
        COM_QUIT => ("COM_QUIT", None, false),
        // diesel's `batch_execute` turns multi-statements on before its
        // COM_QUERY and off after it.
        COM_SET_OPTION => match payload.get(1..3) {
            Some([0, 0]) => ("COM_SET_OPTION multi-statements on", None, false),
            _ => ("COM_SET_OPTION multi-statements off", None, false),
        },
        _ => ("COM_OTHER", None, false),
    };
    drop(conv);
    Ok(Some(FromClient::forward(bytes, message, sql, executes)))
}

/// The status flags of an OK packet's payload (after the header byte, two
/// length-encoded integers).
fn ok_status(payload: &[u8]) -> Option<u16> {
    let mut at = 1;
    for _ in 0..2 {
        at += match *payload.get(at)? {
            0xfc => 3,
            0xfd => 4,
            0xfe => 9,
            _ => 1,
        };
    }
    Some(u16::from_le_bytes(
        payload.get(at..at + 2)?.try_into().ok()?,
    ))
}

/// Clear CLIENT_SSL in the server's greeting: protocol version, NUL-ended
/// server version, thread id (4), scramble (8), filler (1), then the lower
/// capability flags.
fn refuse_tls(payload: &mut [u8]) {
    let Some(nul) = payload.iter().skip(1).position(|&b| b == 0) else {
        return;
    };
    let at = 1 + nul + 1 + 4 + 8 + 1;
    if let Some(flags) = payload.get_mut(at..at + 2) {
        let cleared = u16::from_le_bytes([flags[0], flags[1]]) & !CLIENT_SSL;
        flags.copy_from_slice(&cleared.to_le_bytes());
    }
}

pub(super) fn from_server(
    from: &mut impl Read,
    greeted: &mut bool,
    conv: &Mutex<Conversation>,
) -> io::Result<Option<FromServer>> {
    let Some((seq, mut bytes)) = packet(from)? else {
        return Ok(None);
    };
    if !*greeted {
        *greeted = true;
        refuse_tls(&mut bytes[4..]);
    }
    let payload = &bytes[4..];
    let header = payload.first().copied();
    if seq == 1 {
        let mut conv = lock(conv);
        if let Some(sql) = conv.preparing.take() {
            // COM_STMT_PREPARE_OK: 0x00, then the statement id.
            if let (Some(0x00), Some(id)) = (header, statement_id(payload)) {
                conv.statements.insert(id, sql);
            }
        }
    }
    // Only consulted for the reply to COMMIT, which is a single OK or ERR.
    let (ends_reply, committed) = match header {
        Some(0x00) if payload.len() >= 7 => {
            let more = ok_status(payload).is_some_and(|s| s & SERVER_MORE_RESULTS_EXIST != 0);
            (!more, Some(true))
        }
        Some(0xff) => (true, Some(false)),
        _ => (false, None),
    };
    Ok(Some(FromServer {
        bytes,
        ends_reply,
        committed,
    }))
}
