//! Bytes as text a page can show: nothing raw, whatever the payload holds.

use std::fmt::Write as _;

/// How much of a payload a page shows.
pub(super) const SHOWN_BYTES: usize = 64 * 1024;

/// UTF-8 text as is, except control characters (other than newline and tab) as `\u{…}` and
/// invalid bytes as `\xNN`. HTML escaping is maud's, on top.
pub fn text(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\n' | '\t' => out.push(c),
                c if c.is_control() => {
                    let _ = write!(out, "\\u{{{:x}}}", c as u32);
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

/// Hex bytes, 16 per line, with offsets.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3 + bytes.len() / 16 * 8);
    for (i, line) in bytes.chunks(16).enumerate() {
        let _ = write!(out, "{:08x} ", i * 16);
        for b in line {
            let _ = write!(out, " {b:02x}");
        }
        out.push('\n');
    }
    out
}

/// Pretty JSON when the bytes parse as JSON, else [`text`].
pub(super) fn json(bytes: &[u8]) -> String {
    match serde_json::from_slice::<serde_json::Value>(bytes) {
        Ok(value) => serde_json::to_string_pretty(&value).unwrap_or_else(|_| text(bytes)),
        Err(_) => text(bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_and_control_bytes_are_escaped() {
        assert_eq!(
            text(b"ok\n\x00\x1b[31m\xff\xfe"),
            "ok\n\\u{0}\\u{1b}[31m\\xff\\xfe"
        );
        assert_eq!(hex(b"AB"), "00000000  41 42\n");
        assert_eq!(json(br#"{"a":1}"#), "{\n  \"a\": 1\n}");
        assert_eq!(json(b"\xff"), "\\xff");
    }
}
