//! `wharf garbage-collect`'s progress bar: drawn on stderr only when stderr is a terminal and
//! `--quiet` is off, so logs, pipes and tests get plain output.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::gc::{Progress, Silent};

/// Width of the bar in cells.
const WIDTH: u64 = 30;

/// Redraws at most this often.
const FRAME: Duration = Duration::from_millis(80);

/// A one-line bar rewritten in place with `\r`.
pub struct TerminalBar {
    state: Mutex<State>,
}

struct State {
    phase: &'static str,
    done: u64,
    total: u64,
    drawn: Option<Instant>,
}

/// The progress display for this run: a bar on a terminal, nothing otherwise.
pub fn for_stderr(quiet: bool) -> Box<dyn Progress> {
    if !quiet && std::io::stderr().is_terminal() {
        Box::new(TerminalBar {
            state: Mutex::new(State {
                phase: "",
                done: 0,
                total: 0,
                drawn: None,
            }),
        })
    } else {
        Box::new(Silent)
    }
}

/// The text of one frame, e.g. `sweep [#####.....]  12/256`.
pub fn render(phase: &str, done: u64, total: u64) -> String {
    let filled = (done.min(total) * WIDTH)
        .checked_div(total)
        .unwrap_or(WIDTH);
    let bar: String = (0..WIDTH)
        .map(|i| if i < filled { '#' } else { '.' })
        .collect();
    format!("{phase:>5} [{bar}] {done:>5}/{total}")
}

impl TerminalBar {
    fn draw(&self, state: &mut State, force: bool) {
        if !force && state.drawn.is_some_and(|t| t.elapsed() < FRAME) {
            return;
        }
        state.drawn = Some(Instant::now());
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r{}", render(state.phase, state.done, state.total));
        let _ = err.flush();
    }
}

impl Progress for TerminalBar {
    fn start(&self, phase: &'static str, total: u64) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if s.drawn.is_some() {
            self.draw(&mut s, true);
            let _ = writeln!(std::io::stderr());
        }
        *s = State {
            phase,
            done: 0,
            total,
            drawn: None,
        };
        self.draw(&mut s, true);
    }

    fn advance(&self) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.done += 1;
        let last = s.done >= s.total;
        self.draw(&mut s, last);
    }

    fn finish(&self) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if s.drawn.is_some() {
            self.draw(&mut s, true);
            let _ = writeln!(std::io::stderr());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_fill_in_proportion() {
        assert_eq!(
            render("mark", 0, 4),
            format!(" mark [{}]     0/4", ".".repeat(30))
        );
        assert_eq!(
            render("sweep", 128, 256),
            format!("sweep [{}{}]   128/256", "#".repeat(15), ".".repeat(15))
        );
        assert_eq!(
            render("sweep", 0, 0),
            format!("sweep [{}]     0/0", "#".repeat(30))
        );
    }
}
