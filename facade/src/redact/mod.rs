//! Keeping passwords out of everything the facade shows.
//!
//! A database URL is redacted before it reaches a `Debug` or `Display`
//! implementation, an error message or a log line, and any text a driver
//! derives from it (libpq repeats a password whose percent-encoding it
//! cannot decode) is scrubbed of the secrets the URL contains. Both work
//! from one list of secret spans per form, so whatever redaction hides,
//! scrubbing hides too:
//!
//! - `scheme://user:password@host/db?password=..`: the userinfo password
//!   (up to the last `@` when the URL is malformed, so a typo elsewhere
//!   cannot expose it) and every secret query parameter;
//! - libpq `key=value` strings, parsed like libpq does (quoted values with
//!   `\'` escapes, spaces around `=`);
//! - SQLite paths and `file:` URIs, whose query may carry parameters too.
//!
//! Redaction errs on the side of hiding too much: a malformed URL may lose
//! more than its password, never less.

use std::borrow::Cow;
use std::ops::Range;

const MASK: &str = "***";

/// `raw` with every secret replaced by `***`.
pub(crate) fn redact_url(raw: &str) -> String {
    let mut shown = String::with_capacity(raw.len());
    let mut last = 0;
    for span in secret_spans(raw) {
        shown.push_str(&raw[last..span.start]);
        shown.push_str(MASK);
        last = span.end;
    }
    shown.push_str(&raw[last..]);
    shown
}

/// The secrets of one URL, in every spelling a driver may repeat them in.
#[derive(Clone, Default)]
pub(crate) struct Secrets(Vec<String>);

impl Secrets {
    pub(crate) fn of(raw: &str) -> Self {
        let mut found = Vec::new();
        for span in secret_spans(raw) {
            let text = &raw[span];
            let unquoted = text
                .strip_prefix('\'')
                .map(|t| t.strip_suffix('\'').unwrap_or(t))
                .unwrap_or(text);
            found.push(text.to_owned());
            found.push(unquoted.to_owned());
            found.push(unescape_backslashes(unquoted));
            found.push(percent_decode(unquoted).into_owned());
            found.push(percent_decode(&unquoted.replace('+', " ")).into_owned());
        }
        found.retain(|s| !s.is_empty());
        // Longest first, so that a secret containing another is replaced
        // whole.
        found.sort_by_key(|s| std::cmp::Reverse(s.len()));
        found.dedup();
        Secrets(found)
    }

    /// `text` with every occurrence of these secrets replaced by `***`.
    pub(crate) fn scrub(&self, text: &str) -> String {
        self.0
            .iter()
            .fold(text.to_owned(), |text, secret| text.replace(secret, MASK))
    }
}

/// The byte ranges of `raw` that hold secrets, sorted and disjoint: those of
/// `raw` read as one URL, and those of every further URL it contains (a
/// list such as a MySQL writer failover list, or several URLs given where
/// one was expected), each read from its scheme on.
fn secret_spans(raw: &str) -> Vec<Range<usize>> {
    let starts = embedded_url_starts(raw);
    // A comma before a further URL ends a list entry: each entry is read as
    // a URL of its own, so a list shows as a list.
    let mut pieces = Vec::new();
    let mut piece_start = 0;
    for &start in &starts {
        if let Some(comma) = raw[..start].trim_end().strip_suffix(',') {
            pieces.push(piece_start..comma.len());
            piece_start = start;
        }
    }
    pieces.push(piece_start..raw.len());
    let mut spans = Vec::new();
    let mut add = |range: Range<usize>| {
        spans.extend(
            secret_spans_of_one(&raw[range.clone()])
                .into_iter()
                .map(|span| span.start + range.start..span.end + range.start),
        );
    };
    // Any further URL inside an entry (a malformed one) is read from its
    // scheme to the entry's end too: redaction errs on the side of hiding
    // more.
    for piece in pieces {
        for &start in starts.iter().filter(|&&s| s > piece.start && s < piece.end) {
            add(start..piece.end);
        }
        add(piece);
    }
    spans.sort_by_key(|span| (span.start, span.end));
    let mut merged: Vec<Range<usize>> = Vec::with_capacity(spans.len());
    for span in spans {
        match merged.last_mut() {
            Some(last) if span.start <= last.end => last.end = last.end.max(span.end),
            _ => merged.push(span),
        }
    }
    merged
}

