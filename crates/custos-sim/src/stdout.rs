//! Standard output of the commands and harnesses. `println!` panics when the reader has
//! gone (`custos ledger check-evidence … | head`); everything writes through here
//! instead, and a closed standard output ends the command quietly with success.

use std::io::Write;

use crate::Failure;

/// Writes `text` to standard output and flushes it.
pub fn text(text: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::BrokenPipe => Failure::output_closed(),
            _ => Failure::new("output", format!("cannot write to standard output: {e}")),
        })
}

/// Writes one line to standard output (see [`text`]).
pub fn line(line: impl std::fmt::Display) -> Result<(), Failure> {
    text(&format!("{line}\n"))
}

/// Writes a line to standard error, ignoring failure (`eprintln!` would panic).
pub fn note(line: impl std::fmt::Display) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Text from elsewhere (a server, a bundle), safe for a terminal: control characters
/// become `?`.
pub fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// `println!` that survives a closed reader: `outln!("…", args)?` writes one line
/// through [`line`].
#[macro_export]
macro_rules! outln {
    () => {
        $crate::stdout::text("\n")
    };
    ($($arg:tt)*) => {
        $crate::stdout::line(format_args!($($arg)*))
    };
}
