//! Splitting a migration file into single statements, for Citus (which refuses a
//! multi-statement query that holds DDL for a distributed schema).
//!
//! A lexer, not a parser: it only has to find the semicolons that end statements, so it knows
//! exactly what can hide one: `--` and (nested) `/* */` comments, `'...'` strings (with `''`),
//! `E'...'` strings (with backslash escapes), `"..."` identifiers, dollar-quoted bodies
//! (`$$...$$`, `$tag$...$tag$`, as PL/pgSQL functions use) and SQL-standard function bodies
//! (`BEGIN ATOMIC ... END`, whose statements end with semicolons of their own). Everything else
//! is passed through untouched, so PostgreSQL still parses each statement itself.
//!
//! Why not a crate: `sqlparser` refuses much valid PostgreSQL (PL/pgSQL bodies, many DDL
//! options), and `pg_query` (PostgreSQL's own parser) builds libpg_query from C with bindgen
//! (libclang) for the sake of finding semicolons.

/// Splits `sql` into its statements, in order, each without its trailing semicolon and
/// trimmed. Statements made only of comments and whitespace are left out.
///
/// ```
/// let sql = "CREATE TABLE t (s text DEFAULT 'a;b'); -- one; two\n\
///            CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN 1; END $$;";
/// let parts = tenantry_sqlx::split_statements(sql);
/// assert_eq!(parts.len(), 2);
/// assert!(parts[1].ends_with("END $$"));
/// ```
pub fn split_statements(sql: &str) -> Vec<String> {
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    // Whether the current statement has anything but comments and whitespace.
    let mut has_code = false;
    // Depth of `BEGIN ATOMIC ... END` (CASE ... END nests inside).
    let mut atomic = 0usize;
    let mut last_word = String::new();
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                i = sql[i..].find('\n').map_or(bytes.len(), |n| i + n + 1);
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = skip_block_comment(bytes, i);
            }
            b'\'' => {
                has_code = true;
                let escapes = is_escape_string(bytes, i);
                i = skip_quoted(bytes, i, b'\'', escapes);
            }
            b'"' => {
                has_code = true;
                i = skip_quoted(bytes, i, b'"', false);
            }
            b'$' => {
                has_code = true;
                i = match dollar_tag(sql, i) {
                    Some(tag) => {
                        let body = i + tag.len();
                        sql[body..]
                            .find(tag)
                            .map_or(bytes.len(), |n| body + n + tag.len())
                    }
                    None => i + 1,
                };
            }
            b';' if atomic == 0 => {
                if has_code {
                    out.push(sql[start..i].trim().to_owned());
                }
                i += 1;
                start = i;
                has_code = false;
                last_word.clear();
            }
            _ if is_ident_start(b) => {
                has_code = true;
                let end = i + bytes[i..].iter().take_while(|&&c| is_ident_char(c)).count();
                let word = sql[i..end].to_ascii_uppercase();
                let opens =
                    (word == "ATOMIC" && last_word == "BEGIN") || (atomic > 0 && word == "CASE");
                if opens {
                    atomic += 1;
                } else if atomic > 0 && word == "END" {
                    atomic -= 1;
                }
                last_word = word;
                i = end;
            }
            _ => {
                if !b.is_ascii_whitespace() {
                    has_code = true;
                }
                i += 1;
            }
        }
    }
    if has_code {
        out.push(sql[start..].trim().to_owned());
    }
    out
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

fn is_ident_char(b: u8) -> bool {
    is_ident_start(b) || b.is_ascii_digit() || b == b'$'
}

/// The end of the (possibly nested) block comment starting at `i`.
fn skip_block_comment(bytes: &[u8], mut i: usize) -> usize {
    let mut depth = 0usize;
    while i < bytes.len() {
        if bytes[i] == b'/' && bytes.get(i + 1) == Some(&b'*') {
            depth += 1;
            i += 2;
        } else if bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/') {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += 1;
        }
    }
    bytes.len()
}

/// Whether the quote at `i` opens an `E'...'` string: an `E` right before it that is not the
/// end of a longer word.
fn is_escape_string(bytes: &[u8], i: usize) -> bool {
    i >= 1 && matches!(bytes[i - 1], b'e' | b'E') && (i < 2 || !is_ident_char(bytes[i - 2]))
}

