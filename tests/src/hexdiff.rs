//! A readable side-by-side hex diff for packet fixtures.

use std::fmt::Write as _;

const ROW: usize = 16;

/// Renders `expected` and `actual` row by row; rows that differ are marked
/// and the differing bytes underlined with `^^`.
pub fn hexdiff(expected: &[u8], actual: &[u8]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "expected {} bytes, got {} bytes ('-' expected, '+' actual)",
        expected.len(),
        actual.len()
    );
    let rows = expected.len().max(actual.len()).div_ceil(ROW);
    for row in 0..rows {
        let range = row * ROW..(row + 1) * ROW;
        let want = slice(expected, range.clone());
        let got = slice(actual, range);
        if want == got {
            let _ = writeln!(out, "  {:04x}  {}", row * ROW, hex(want));
            continue;
        }
        let _ = writeln!(out, "- {:04x}  {}", row * ROW, hex(want));
        let _ = writeln!(out, "+ {:04x}  {}", row * ROW, hex(got));
        let marks: String = (0..ROW)
            .map(|i| {
                if want.get(i) == got.get(i) {
                    "   "
                } else {
                    "^^ "
                }
            })
            .collect();
        let _ = writeln!(out, "        {}", marks.trim_end());
    }
    out
}

fn slice(bytes: &[u8], range: std::ops::Range<usize>) -> &[u8] {
    let end = range.end.min(bytes.len());
    bytes.get(range.start.min(end)..end).unwrap_or_default()
}

fn hex(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len() * 3);
    for b in bytes {
        let _ = write!(text, "{b:02x} ");
    }
    text.truncate(text.trim_end().len());
    text
}

#[cfg(test)]
mod tests {
    use super::hexdiff;

    #[test]
    fn marks_only_the_rows_and_bytes_that_differ() {
        let want: Vec<u8> = (0..20).collect();
        let mut got = want.clone();
        got[17] = 0xff;
        let diff = hexdiff(&want, &got);
        assert!(diff.contains("  0000  00 01"), "{diff}");
        assert!(diff.contains("- 0010  10 11 12 13"), "{diff}");
        assert!(diff.contains("+ 0010  10 ff 12 13"), "{diff}");
        assert!(diff.contains("           ^^"), "{diff}");
    }

    #[test]
    fn shows_a_length_mismatch() {
        let diff = hexdiff(&[1, 2, 3], &[1, 2]);
        assert!(diff.contains("expected 3 bytes, got 2 bytes"), "{diff}");
        assert!(diff.contains("- 0000  01 02 03"), "{diff}");
    }
}
