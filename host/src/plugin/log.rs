//! Plugin log lines on their way into the host's log: control characters escaped, so that a
//! plugin can never start a line of its own; each line capped in size; and each plugin's lines
//! rate limited, so that one plugin cannot fill the disk or drown the others' lines.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Instant;

use prometheus_client::metrics::counter::Counter;

/// Longest plugin log line, in bytes of its text before escaping.
pub(crate) const MAX_LINE_BYTES: usize = 4096;
/// Lines one plugin may write in a burst.
pub(crate) const BURST_LINES: u32 = 200;
/// Lines one plugin may write per second, after a burst.
pub(crate) const LINES_PER_SECOND: u32 = 50;

/// `text` with every control character (newlines, carriage returns, escapes, ...) written as a
/// Rust escape (`\n`, `\u{1b}`), cut to `max_bytes` of input on a character boundary (marked
/// with `...`). Borrowed when nothing needs escaping or cutting.
pub(crate) fn escape(text: &str, max_bytes: usize) -> Cow<'_, str> {
    let cut = if text.len() > max_bytes {
        let mut end = max_bytes;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        Some(end)
    } else {
        None
    };
    let kept = &text[..cut.unwrap_or(text.len())];
    if cut.is_none() && !kept.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut escaped = String::with_capacity(kept.len() + 16);
    for c in kept.chars() {
        if c.is_control() {
            let _ = write!(escaped, "{}", c.escape_default());
        } else {
            escaped.push(c);
        }
    }
    if let Some(end) = cut {
        let _ = write!(escaped, " ... ({} more bytes)", text.len() - end);
    }
    Cow::Owned(escaped)
}

/// One plugin's log allowance: a token bucket of lines, and the counter of dropped lines.
#[derive(Debug)]
pub(crate) struct GuestLog {
    bucket: Mutex<Bucket>,
    dropped: Counter,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
    suppressed: u64,
}

/// Whether a line may be written, and how many were dropped before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LineVerdict {
    /// Write it; `suppressed` lines were dropped since the last written one.
    Write { suppressed: u64 },
    /// Drop it.
    Drop,
}

impl GuestLog {
    /// A full bucket; dropped lines count on `dropped`.
    pub(crate) fn new(dropped: Counter) -> Self {
        Self {
            bucket: Mutex::new(Bucket {
                tokens: f64::from(BURST_LINES),
                updated: Instant::now(),
                suppressed: 0,
            }),
            dropped,
        }
    }

    /// Takes a line's token at `now`.
    pub(crate) fn admit(&self, now: Instant) -> LineVerdict {
        let mut bucket = self
            .bucket
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let elapsed = now.saturating_duration_since(bucket.updated);
        bucket.updated = now;
        bucket.tokens = (bucket.tokens + elapsed.as_secs_f64() * f64::from(LINES_PER_SECOND))
            .min(f64::from(BURST_LINES));
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            let suppressed = std::mem::take(&mut bucket.suppressed);
            LineVerdict::Write { suppressed }
        } else {
            bucket.suppressed += 1;
            self.dropped.inc();
            LineVerdict::Drop
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_newline_cannot_start_a_forged_line() {
        let forged = "ok\n2026-12-03T10:00:00Z  INFO wasm_reconciler: plugins loaded";
        let escaped = escape(forged, MAX_LINE_BYTES);
        assert!(!escaped.contains('\n'));
        assert!(escaped.starts_with("ok\\n2026"), "{escaped}");
        assert_eq!(escape("\u{1b}[31mred\r", 100), "\\u{1b}[31mred\\r");
    }

    #[test]
    fn plain_text_is_borrowed_and_long_text_is_cut_on_a_character_boundary() {
        assert!(matches!(escape("plain", 10), Cow::Borrowed("plain")));
        let cut = escape("ééééé", 3);
        assert_eq!(cut, "é ... (8 more bytes)");
    }

    #[test]
    fn lines_past_the_burst_are_dropped_and_counted_until_tokens_come_back() {
        let dropped = Counter::default();
        let log = GuestLog::new(dropped.clone());
        let start = Instant::now();
        for _ in 0..BURST_LINES {
            assert!(matches!(log.admit(start), LineVerdict::Write { .. }));
        }
        assert_eq!(log.admit(start), LineVerdict::Drop);
        assert_eq!(log.admit(start), LineVerdict::Drop);
        let later = start + Duration::from_millis(1000 / u64::from(LINES_PER_SECOND) + 1);
        assert_eq!(log.admit(later), LineVerdict::Write { suppressed: 2 });
        assert_eq!(dropped.get(), 2);
    }
}
