//! A server-sent-events parser that accepts bytes split anywhere and never panics.

/// One event: its `event:` name (default `message`) and its joined `data:` lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub event: String,
    /// The data, lines joined with `\n`.
    pub data: String,
}

/// Why parsing stopped.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    /// One event grew past the cap.
    #[error("an event in the stream is larger than {0} bytes")]
    TooLarge(usize),
}

/// Incremental parser: feed it chunks, take complete events.
#[derive(Debug)]
pub struct Parser {
    buf: Vec<u8>,
    /// How much of `buf` is known to hold no newline: each byte is searched once, so a long
    /// line arriving in small chunks costs linear time.
    scanned: usize,
    /// Bytes searched for newlines so far (the linear-time test reads it).
    #[cfg(test)]
    searched: usize,
    event: String,
    data: Vec<String>,
    pending_bytes: usize,
    max_event: usize,
}

impl Default for Parser {
    fn default() -> Self {
        Parser::new(1024 * 1024)
    }
}

impl Parser {
    /// A parser that refuses events larger than `max_event` bytes.
    pub fn new(max_event: usize) -> Parser {
        Parser {
            buf: Vec::new(),
            scanned: 0,
            #[cfg(test)]
            searched: 0,
            event: String::new(),
            data: Vec::new(),
            pending_bytes: 0,
            max_event,
        }
    }

    /// Feed bytes; returns the events completed by them.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<Event>, SseError> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        let mut start = 0;
        let mut from = self.scanned;
        loop {
            let found = self.buf[from..].iter().position(|&b| b == b'\n');
            #[cfg(test)]
            {
                self.searched += found.map_or(self.buf.len() - from, |p| p + 1);
            }
            let Some(pos) = found else { break };
            let end = from + pos;
            let mut line = &self.buf[start..end];
            if line.last() == Some(&b'\r') {
                line = &line[..line.len() - 1];
            }
            let line = String::from_utf8_lossy(line).into_owned();
            start = end + 1;
            from = start;
            if let Some(ev) = self.line(&line)? {
                out.push(ev);
            }
        }
        self.buf.drain(..start);
        self.scanned = self.buf.len();
        if self.buf.len() + self.pending_bytes > self.max_event {
            return Err(SseError::TooLarge(self.max_event));
        }
        Ok(out)
    }

    /// Flush at end of stream: a final event without its blank line still counts.
    pub fn finish(&mut self) -> Result<Option<Event>, SseError> {
        if !self.buf.is_empty() {
            self.scanned = 0;
            let rest = String::from_utf8_lossy(&std::mem::take(&mut self.buf)).into_owned();
            let rest = rest.trim_end_matches('\r').to_string();
            if let Some(ev) = self.line(&rest)? {
                return Ok(Some(ev));
            }
        }
        Ok(self.dispatch())
    }

    fn line(&mut self, line: &str) -> Result<Option<Event>, SseError> {
        if line.is_empty() {
            return Ok(self.dispatch());
        }
        if line.starts_with(':') {
            return Ok(None);
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => self.event = value.to_string(),
            "data" => {
                self.pending_bytes += value.len() + 1;
                if self.pending_bytes > self.max_event {
                    return Err(SseError::TooLarge(self.max_event));
                }
                self.data.push(value.to_string());
            }
            _ => {}
        }
        Ok(None)
    }

    fn dispatch(&mut self) -> Option<Event> {
        let event = std::mem::take(&mut self.event);
        let data = std::mem::take(&mut self.data);
        self.pending_bytes = 0;
        if data.is_empty() && event.is_empty() {
            return None;
        }
        Some(Event {
            event: if event.is_empty() {
                "message".into()
            } else {
                event
            },
            data: data.join("\n"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &str = "event: message_start\ndata: {\"a\":1}\n\n: comment\nevent: ping\ndata: {}\r\n\r\ndata: line1\ndata: line2\n\n";

    fn all(chunks: &[&[u8]]) -> Vec<Event> {
        let mut p = Parser::default();
        let mut out = Vec::new();
        for c in chunks {
            out.extend(p.push(c).unwrap());
        }
        out.extend(p.finish().unwrap());
        out
    }

    #[test]
    fn parses_events_names_and_multiline_data() {
        let ev = all(&[STREAM.as_bytes()]);
        assert_eq!(ev.len(), 3);
        assert_eq!(
            ev[0],
            Event {
                event: "message_start".into(),
                data: "{\"a\":1}".into()
            }
        );
        assert_eq!(ev[1].event, "ping");
        assert_eq!(
            ev[2],
            Event {
                event: "message".into(),
                data: "line1\nline2".into()
            }
        );
    }

    #[test]
    fn any_split_gives_the_same_events() {
        let whole = all(&[STREAM.as_bytes()]);
        let b = STREAM.as_bytes();
        for i in 0..b.len() {
            for j in i..b.len() {
                assert_eq!(
                    all(&[&b[..i], &b[i..j], &b[j..]]),
                    whole,
                    "split at {i},{j}"
                );
            }
        }
    }

    #[test]
    fn oversized_events_are_an_error() {
        let mut p = Parser::new(64);
        let big = format!("data: {}\n", "x".repeat(100));
        assert_eq!(p.push(big.as_bytes()), Err(SseError::TooLarge(64)));
        let mut p = Parser::new(64);
        assert!(
            p.push("x".repeat(100).as_bytes()).is_err(),
            "an endless line is capped too"
        );
    }

    /// Counts the bytes the parser examines: a 768 KiB line fed in 64-byte chunks must be
    /// searched once, not once per chunk (which was 12 288 passes over a growing buffer).
    #[test]
    fn regress_long_line_in_small_chunks_is_scanned_once() {
        let line = format!("data: {}\n\n", "x".repeat(768 * 1024));
        let mut p = Parser::default();
        let mut events = Vec::new();
        for chunk in line.as_bytes().chunks(64) {
            events.extend(p.push(chunk).unwrap());
        }
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].data.len(), 768 * 1024);
        assert!(
            p.searched <= line.len(),
            "searched {} bytes for a {} byte stream",
            p.searched,
            line.len()
        );
    }

    #[test]
    fn a_truncated_stream_flushes_what_it_has() {
        let mut p = Parser::default();
        assert!(p.push(b"event: error\ndata: {\"x\":1}").unwrap().is_empty());
        assert_eq!(p.finish().unwrap().unwrap().event, "error");
    }
}
