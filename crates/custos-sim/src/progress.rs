//! The progress bar of long loads and runs (the demo's load, the simulator, the benchmarks).

use indicatif::{ProgressBar, ProgressStyle};

/// A progress bar over `len` items named `what` (hidden when `quiet`).
pub fn bar(len: usize, what: &str, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64);
    if let Ok(style) =
        ProgressStyle::with_template("{msg:>10} [{bar:40}] {pos}/{len} ({per_sec}, {eta})")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_owned());
    bar
}
