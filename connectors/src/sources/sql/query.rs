//! The mapping's query, checked before it is ever sent.

/// Checks a mapping's query: one SELECT (or `WITH … SELECT`), nothing after it. The
/// source wraps it as a subquery, so it may not close the wrapper's parenthesis, hold a
/// `;` (a second statement), or a comment (which could swallow the wrapper's clauses);
/// quotes are respected. Returns the query without a trailing `;`.
pub fn check_query(query: &str) -> std::result::Result<&str, String> {
    let q = query.trim().trim_end_matches(';').trim();
    let first_word = q
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_ascii_uppercase();
    if first_word != "SELECT" && first_word != "WITH" {
        return Err("the query must be a SELECT".into());
    }
    let bytes = q.as_bytes();
    let mut depth: i64 = 0;
    let mut quote: Option<u8> = None;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(qc) => {
                if b == qc {
                    // A doubled quote is an escaped one.
                    if bytes.get(i + 1) == Some(&qc) {
                        i += 1;
                    } else {
                        quote = None;
                    }
                }
            }
            None => match b {
                b'\'' | b'"' | b'`' => quote = Some(b),
                b'(' => depth += 1,
                b')' => {
                    depth -= 1;
                    if depth < 0 {
                        return Err(
                            "the query must be one SELECT: it closes a parenthesis it did not open"
                                .into(),
                        );
                    }
                }
                b';' => {
                    return Err(
                        "the query must be one SELECT: no `;` and no second statement".into(),
                    )
                }
                b'-' if bytes.get(i + 1) == Some(&b'-') => {
                    return Err("the query must be one SELECT without comments (`--`)".into())
                }
                b'/' if bytes.get(i + 1) == Some(&b'*') => {
                    return Err("the query must be one SELECT without comments (`/*`)".into())
                }
                b'#' => return Err("the query must be one SELECT without comments (`#`)".into()),
                _ => {}
            },
        }
        i += 1;
    }
    if quote.is_some() {
        return Err("the query has an unclosed quote".into());
    }
    if depth != 0 {
        return Err("the query has an unclosed parenthesis".into());
    }
    Ok(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_one_select_passes_the_query_check() {
        assert_eq!(check_query(" SELECT a FROM t; "), Ok("SELECT a FROM t"));
        assert!(check_query("WITH x AS (SELECT 1) SELECT * FROM x").is_ok());
        assert!(check_query("SELECT 'a;b' AS s, \"c)\" FROM t WHERE n = 'it''s'").is_ok());
        for bad in [
            "SELECT 1; DELETE FROM penalties",
            "SELECT * FROM t) AS x; DELETE FROM t; SELECT * FROM (SELECT 1",
            "SELECT 1 -- ) AS x",
            "SELECT 1 /* */",
            "SELECT 'unclosed",
            "SELECT (1",
            "DELETE FROM t",
            "UPDATE t SET a = 1",
        ] {
            assert!(check_query(bad).is_err(), "{bad}");
        }
    }
}
