//! Tab completion: what may come at the cursor, from the line alone and the session's words.
//! Pure, so it is tested without a terminal.

use std::path::Path;

use super::commands::COMMANDS;
use crate::stdlib;

const KEYWORDS: &[&str] = &["cell", "state", "output", "init", "let"];
const LET_NAMES: &[&str] = &["H", "D", "seed", "x"];

/// Completions of the word that ends at `pos` in `line`: where it starts, and the candidates
/// (sorted, unique). `words` are the session's own names ([`super::Session::vocabulary`]).
pub fn complete(line: &str, pos: usize, words: &[String]) -> (usize, Vec<String>) {
    let pos = pos.min(line.len());
    let before = &line[..pos];
    let first = before.split_whitespace().next().unwrap_or("");
    let in_first_word = !before.contains(char::is_whitespace);
    let word_start = |is_word: &dyn Fn(char) -> bool| {
        before.char_indices().rev().find(|&(_, c)| !is_word(c)).map_or(0, |(i, c)| i + c.len_utf8())
    };
    let mut out: Vec<String>;
    let start;
    if before.starts_with(':') && in_first_word {
        start = 0;
        out = COMMANDS.iter().map(|c| format!(":{}", c.0)).filter(|c| c.starts_with(before)).collect();
    } else if first == ":load" || first == ":save" {
        start = word_start(&|c: char| !c.is_whitespace());
        let word = &before[start..];
        out = paths(word);
        if first == ":load" {
            out.extend(stdlib::names().filter(|n| n.starts_with(word)).map(str::to_string));
        }
    } else if first == ":train" {
        start = word_start(&|c: char| !c.is_whitespace());
        let word = &before[start..];
        out = crate::tasks::TaskKind::ALL
            .iter()
            .map(|k| k.name())
            .filter(|t| t.starts_with(word))
            .map(String::from)
            .collect();
    } else {
        start = word_start(&|c: char| c.is_ascii_alphanumeric() || c == '_');
        let word = &before[start..];
        if word.is_empty() {
            return (start, vec![]);
        }
        // `cell NAME = BASE with { ... }`: the base is a cell name.
        let base_position = first == "cell" && before[..start].trim_end().ends_with('=');
        let fixed: Vec<&'static str> = if base_position {
            stdlib::names().collect()
        } else if first == "let" && in_second_word(before) {
            LET_NAMES.to_vec()
        } else {
            crate::syntax::builtin_names().chain(KEYWORDS.iter().copied()).collect()
        };
        let pool = fixed.into_iter().map(str::to_string).chain(words.iter().cloned());
        out = pool.filter(|w| w.starts_with(word) && w != word).collect();
    }
    out.sort();
    out.dedup();
    (start, out)
}

fn in_second_word(before: &str) -> bool {
    before.split_whitespace().count() <= 2 && !before.contains('=')
}

/// `.cell` files and directories whose path starts with `word`.
fn paths(word: &str) -> Vec<String> {
    let (dir, prefix) = match word.rfind('/') {
        Some(i) => (&word[..=i], &word[i + 1..]),
        None => ("", word),
    };
    let read = std::fs::read_dir(if dir.is_empty() { Path::new(".") } else { Path::new(dir) });
    let Ok(entries) = read else { return vec![] };
    let mut out = vec![];
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with(prefix) || (name.starts_with('.') && !prefix.starts_with('.')) {
            continue;
        }
        let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
        if is_dir {
            out.push(format!("{dir}{name}/"));
        } else if name.ends_with(".cell") {
            out.push(format!("{dir}{name}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(line: &str) -> (usize, Vec<String>) {
        complete(line, line.len(), &["z".to_string(), "W_xz".to_string()])
    }

    #[test]
    fn commands_cells_tasks_functions_and_names() {
        assert_eq!(c(":gr"), (0, vec![":grad".to_string(), ":gradcheck".to_string()]));
        assert!(c(":load gr").1.contains(&"gru".to_string()), "std names and paths in the working directory");
        assert_eq!(c(":load lstm_").1, ["lstm_b", "lstm_f", "lstm_i", "lstm_ln", "lstm_o"]);
        assert_eq!(c(":train mus").1.len(), 4);
        assert_eq!(c("h' = ta"), (5, vec!["tanh".to_string()]));
        assert_eq!(c("h' = sig").1, ["sigm", "sigmoid"]);
        assert_eq!(c("h' = W_").1, ["W_xz"]);
        assert_eq!(c("let s").1, ["seed"]);
        assert_eq!(c("cell mine = gr").1, ["gru", "gru_ln", "gru_torch"]);
        assert_eq!(c("h' = ").1, Vec::<String>::new());
    }
}
