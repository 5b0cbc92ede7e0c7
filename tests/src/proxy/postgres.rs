//! PostgreSQL's frontend/backend protocol 3.0, as far as the proxy needs
//! it: framing, the SQL each client message carries or runs, and refusing
//! TLS so the traffic stays readable.
//!
//! The client's first message (startup, SSLRequest, GSSENCRequest) has no
//! type byte: an i32 length, then an i32 code. Every later message in both
//! directions is a type byte and an i32 length that counts itself.

use std::io::{self, Read};
use std::sync::Mutex;

use super::link::{lock, read_start, Conversation, FromClient, FromServer};

const SSL_REQUEST: i32 = 80_877_103;
const GSSENC_REQUEST: i32 = 80_877_104;
/// Far more than any message of these tests.
const MAX_MESSAGE: usize = 64 << 20;

fn length(bytes: [u8; 4], least: usize) -> io::Result<usize> {
    let n = i32::from_be_bytes(bytes);
    usize::try_from(n)
        .ok()
        .filter(|n| (least..=MAX_MESSAGE).contains(n))
        .ok_or_else(|| io::Error::other(format!("bad PostgreSQL message length {n}")))
}

/// One typed message: type byte, length, body.
fn typed(from: &mut impl Read) -> io::Result<Option<Vec<u8>>> {
    let mut head = [0u8; 5];
    if !read_start(from, &mut head)? {
        return Ok(None);
    }
    let len = length([head[1], head[2], head[3], head[4]], 4)?;
    let mut message = head.to_vec();
    message.resize(1 + len, 0);
    from.read_exact(&mut message[5..])?;
    Ok(Some(message))
}

/// The NUL-terminated strings at the start of a message body.
fn strings(body: &[u8]) -> impl Iterator<Item = String> + '_ {
    body.split(|&b| b == 0)
        .map(|s| String::from_utf8_lossy(s).into_owned())
}

pub(super) fn from_client(
    from: &mut impl Read,
    started: &mut bool,
    conv: &Mutex<Conversation>,
) -> io::Result<Option<FromClient>> {
    if !*started {
        let mut head = [0u8; 8];
        if !read_start(from, &mut head)? {
            return Ok(None);
        }
        let len = length([head[0], head[1], head[2], head[3]], 8)?;
        let mut message = head.to_vec();
        message.resize(len, 0);
        from.read_exact(&mut message[8..])?;
        let code = i32::from_be_bytes([head[4], head[5], head[6], head[7]]);
        if code == SSL_REQUEST || code == GSSENC_REQUEST {
            // Refused on the server's behalf; the client then sends its
            // startup message in the clear.
            return Ok(Some(FromClient::Answer(b"N".to_vec())));
        }
        *started = true;
        return Ok(Some(FromClient::Forward {
            bytes: message,
            sent: None,
        }));
    }
    let Some(bytes) = typed(from)? else {
        return Ok(None);
    };
    let body = &bytes[5..];
    let mut conv = lock(conv);
    let (message, sql, executes) = match bytes[0] {
        b'Q' => ("Query", strings(body).next(), true),
        b'P' => {
            let mut s = strings(body);
            let (name, sql) = (s.next().unwrap_or_default(), s.next().unwrap_or_default());
            conv.statements.insert(name, sql.clone());
            ("Parse", Some(sql), false)
        }
        b'B' => {
            let mut s = strings(body);
            let (portal, statement) = (s.next().unwrap_or_default(), s.next().unwrap_or_default());
            let sql = conv.statements.get(&statement).cloned();
            if let Some(sql) = &sql {
                conv.portals.insert(portal, sql.clone());
            }
            ("Bind", sql, false)
        }
        b'E' => {
            let portal = strings(body).next().unwrap_or_default();
            ("Execute", conv.portals.get(&portal).cloned(), true)
        }
        b'D' => ("Describe", None, false),
        b'S' => ("Sync", None, false),
        b'H' => ("Flush", None, false),
        b'C' => ("Close", None, false),
        b'X' => ("Terminate", None, false),
        // Authentication answers carry secrets: type only.
        b'p' => ("Password", None, false),
        _ => ("Other", None, false),
    };
    drop(conv);
    Ok(Some(FromClient::forward(bytes, message, sql, executes)))
}

pub(super) fn from_server(from: &mut impl Read) -> io::Result<Option<FromServer>> {
    let Some(bytes) = typed(from)? else {
        return Ok(None);
    };
    let committed = match bytes[0] {
        // CommandComplete: an aborted transaction answers COMMIT with the
        // tag ROLLBACK.
        b'C' => Some(strings(&bytes[5..]).next().as_deref() == Some("COMMIT")),
        b'E' => Some(false),
        _ => None,
    };
    Ok(Some(FromServer {
        ends_reply: bytes[0] == b'Z',
        committed,
        bytes,
    }))
}
