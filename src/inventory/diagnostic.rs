//! What the inventory layer reports: a [`Diagnostic`] is one problem at one place, shown the
//! way cargo and rustc show theirs: `file:line:column: error: message`, the source line with
//! a caret under the span, then a hint. [`Lines`] turns byte offsets into those positions.
//! No I/O here.

use std::fmt;
use std::ops::Range;

/// Every problem found in an inventory, sorted by position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub diagnostics: Vec<Diagnostic>,
}

/// Whether a diagnostic stops the command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The inventory is refused.
    Error,
    /// The inventory is accepted; the command prints it and goes on.
    Warning,
}

/// One problem at one place in the inventory file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The path as given to `inventory::parse` or `inventory::load`.
    pub file: String,
    /// 1-based. 0 means the problem concerns the whole file (unreadable, no hosts, ...).
    pub line: usize,
    /// 1-based, in characters. 0 when `line` is 0.
    pub column: usize,
    pub severity: Severity,
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
    /// The line the problem is on, to show with a caret under it. `None` when `line` is 0.
    pub snippet: Option<Snippet>,
}

/// One source line and how much of it, from the diagnostic's column on, to underline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snippet {
    /// The whole line, without its line break.
    pub text: String,
    /// In characters, at least 1. A span that goes on to later lines is underlined to the
    /// end of its first line.
    pub width: usize,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// ```text
/// lab.toml:3:11: error: invalid address `10.0.0.1;reboot`: contains `;`
///   |
/// 3 | address = "10.0.0.1;reboot"
///   |           ^^^^^^^^^^^^^^^^^
///   hint: write an IPv4 or IPv6 address ...
/// ```
impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}: {}", self.file, self.severity, self.message)?;
        } else {
            let (file, line, column) = (&self.file, self.line, self.column);
            write!(f, "{file}:{line}:{column}: {}: {}", self.severity, self.message)?;
        }
        if let Some(snippet) = &self.snippet {
            // Tabs are shown as four spaces (as rustc does), so the caret lines up.
            let expand = |c: char| if c == '\t' { "    " } else { " " };
            let gutter = " ".repeat(self.line.to_string().len());
            let indent: String = snippet.text.chars().take(self.column - 1).map(expand).collect();
            let text = snippet.text.replace('\t', "    ");
            write!(f, "\n{gutter} |\n{} | {text}", self.line)?;
            write!(f, "\n{gutter} | {indent}{}", "^".repeat(snippet.width))?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// One diagnostic after another, each on its own line(s), with no trailing newline.
impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, diagnostic) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{diagnostic}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

/// A text with the offset of each of its lines, so that a position costs a binary search
/// instead of a scan from the start (a file with thousands of problems took seconds).
pub(crate) struct Lines<'a> {
    text: &'a str,
    /// Byte offset of each line's first character; the first is 0.
    starts: Vec<usize>,
}

impl<'a> Lines<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        let breaks = text.match_indices('\n').map(|(i, _)| i + 1);
        Lines { text, starts: std::iter::once(0).chain(breaks).collect() }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub(crate) fn position(&self, offset: usize) -> (usize, usize) {
        let offset = self.floor(offset);
        let index = self.index(offset);
        let column = self.text[self.starts[index]..offset].chars().count() + 1;
        (index + 1, column)
    }

    /// The byte offset of the start of the line `offset` is on.
    pub(crate) fn line_start(&self, offset: usize) -> usize {
        self.starts[self.index(self.floor(offset))]
    }

    /// The line `span` starts on, underlined from its start to its end or the line's end.
    pub(crate) fn snippet(&self, span: &Range<usize>) -> Snippet {
        let start = self.floor(span.start);
        let index = self.index(start);
        let line_end = self.starts.get(index + 1).map_or(self.text.len(), |&next| next - 1);
        let line = &self.text[self.starts[index]..line_end];
        let end = self.floor(span.end.clamp(start, line_end));
        let width = self.text[start..end].trim_end_matches('\r').chars().count();
        Snippet { text: line.trim_end_matches('\r').to_string(), width: width.max(1) }
    }

    /// The 0-based line of a byte offset.
    fn index(&self, offset: usize) -> usize {
        self.starts.partition_point(|&start| start <= offset) - 1
    }

    /// The nearest character boundary at or before `offset`, within the text.
    fn floor(&self, offset: usize) -> usize {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        offset
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(text: &str, span: Range<usize>) -> String {
        let lines = Lines::new(text);
        let (line, column) = lines.position(span.start);
        let snippet = Some(lines.snippet(&span));
        let severity = Severity::Error;
        let (message, hint) = ("bad".to_string(), Some("fix it".to_string()));
        let file = "x.toml".to_string();
        Diagnostic { file, line, column, severity, message, hint, snippet }.to_string()
    }

    #[test]
    fn positions_count_lines_and_characters_from_one() {
        let lines = Lines::new("ab\né\n\nxyz");
        let positions: Vec<_> = [0, 2, 3, 5, 6, 7, 9, 99].map(|o| lines.position(o)).to_vec();
        assert_eq!(positions, [(1, 1), (1, 3), (2, 1), (2, 2), (3, 1), (4, 1), (4, 3), (4, 4)]);
        assert_eq!(lines.position(4), (2, 1), "inside a character: its start");
    }

    #[test]
    fn the_line_is_shown_with_a_caret_under_the_span() {
        let text = "[hosts.db1]\naddress = \"a;b\"\n";
        assert_eq!(
            shown(text, 22..27),
            "x.toml:2:11: error: bad\n  |\n2 | address = \"a;b\"\n  |           ^^^^^\n  hint: fix it"
        );
    }

    #[test]
    fn a_span_over_several_lines_is_underlined_to_the_end_of_its_first() {
        let text = "# x\n[gtm]\r\nhost = 1\n";
        assert_eq!(
            shown(text, 4..20),
            "x.toml:2:1: error: bad\n  |\n2 | [gtm]\n  | ^^^^^\n  hint: fix it"
        );
        // An empty span, or one at the end of the text, still gets one caret.
        assert!(shown(text, 4..4).contains("\n  | ^\n"));
        assert!(shown("a = ", 4..4).ends_with("1 | a = \n  |     ^\n  hint: fix it"));
    }

    #[test]
    fn tabs_are_shown_as_four_spaces() {
        let text = "\tport = x\n";
        assert!(shown(text, 8..9).contains("1 |     port = x\n  |            ^\n"));
    }

    #[test]
    fn wide_line_numbers_widen_the_gutter() {
        let text = format!("{}a = b\n", "\n".repeat(9));
        assert!(
            shown(&text, 13..14)
                .starts_with("x.toml:10:5: error: bad\n   |\n10 | a = b\n   |     ^\n")
        );
    }
}
