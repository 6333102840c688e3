//! Limits checked before parsing, so that no input can exhaust memory or the stack.
//!
//! The parser and every later stage recurse over parenthesis nesting; capping it here keeps all of
//! them within a small, fixed stack, whatever the input.

use crate::diag::{Diagnostic, FileId, Span};

/// Largest `.cell` source accepted. Real cells are a few hundred bytes.
pub const MAX_SOURCE_BYTES: usize = 1 << 20;

/// Deepest parenthesis nesting accepted. Real cells nest three or four levels.
pub const MAX_NESTING: usize = 64;

/// Decodes a file's bytes as UTF-8 and checks its size, with a one-line reason on failure.
pub fn decode(bytes: &[u8]) -> Result<&str, String> {
    if bytes.len() > MAX_SOURCE_BYTES {
        return Err(format!(
            "file is too large for a cell file ({} bytes; the limit is {} bytes)",
            bytes.len(),
            MAX_SOURCE_BYTES
        ));
    }
    std::str::from_utf8(bytes).map_err(|e| {
        let at = e.valid_up_to();
        let line = bytes[..at].iter().filter(|&&b| b == b'\n').count() + 1;
        let col = at - bytes[..at].iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1) + 1;
        format!("file is not valid UTF-8: invalid byte 0x{:02x} at line {line}, column {col}", bytes[at])
    })
}

/// Checks nesting depth; returns an error pointing at the first parenthesis too deep.
pub fn check_nesting(file: FileId, text: &str, offset: usize) -> Result<(), Diagnostic> {
    let mut depth = 0usize;
    let mut in_comment = false;
    let bytes = text.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'\n' => in_comment = false,
            _ if in_comment => {}
            b'/' if bytes.get(i + 1) == Some(&b'/') => in_comment = true,
            b'(' => {
                depth += 1;
                if depth > MAX_NESTING {
                    let at = offset + i;
                    return Err(Diagnostic::error(
                        "cellc::too_deep",
                        format!("parentheses nest more than {MAX_NESTING} levels deep"),
                    )
                    .label(Span::new(file, at, at + 1), "this one is too deep")
                    .help("name intermediate values with equations (`a = ...`) instead of nesting"));
                }
            }
            b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_non_utf8_with_position() {
        let err = decode(b"cell a {\n  \xff }").unwrap_err();
        assert_eq!(err, "file is not valid UTF-8: invalid byte 0xff at line 2, column 3");
    }

    #[test]
    fn rejects_huge_files() {
        assert!(decode(&vec![b' '; MAX_SOURCE_BYTES + 1]).unwrap_err().contains("too large"));
    }

    #[test]
    fn nesting_limit_ignores_comments() {
        let deep = "(".repeat(MAX_NESTING + 1);
        assert!(check_nesting(FileId(0), &deep, 0).is_err());
        assert!(check_nesting(FileId(0), &format!("// {deep}\n"), 0).is_ok());
    }
}