/// The end of the quoted text opened at `i` (doubled quotes stay inside; with `escapes`, a
/// backslash escapes the next byte).
fn skip_quoted(bytes: &[u8], i: usize, quote: u8, escapes: bool) -> usize {
    let mut j = i + 1;
    while j < bytes.len() {
        match bytes[j] {
            b'\\' if escapes => j += 2,
            c if c == quote => {
                if bytes.get(j + 1) == Some(&quote) {
                    j += 2;
                } else {
                    return j + 1;
                }
            }
            _ => j += 1,
        }
    }
    bytes.len()
}

/// The dollar-quote tag (`$$`, `$body$`) starting at `i`, if `$` opens one here: not a
/// parameter (`$1`) and not inside a word (`a$b`).
fn dollar_tag(sql: &str, i: usize) -> Option<&str> {
    let bytes = sql.as_bytes();
    if i > 0 && is_ident_char(bytes[i - 1]) {
        return None;
    }
    let rest = &bytes[i + 1..];
    let len = rest
        .iter()
        .take_while(|&&c| is_ident_start(c) || c.is_ascii_digit())
        .count();
    if len > 0 && rest[0].is_ascii_digit() {
        return None;
    }
    (rest.get(len) == Some(&b'$')).then(|| &sql[i..i + len + 2])
}

#[cfg(test)]
mod tests {
    use super::split_statements;

    #[test]
    fn plain_statements_and_empty_ones() {
        assert_eq!(
            split_statements("CREATE TABLE a (x int);\n\n;CREATE INDEX ON a (x)  ;  "),
            ["CREATE TABLE a (x int)", "CREATE INDEX ON a (x)"]
        );
        assert!(split_statements("  -- nothing\n/* at all; */ ;").is_empty());
    }

    #[test]
    fn semicolons_in_strings_identifiers_and_comments_stay() {
        let sql = "INSERT INTO \"we;ird\" VALUES ('a;b', 'it''s; fine'); -- x; y\n\
                   /* outer /* nested; */ still; */ SELECT 1";
        let parts = split_statements(sql);
        assert_eq!(parts.len(), 2, "{parts:?}");
        assert_eq!(
            parts[0],
            "INSERT INTO \"we;ird\" VALUES ('a;b', 'it''s; fine')"
        );
        assert!(parts[1].ends_with("SELECT 1"));
    }

    #[test]
    fn escape_strings_take_backslashes() {
        let parts = split_statements(r"SELECT E'\';'; SELECT 'plain\'; SELECT 2");
        assert_eq!(parts, [r"SELECT E'\';'", r"SELECT 'plain\'", "SELECT 2"]);
        // A word ending in e is not an escape-string prefix.
        assert_eq!(
            split_statements(r"SELECT some'\'; SELECT 3").len(),
            2,
            "'\\' is a complete standard string"
        );
    }

    #[test]
    fn dollar_quoted_bodies_are_one_statement() {
        let sql = "CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $fn$\n\
                   BEGIN NEW.x := 'a;'; RETURN NEW; END $fn$;\n\
                   DO $$ BEGIN PERFORM 1; END $$; SELECT $1, a$b$ FROM t";
        let parts = split_statements(sql);
        assert_eq!(parts.len(), 3, "{parts:?}");
        assert!(parts[0].ends_with("END $fn$"));
        assert_eq!(parts[1], "DO $$ BEGIN PERFORM 1; END $$");
        assert_eq!(parts[2], "SELECT $1, a$b$ FROM t");
    }

    #[test]
    fn sql_standard_bodies_keep_their_semicolons() {
        let sql = "CREATE FUNCTION g(x int) RETURNS int LANGUAGE sql BEGIN ATOMIC \
                   SELECT CASE WHEN x > 0 THEN 1 ELSE 0 END; SELECT 2; END; SELECT 3";
        let parts = split_statements(sql);
        assert_eq!(parts.len(), 2, "{parts:?}");
        assert!(parts[0].ends_with("SELECT 2; END"));
        assert_eq!(parts[1], "SELECT 3");
    }

    #[test]
    fn unterminated_text_is_one_statement_for_postgres_to_refuse() {
        assert_eq!(split_statements("SELECT 'open; SELECT 1").len(), 1);
        assert_eq!(split_statements("SELECT $$ open; SELECT 1").len(), 1);
    }
}