/// Where each `scheme://` after the start of `raw` begins.
fn embedded_url_starts(raw: &str) -> Vec<usize> {
    let is_scheme = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.');
    let bytes = raw.as_bytes();
    let mut starts = Vec::new();
    let mut from = 0;
    while let Some(found) = raw[from..].find("://") {
        let at = from + found;
        let mut start = at;
        while start > 0 && is_scheme(bytes[start - 1]) {
            start -= 1;
        }
        // Skip the leading non-letters a scheme cannot start with.
        while start < at && !bytes[start].is_ascii_alphabetic() {
            start += 1;
        }
        if start > 0 && start < at {
            starts.push(start);
        }
        from = at + 3;
    }
    starts
}

/// The secret spans of `raw` read as one URL.
fn secret_spans_of_one(raw: &str) -> Vec<Range<usize>> {
    let scheme_end = raw.find("://").filter(|&end| {
        let scheme = &raw[..end];
        scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    });
    let mut spans = if let Some(scheme_end) = scheme_end {
        url_spans(raw, scheme_end + 3)
    } else if raw
        .get(..5)
        .is_some_and(|s| s.eq_ignore_ascii_case("file:"))
    {
        query_spans(raw, 0)
    } else {
        key_value_spans(raw)
    };
    if scheme_end.is_none() {
        // Not a well-formed URL (a leading space, a typo in the scheme,
        // `scheme:user:pw@host`): whatever stands between a `:` and the
        // last `@` may be a password. Hide too much rather than too little.
        // (A libpq `key=value` string was parsed above.)
        if let Some(at) = raw.rfind('@').filter(|&at| !raw[..at].contains('=')) {
            if let Some(colon) = raw[..at].find(':') {
                spans.push(colon + 1..at);
            }
        }
        spans.extend(query_spans(raw, 0));
    }
    spans.sort_by_key(|s| s.start);
    spans.dedup_by(|later, earlier| {
        // Merge overlaps (a nested URL inside a redacted value).
        if later.start < earlier.end {
            earlier.end = earlier.end.max(later.end);
            true
        } else {
            false
        }
    });
    spans
}

/// `scheme://[user[:password]@]host[:port][/db][?params]`, parsed or not.
fn url_spans(raw: &str, rest_start: usize) -> Vec<Range<usize>> {
    let rest = &raw[rest_start..];
    // Only a `?` followed by `name=` starts the query: one followed by
    // anything else is taken to be part of a password.
    let query_start = rest
        .match_indices('?')
        .map(|(i, _)| i)
        .find(|&i| {
            let after = &rest[i + 1..];
            let name_len = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
                .unwrap_or(after.len());
            name_len > 0 && after[name_len..].starts_with('=')
        })
        .unwrap_or(rest.len());
    // The userinfo ends at the last `@` before the query. In a well-formed
    // URL that is the authority's last `@` (as the url crate and libpq
    // agree). An `@` further on means a password with an unencoded `/`,
    // `?` or `#` in it (`u:a@b/c@host`): everything up to it is hidden. An
    // `@` in a parameter (`?application_name=a@b`) leaves the host shown.
    // With no `@` before the query, the last one anywhere is taken, in case
    // the password holds `?name=`; the query is then searched from its
    // start too, in case that `@` was in a parameter's value.
    // Not covered: an unencoded `@` and then `?name=` in one password
    // (`u:a@b?c=d@host`), which both the url crate and libpq read as the
    // password `a` and the query `c=d@host`.
    let userinfo_end = rest[..query_start].rfind('@').or_else(|| rest.rfind('@'));
    let mut spans = Vec::new();
    let mut host_start = 0;
    if let Some(at) = userinfo_end {
        if let Some(colon) = rest[..at].find(':') {
            spans.push(rest_start + colon + 1..rest_start + at);
        }
        host_start = at + 1;
    }
    if host_start > query_start {
        spans.extend(query_spans(&rest[query_start..], rest_start + query_start));
    }
    spans.extend(query_spans(&rest[host_start..], rest_start + host_start));
    spans
}

