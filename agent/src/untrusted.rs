//! Text from outside (log lines, pushed bodies, request paths, ids, names
//! from the store) made safe to write into the agent's own logs.
//!
//! A log line holding untrusted text as it came could forge other log lines
//! (a `\n` followed by a fake `audit:` entry), move the cursor or recolour a
//! terminal (escape sequences), or flood the log (a megabyte "line"). Every
//! place that logs untrusted text wraps it in [`Escaped`] (or
//! [`EscapedBytes`]): control characters become visible escapes (`\n`,
//! `\u{1b}`) and the text is cut to [`MAX_LOGGED_CHARS`] characters, with the
//! original length said.
//!
//! **Architecture invariant:** a leaf: this module imports nothing of the crate.

use std::fmt;

/// Characters of untrusted text written to a log line at most.
pub const MAX_LOGGED_CHARS: usize = 256;

/// Untrusted text, escaped and cut when displayed.
#[derive(Debug, Clone, Copy)]
pub struct Escaped<'a>(pub &'a str);

/// Untrusted bytes (not necessarily UTF-8), escaped and cut when displayed.
#[derive(Debug, Clone, Copy)]
pub struct EscapedBytes<'a>(pub &'a [u8]);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_escaped(f, self.0.chars(), self.0.chars().count())
    }
}

impl fmt::Display for EscapedBytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Only the part that can be shown is decoded.
        let head = &self.0[..self.0.len().min(MAX_LOGGED_CHARS * 4)];
        let text = String::from_utf8_lossy(head);
        let total = if head.len() == self.0.len() { text.chars().count() } else { usize::MAX };
        write_escaped(f, text.chars(), total)?;
        if total == usize::MAX {
            write!(f, " ({} bytes)", self.0.len())?;
        }
        Ok(())
    }
}

fn write_escaped(f: &mut fmt::Formatter<'_>, chars: impl Iterator<Item = char>, total: usize) -> fmt::Result {
    use fmt::Write as _;
    for (written, c) in chars.enumerate() {
        if written == MAX_LOGGED_CHARS {
            f.write_char('…')?;
            if total != usize::MAX {
                write!(f, " ({total} chars)")?;
            }
            return Ok(());
        }
        match c {
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            '\\' => f.write_str("\\\\")?,
            // C0 and C1 controls, DEL, and the bidirectional overrides that
            // make a terminal show text in another order than it is.
            c if c.is_control() || ('\u{202a}'..='\u{202e}').contains(&c) || ('\u{2066}'..='\u{2069}').contains(&c) => {
                write!(f, "\\u{{{:x}}}", c as u32)?
            }
            c => f.write_char(c)?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_cannot_forge_lines_or_drive_a_terminal() {
        let forged = "ok\n2026-12-04T00:00:00Z INFO audit: api call actor=admin\x1b[2J\r\t\\";
        let shown = Escaped(forged).to_string();
        assert_eq!(shown, "ok\\n2026-12-04T00:00:00Z INFO audit: api call actor=admin\\u{1b}[2J\\r\\t\\\\");
        assert!(!shown.contains('\n') && !shown.contains('\x1b'));
        assert_eq!(Escaped("a\u{202e}b\u{7f}").to_string(), "a\\u{202e}b\\u{7f}");
        assert_eq!(Escaped("café ✓").to_string(), "café ✓");
    }

    #[test]
    fn long_text_is_cut_and_says_how_long_it_was() {
        let long = "x".repeat(10_000);
        let shown = Escaped(&long).to_string();
        assert!(shown.starts_with(&"x".repeat(MAX_LOGGED_CHARS)));
        assert!(shown.ends_with("… (10000 chars)"), "{}", &shown[MAX_LOGGED_CHARS..]);
        let bytes = vec![b'y'; 1 << 20];
        let shown = EscapedBytes(&bytes).to_string();
        assert!(shown.len() < MAX_LOGGED_CHARS + 40, "{}", shown.len());
        assert!(shown.ends_with("… (1048576 bytes)"), "{shown}");
        assert_eq!(EscapedBytes(b"a\xffb\n").to_string(), "a\u{fffd}b\\n");
    }
}
