//! Plain-text tables for human output. Cells that need attention are marked with a `!` and,
//! on a colour terminal (and without `NO_COLOR`), shown in red or yellow.

use std::io::IsTerminal;

/// How a cell should stand out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// Normal.
    Plain,
    /// Needs attention soon.
    Warn,
    /// Needs attention now.
    Alert,
}

/// One cell.
#[derive(Debug, Clone)]
pub struct Cell {
    text: String,
    tone: Tone,
}

impl Cell {
    /// A normal cell.
    pub fn plain(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            tone: Tone::Plain,
        }
    }

    /// A cell with a tone.
    pub fn toned(text: impl Into<String>, tone: Tone) -> Self {
        Self {
            text: text.into(),
            tone,
        }
    }
}

fn colour_enabled() -> bool {
    std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal()
}

/// Renders a table with a header row.
pub fn render(headers: &[&str], rows: &[Vec<Cell>]) -> String {
    let colour = colour_enabled();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, c) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(c.text.chars().count());
            }
        }
    }
    let mut out = String::new();
    let line = |cells: Vec<(String, Tone)>, out: &mut String| {
        let last = cells.len().saturating_sub(1);
        for (i, (text, tone)) in cells.into_iter().enumerate() {
            let pad = widths[i].saturating_sub(text.chars().count());
            let shown = match (colour, tone) {
                (true, Tone::Alert) => format!("\x1b[1;31m{text}\x1b[0m"),
                (true, Tone::Warn) => format!("\x1b[33m{text}\x1b[0m"),
                _ => text,
            };
            out.push_str(&shown);
            if i != last {
                out.push_str(&" ".repeat(pad + 2));
            }
        }
        out.push('\n');
    };
    line(
        headers
            .iter()
            .map(|h| ((*h).to_string(), Tone::Plain))
            .collect(),
        &mut out,
    );
    for row in rows {
        line(
            row.iter().map(|c| (c.text.clone(), c.tone)).collect(),
            &mut out,
        );
    }
    out
}
