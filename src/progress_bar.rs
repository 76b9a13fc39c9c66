//! Progress bars for long CLI work: a bar on a terminal, plain log lines otherwise
//! (operations.md "Long-running commands … show a progress bar").

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar of `len` steps titled `what`; hidden (lines still print) when stderr is not a
/// terminal.
pub fn bar(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    if std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        bar.set_style(style);
    } else {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_prefix(what.to_owned());
    bar
}

/// Prints one result line above the bar on a terminal, or as a plain line on standard
/// output when the bar is hidden (indicatif's `println` does nothing on a hidden bar,
/// which would swallow per-document results and problem lists in scripts and logs).
pub fn println(bar: &ProgressBar, line: impl AsRef<str>) {
    if bar.is_hidden() {
        println!("{}", line.as_ref());
    } else {
        bar.println(line);
    }
}
