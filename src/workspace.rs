//! A session's sources: the standard library plus whatever files a command loads, parsed and checked.
//!
//! The workspace owns the [`Sources`] every span refers to and the parsed std cells that derived
//! cells may name. It does no I/O: callers hand it text.

use crate::check::{self, Cell};
use crate::diag::{Diagnostic, FileId, Sources};
use crate::stdlib;
use crate::syntax::{self, ast};

/// Sources and the standard library, parsed on first need (a cell with a base): compiling a
/// cell must take milliseconds, and parsing all of std is over one.
pub struct Workspace {
    pub sources: Sources,
    std_defs: std::cell::OnceCell<Vec<ast::CellDef>>,
    std_files: Vec<(&'static str, FileId)>,
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
        Workspace { sources, std_defs: std::cell::OnceCell::new(), std_files }
    }

    /// The parsed standard cells.
    pub fn std_defs(&self) -> &[ast::CellDef] {
        self.std_defs.get_or_init(|| {
            let mut defs = vec![];
            for &(name, file) in &self.std_files {
                let (parsed, diags) = syntax::parse(file, &self.sources.get(file).text);
                debug_assert!(diags.is_empty(), "std/{name}.cell has syntax errors: {diags:?}");
                defs.extend(parsed.cells);
            }
            defs
        })
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
        // Only a cell with a base can refer to the standard library.
        let std_defs = if ast.cells.iter().any(|c| c.base.is_some()) { self.std_defs() } else { &[] };
        let (cells, check_diags) = check::check_file(&ast, std_defs);
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
