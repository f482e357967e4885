//! Standard output of the CLI commands. `println!` panics when the reader has gone
//! (`custos ledger check-evidence … | head`); every command writes through here instead,
//! and a closed standard output ends the command quietly with success.

use std::io::Write;

use crate::Fatal;

/// Writes `text` to standard output and flushes it.
pub fn text(text: &str) -> Result<(), Fatal> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::BrokenPipe => Fatal::output_closed(),
            _ => Fatal::new("output", format!("cannot write to standard output: {e}")),
        })
}

/// Writes one line to standard output (see [`text`]).
pub fn line(line: impl std::fmt::Display) -> Result<(), Fatal> {
    text(&format!("{line}\n"))
}

/// `println!` for the CLI: `outln!("…", args)?` writes one line through [`line`].
macro_rules! outln {
    () => {
        $crate::output::text("\n")
    };
    ($($arg:tt)*) => {
        $crate::output::line(format_args!($($arg)*))
    };
}
pub(crate) use outln;