/// Secret `key=value` parameters of the query in `text` (which starts at
/// `offset` in the whole string).
fn query_spans(text: &str, offset: usize) -> Vec<Range<usize>> {
    let Some(question) = text.find('?') else {
        return Vec::new();
    };
    let query_start = question + 1;
    let query_end = text[query_start..]
        .find('#')
        .map_or(text.len(), |i| query_start + i);
    let mut spans = Vec::new();
    let mut start = query_start;
    for pair in text[query_start..query_end].split(['&', ';']) {
        if let Some((key, _)) = pair.split_once('=') {
            if is_secret_key(&percent_decode(key)) {
                let value_start = start + key.len() + 1;
                spans.push(offset + value_start..offset + start + pair.len());
            }
        }
        start += pair.len() + 1;
    }
    spans
}

/// libpq `key = value` pairs: values are bare words or single-quoted with
/// backslash escapes. A secret key whose value cannot be delimited (no
/// `=`, an unterminated quote) hides the rest of the string.
fn key_value_spans(raw: &str) -> Vec<Range<usize>> {
    let bytes = raw.as_bytes();
    let skip_space = |mut i: usize| {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    };
    let mut spans = Vec::new();
    let mut i = skip_space(0);
    while i < bytes.len() {
        let key_start = i;
        while i < bytes.len() && !bytes[i].is_ascii_whitespace() && bytes[i] != b'=' {
            i += 1;
        }
        let secret = is_secret_key(&raw[key_start..i]);
        i = skip_space(i);
        if i >= bytes.len() || bytes[i] != b'=' {
            if secret && i < bytes.len() {
                spans.push(i..raw.len());
                break;
            }
            continue;
        }
        i = skip_space(i + 1);
        let value_start = i;
        let mut terminated = true;
        if bytes.get(i) == Some(&b'\'') {
            i += 1;
            terminated = false;
            while i < bytes.len() {
                match bytes[i] {
                    b'\\' => i += 2,
                    b'\'' => {
                        i += 1;
                        terminated = true;
                        break;
                    }
                    _ => i += 1,
                }
            }
        } else {
            while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
                i += if bytes[i] == b'\\' { 2 } else { 1 };
            }
        }
        let value_end = i.min(raw.len());
        if secret || !terminated {
            if secret || raw[value_start..].contains("://") {
                spans.push(value_start..if terminated { value_end } else { raw.len() });
            }
            if !terminated {
                break;
            }
        } else if raw[value_start..value_end].contains("://") {
            // libpq expands a URI given as `dbname`.
            let value = &raw[value_start..value_end];
            let inner = value.trim_matches('\'');
            let inner_start = value_start + (value.len() - value.trim_start_matches('\'').len());
            match inner.find("://") {
                Some(scheme_end) if !inner.contains('\\') => spans.extend(
                    url_spans(inner, scheme_end + 3)
                        .into_iter()
                        .map(|s| inner_start + s.start..inner_start + s.end),
                ),
                _ => spans.push(value_start..value_end),
            }
        }
        i = skip_space(i);
    }
    spans
}

/// Parameter names that carry secrets: libpq's `password` and
/// `sslpassword`, and anything else that looks like one.
fn is_secret_key(key: &str) -> bool {
    let key = key.trim().to_ascii_lowercase();
    // `key`: SQLCipher's `?key=` passphrase.
    ["pass", "pwd", "secret", "token", "key"]
        .iter()
        .any(|word| key.contains(word))
}

/// `%XX` sequences decoded; invalid ones kept as they are (as the url
/// crate keeps them).
fn percent_decode(text: &str) -> Cow<'_, str> {
    if !text.contains('%') {
        return Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(high), Some(low)) => {
                // Two hex digits always fit in a byte.
                out.push(u8::try_from(high * 16 + low).unwrap_or(b'%'));
                i += 3;
            }
            (byte, _, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

fn unescape_backslashes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests;
