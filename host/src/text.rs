//! Untrusted text on its way to a person: strings from servers, plugins and files are made safe
//! to print here, in one place, before any command shows them.
//!
//! A hostile portal or plugin can send escape sequences that clear the screen, forge lines or
//! set the terminal title, and bidirectional overrides that reorder what a reader sees. Every
//! server- or plugin-provided string passes through [`line`] (one line, clipped) or [`text`]
//! (streamed chat text, newlines kept) before it is printed or stored.

/// Whether `c` may reach a terminal: no C0/C1 controls (ESC, BEL, CR, DEL, CSI, …) and no
/// bidirectional or zero-width formatting characters.
fn printable(c: char) -> bool {
    !(c.is_control()
        || matches!(c,
            '\u{200B}'..='\u{200F}'   // zero-width and directional marks
            | '\u{202A}'..='\u{202E}' // bidirectional embeddings and overrides
            | '\u{2066}'..='\u{2069}' // bidirectional isolates
            | '\u{FEFF}'))
}

/// One safe line of at most `max` characters: control characters become spaces, runs of
/// whitespace collapse to one space, and a clipped line ends with `…`.
pub fn line(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max * 4));
    let mut count = 0;
    let mut pending_space = false;
    for c in s.chars() {
        let c = if printable(c) { c } else { ' ' };
        if c.is_whitespace() {
            pending_space = count > 0;
            continue;
        }
        if pending_space {
            if count + 1 >= max {
                out.push('…');
                return out;
            }
            out.push(' ');
            count += 1;
            pending_space = false;
        }
        if count >= max {
            out.push('…');
            return out;
        }
        out.push(c);
        count += 1;
    }
    out
}

/// Text that may span lines (a streamed chat answer): newlines and tabs are kept, every other
/// control or formatting character is dropped.
pub fn text(s: &str) -> std::borrow::Cow<'_, str> {
    if s.chars().all(|c| c == '\n' || c == '\t' || printable(c)) {
        return std::borrow::Cow::Borrowed(s);
    }
    std::borrow::Cow::Owned(
        s.chars()
            .filter(|&c| c == '\n' || c == '\t' || printable(c))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_cannot_reach_the_terminal() {
        let hostile = "ABCD-1234\x1b[2J\x1b]0;pwned\x07\r\nfix: run rm -rf ~\u{9b}31m";
        let out = line(hostile, 200);
        assert!(!out.chars().any(|c| c.is_control()), "{out:?}");
        assert!(!out.contains('\n'));
        assert!(out.starts_with("ABCD-1234"), "{out:?}");
    }

    #[test]
    fn bidi_overrides_are_removed() {
        assert_eq!(line("abc\u{202E}fed", 20), "abc fed");
        assert_eq!(text("abc\u{202E}fed"), "abcfed");
    }

    #[test]
    fn lines_are_clipped_and_collapsed() {
        assert_eq!(line("  a \n\n b  ", 10), "a b");
        assert_eq!(line("abcdef", 3), "abc…");
        assert_eq!(line("ab cdef", 3), "ab…");
        assert_eq!(line("", 3), "");
    }

    #[test]
    fn chat_text_keeps_newlines_and_drops_escapes() {
        assert_eq!(text("one\ntwo\tthree"), "one\ntwo\tthree");
        assert_eq!(text("red\x1b[31m\rtext"), "red[31mtext");
    }
}
