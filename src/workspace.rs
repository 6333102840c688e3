//! A session's sources: the standard library plus whatever files a command loads, parsed and checked.
//!
//! The workspace owns the [`Sources`] every span refers to and the parsed std cells that derived
//! cells may name. It does no I/O: callers hand it text.

use crate::check::{self, Cell};
use crate::diag::{Diagnostic, FileId, Sources};
use crate::stdlib;
use crate::syntax::{self, ast};

/// Sources and the standard library, each std file parsed on first need (a cell derived from
/// it): compiling a cell must take milliseconds, and parsing all of std is over one.
pub struct Workspace {
    pub sources: Sources,
    std_defs: std::cell::OnceCell<Vec<ast::CellDef>>,
    std_files: Vec<(&'static str, FileId)>,
    /// Each std file's cells, parsed on first need (index: `std_files`).
    std_parsed: Vec<std::cell::OnceCell<Vec<ast::CellDef>>>,
}

/// A parsed and checked file.
#[derive(Debug)]
pub struct Checked {
    pub file: FileId,
    pub ast: ast::File,
    /// The cells without errors, in source order.
    pub cells: Vec<Cell>,
    /// Syntax and check diagnostics, errors and warnings, in source order.
    pub diagnostics: Vec<Diagnostic>,
}

impl Checked {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

impl Default for Workspace {
    fn default() -> Self {
        Workspace::new()
    }
}

impl Workspace {
    /// A workspace with the standard library's sources.
    pub fn new() -> Workspace {
        let mut sources = Sources::new();
        let std_files =
            stdlib::STD_CELLS.iter().map(|(name, text)| (*name, sources.add(stdlib::file_name(name), *text))).collect();
        let std_parsed = (0..stdlib::STD_CELLS.len()).map(|_| std::cell::OnceCell::new()).collect();
        Workspace { sources, std_defs: std::cell::OnceCell::new(), std_files, std_parsed }
    }

    /// The parsed standard cells.
    pub fn std_defs(&self) -> &[ast::CellDef] {
        self.std_defs.get_or_init(|| (0..self.std_files.len()).flat_map(|i| self.std_file_defs(i).to_vec()).collect())
    }

    /// The cells of std file `i`, parsed once.
    fn std_file_defs(&self, i: usize) -> &[ast::CellDef] {
        self.std_parsed[i].get_or_init(|| {
            let (name, file) = self.std_files[i];
            let (parsed, diags) = syntax::parse(file, &self.sources.get(file).text);
            debug_assert!(diags.is_empty(), "std/{name}.cell has syntax errors: {diags:?}");
            parsed.cells
        })
    }

    /// The std cells that `cells` may derive from: the std files named by their bases, and by
    /// those cells' bases in turn (a std file is named after its cell).
    fn std_bases(&self, cells: &[ast::CellDef]) -> Vec<ast::CellDef> {
        let mut wanted: Vec<&str> = cells.iter().filter_map(|c| c.base.as_ref().map(|b| b.name.as_str())).collect();
        let mut seen = vec![false; self.std_files.len()];
        let mut out = vec![];
        while let Some(name) = wanted.pop() {
            let Some(i) = self.std_files.iter().position(|(n, _)| *n == name) else {
                if cells.iter().any(|c| c.name.name == name) {
                    continue; // a base in the same file
                }
                // An unknown base: the check's "did you mean" looks through every std cell.
                return self.std_defs().to_vec();
            };
            if std::mem::replace(&mut seen[i], true) {
                continue;
            }
            let defs = self.std_file_defs(i);
            wanted.extend(defs.iter().filter_map(|c| c.base.as_ref().map(|b| b.name.as_str())));
            out.extend(defs.iter().cloned());
        }
        out
    }

    /// The file of standard cell `name`, if there is one.
    pub fn std_file(&self, name: &str) -> Option<FileId> {
        self.std_files.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
    }

    /// Adds a source text under a display name.
    pub fn add(&mut self, name: impl Into<String>, text: &str) -> FileId {
        self.sources.add(name, text)
    }

    /// Parses and checks one file.
    pub fn check(&self, file: FileId) -> Checked {
        let text = self.sources.get(file).text.clone();
        let (ast, mut diagnostics) = syntax::parse(file, &text);
        // Only a cell with a base can refer to the standard library, and only to the cells it
        // names (directly or through their bases).
        let std_defs = self.std_bases(&ast.cells);
        let (cells, check_diags) = check::check_file(&ast, &std_defs);
        diagnostics.extend(check_diags);
        diagnostics.sort_by_key(|d| d.primary_span().map(|s| (s.file != file, s.file, s.start)));
        Checked { file, ast, cells, diagnostics }
    }

    /// Checks a standard cell by name.
    pub fn check_std(&self, name: &str) -> Option<Checked> {
        self.std_file(name).map(|f| self.check(f))
    }
}

/// The cell a run trains: its name and the text of the file that defines it.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CellSource {
    pub name: String,
    pub file: String,
    pub text: String,
}

impl CellSource {
    /// Parses and checks the saved text again and picks the cell.
    pub fn checked(&self) -> Result<crate::check::Cell, String> {
        let mut ws = Workspace::new();
        let file = ws.add(self.file.clone(), &self.text);
        let checked = ws.check(file);
        if checked.has_errors() {
            return Err(format!("the saved source of `{}` no longer checks", self.name));
        }
        checked
            .cells
            .into_iter()
            .find(|c| c.name == self.name)
            .ok_or_else(|| format!("the saved source has no cell `{}`", self.name))
    }
}
