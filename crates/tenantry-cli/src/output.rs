//! Standard output: lines that survive a closed pipe, and tables that survive long cells.

use std::fmt;
use std::io::{ErrorKind, Write};

/// The exit status of a command whose reader went away (`tenantry ... | head -1`): 128 + SIGPIPE,
/// what a shell reports for a process killed by the signal.
pub(crate) const EXIT_CLOSED_PIPE: i32 = 141;

/// Widest cell of a table, in characters; longer cells are cut with `…`.
pub(crate) const MAX_CELL_CHARS: usize = 48;

/// `println!` for the CLI: when stdout is a closed pipe, ends the process quietly instead of
/// panicking (the Rust runtime ignores SIGPIPE, so the write fails with `BrokenPipe`).
macro_rules! outln {
    () => {
        $crate::output::line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::output::line(format_args!($($arg)*))
    };
}
pub(crate) use outln;

/// Writes one line to stdout; see [`outln!`].
pub(crate) fn line(args: fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.write_all(b"\n")) {
        if e.kind() == ErrorKind::BrokenPipe {
            // Nobody reads what follows: stop like any Unix tool would on SIGPIPE. Open
            // transactions end with their connections (rolled back by the server).
            std::process::exit(EXIT_CLOSED_PIPE);
        }
        eprintln!("error: cannot write to stdout: {e}");
        std::process::exit(1);
    }
}

/// A cell as printed in a table: control characters shown as `�`, and at most `max` characters
/// (the last one `…` when cut).
pub(crate) fn clip(text: &str, max: usize) -> String {
    let mut chars = text
        .chars()
        .map(|c| if c.is_control() { '\u{FFFD}' } else { c });
    let mut out: String = chars.by_ref().take(max).collect();
    if chars.next().is_some() {
        out.pop();
        out.push('…');
    }
    out
}

/// Prints left-aligned columns, each cell clipped to [`MAX_CELL_CHARS`].
pub(crate) fn print_table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| row.iter().map(|c| clip(c, MAX_CELL_CHARS)).collect())
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let print = |cells: &[&str]| {
        let mut line = String::new();
        for (cell, width) in cells.iter().zip(&widths) {
            if !line.is_empty() {
                line.push_str("  ");
            }
            line.push_str(cell);
            // Padded by hand: a formatting width is limited to u16::MAX.
            line.extend(std::iter::repeat_n(' ', width - cell.chars().count()));
        }
        outln!("{}", line.trim_end());
    };
    print(header);
    for row in &rows {
        print(&row.iter().map(String::as_str).collect::<Vec<_>>());
    }
}

#[cfg(test)]
mod tests {
    use super::clip;

    #[test]
    fn clips_long_cells_and_control_characters() {
        assert_eq!(clip("acme", 10), "acme");
        assert_eq!(clip("abcdefghij", 10), "abcdefghij");
        assert_eq!(clip("abcdefghijk", 10), "abcdefghi…");
        assert_eq!(clip("a\nb\0c", 10), "a\u{FFFD}b\u{FFFD}c");
        assert_eq!(clip(&"é".repeat(1_000_000), 3), "éé…");
    }
}
