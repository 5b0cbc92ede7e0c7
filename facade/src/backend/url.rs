//! The check every server backend makes of a URL before handing it to
//! its client library.

use crate::redact::redact_url;

/// Check that a server URL parses and uses one of `schemes`.
pub(crate) fn check_server_url(raw: &str, schemes: &[&str], backend: &str) -> Result<(), String> {
    if raw.trim() != raw {
        // The url crate would forgive it; libpq and libmariadb do not.
        return Err(format!(
            "`{}` has white space before or after it",
            redact_url(raw)
        ));
    }
    let parsed = url::Url::parse(raw).map_err(|e| {
        format!(
            "`{}` is not a {backend} URL ({e}); expected {}://user:password@host:port/database",
            redact_url(raw),
            schemes[0]
        )
    })?;
    if !schemes.contains(&parsed.scheme()) {
        return Err(format!(
            "`{}` has scheme `{}`, but this facade's connection type is {backend}: use {}",
            redact_url(raw),
            parsed.scheme(),
            schemes
                .iter()
                .map(|s| format!("{s}://"))
                .collect::<Vec<_>>()
                .join(" or ")
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(format!("`{}` has no host", redact_url(raw)));
    }
    // The url crate ends the user name and password at the last `@`, libpq
    // at the first: with two, libpq would connect to a host named after the
    // end of the password and print it in its error.
    let rest = raw.split_once("://").map_or(raw, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    if authority.matches('@').count() > 1 {
        return Err(format!(
            "`{}` has an unencoded `@` in its user name or password: write it as `%40`",
            redact_url(raw)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_url_checks_name_the_problem() {
        let err = check_server_url(
            "mysql://u:pw@h/db",
            &["postgres", "postgresql"],
            "PostgreSQL",
        )
        .unwrap_err();
        assert!(err.contains("scheme `mysql`"), "{err}");
        assert!(!err.contains("pw@"), "{err}");
        let err = check_server_url("not a url", &["mysql"], "MySQL").unwrap_err();
        assert!(err.contains("not a MySQL URL"), "{err}");
    }
}
