//! Source files, spans and user-facing diagnostics, rendered with miette.
//!
//! Every stage that can blame user text returns [`Diagnostic`]s; only the CLI decides how to print them.
//! A diagnostic's labels may point into several files (a derived cell and its base); the primary
//! label's file is the report's source and labels elsewhere become nested reports.

use std::fmt;
use std::sync::Arc;

/// Index of a file in a [`Sources`] map.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct FileId(pub u32);

/// A byte range in one source file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Span {
    pub file: FileId,
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub fn new(file: FileId, start: usize, end: usize) -> Span {
        Span { file, start: start as u32, end: end as u32 }
    }

    /// The smallest span covering both (they must be in the same file).
    pub fn to(self, other: Span) -> Span {
        Span { file: self.file, start: self.start.min(other.start), end: self.end.max(other.end) }
    }

    pub fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }
}

/// One source text with the name it is reported under.
#[derive(Clone, Debug)]
pub struct SourceFile {
    pub name: String,
    pub text: Arc<str>,
}

/// All source files a run has loaded; spans refer into it by [`FileId`].
#[derive(Clone, Debug, Default)]
pub struct Sources {
    files: Vec<SourceFile>,
}

impl Sources {
    pub fn new() -> Sources {
        Sources::default()
    }

    pub fn add(&mut self, name: impl Into<String>, text: impl Into<Arc<str>>) -> FileId {
        self.files.push(SourceFile { name: name.into(), text: text.into() });
        FileId(self.files.len() as u32 - 1)
    }

    pub fn get(&self, id: FileId) -> &SourceFile {
        &self.files[id.0 as usize]
    }

    /// The text a span covers.
    pub fn slice(&self, span: Span) -> &str {
        self.get(span.file).text.get(span.range()).unwrap_or("")
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, file: FileId, offset: usize) -> (usize, usize) {
        let text = &self.get(file).text;
        let offset = offset.min(text.len());
        let before = &text[..floor_char_boundary(text, offset)];
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, col)
    }

    /// `file:line:col` of the start of a span, for one-line messages.
    pub fn location(&self, span: Span) -> String {
        let (line, col) = self.line_col(span.file, span.start as usize);
        format!("{}:{line}:{col}", self.get(span.file).name)
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// How bad a diagnostic is. Errors stop the pipeline; warnings do not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Error,
}

/// A labelled span. The first label of a diagnostic is the primary one.
#[derive(Clone, Debug, PartialEq)]
pub struct Label {
    pub span: Span,
    pub text: String,
}

/// A problem in user input, with everything needed to point at it.
#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    pub severity: Severity,
    /// A stable code such as `cellc::cycle`, so tools and docs can refer to it.
    pub code: &'static str,
    pub message: String,
    pub labels: Vec<Label>,
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn error(code: &'static str, message: impl Into<String>) -> Diagnostic {
        Diagnostic { severity: Severity::Error, code, message: message.into(), labels: vec![], help: None }
    }

    pub fn warning(code: &'static str, message: impl Into<String>) -> Diagnostic {
        Diagnostic { severity: Severity::Warning, ..Diagnostic::error(code, message) }
    }

    /// Adds a label; the first one added is the primary label.
    pub fn label(mut self, span: Span, text: impl Into<String>) -> Diagnostic {
        self.labels.push(Label { span, text: text.into() });
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    pub fn primary_span(&self) -> Option<Span> {
        self.labels.first().map(|l| l.span)
    }

    /// A one-line form, `file:line:col: error[code]: message`, for logs and `--json`.
    pub fn one_line(&self, sources: &Sources) -> String {
        let place = self.primary_span().map(|s| format!("{}: ", sources.location(s))).unwrap_or_default();
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        format!("{place}{sev}[{}]: {}", self.code, self.message)
    }
}

/// How to draw reports: the CLI uses colour on terminals; goldens use a fixed plain style.
#[derive(Clone, Copy, Debug)]
pub struct RenderStyle {
    pub color: bool,
    pub unicode: bool,
    pub width: usize,
}

impl RenderStyle {
    /// Fixed width, no colour: the form golden tests compare.
    pub const PLAIN: RenderStyle = RenderStyle { color: false, unicode: true, width: 80 };
}

/// Renders one diagnostic as a miette report.
pub fn render(diag: &Diagnostic, sources: &Sources, style: RenderStyle) -> String {
    use miette::{GraphicalReportHandler, GraphicalTheme, ThemeCharacters, ThemeStyles};
    let theme = GraphicalTheme {
        characters: if style.unicode { ThemeCharacters::unicode() } else { ThemeCharacters::ascii() },
        styles: if style.color { ThemeStyles::rgb() } else { ThemeStyles::none() },
    };
    let handler = GraphicalReportHandler::new_themed(theme)
        .with_width(style.width)
        .with_links(false)
        .with_show_related_as_nested(true);
    let report = MietteReport::new(diag, sources);
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = handler.render_report(&mut out, &report);
    out
}

/// Renders many diagnostics, separated by blank lines, in the order given.
pub fn render_all(diags: &[Diagnostic], sources: &Sources, style: RenderStyle) -> String {
    diags.iter().map(|d| render(d, sources, style)).collect::<Vec<_>>().join("\n")
}

/// Adapts a [`Diagnostic`] to miette: one source file per report, labels elsewhere nested.
struct MietteReport {
    severity: Severity,
    code: Option<&'static str>,
    message: String,
    help: Option<String>,
    source: Option<miette::NamedSource<Arc<str>>>,
    labels: Vec<miette::LabeledSpan>,
    related: Vec<MietteReport>,
}

impl MietteReport {
    fn new(diag: &Diagnostic, sources: &Sources) -> MietteReport {
        let primary_file = diag.primary_span().map(|s| s.file);
        let mut report = MietteReport {
            severity: diag.severity,
            code: Some(diag.code),
            message: diag.message.clone(),
            help: diag.help.clone(),
            source: primary_file.map(|f| named_source(sources, f)),
            labels: vec![],
            related: vec![],
        };
        for (i, label) in diag.labels.iter().enumerate() {
            let labeled = labeled_span(label, i == 0);
            if Some(label.span.file) == primary_file {
                report.labels.push(labeled);
            } else {
                report.related.push(MietteReport {
                    severity: diag.severity,
                    code: None,
                    message: format!("{} (in {})", label.text, sources.get(label.span.file).name),
                    help: None,
                    source: Some(named_source(sources, label.span.file)),
                    labels: vec![labeled],
                    related: vec![],
                });
            }
        }
        report
    }
}

fn named_source(sources: &Sources, file: FileId) -> miette::NamedSource<Arc<str>> {
    let f = sources.get(file);
    miette::NamedSource::new(f.name.clone(), f.text.clone())
}

fn labeled_span(label: &Label, primary: bool) -> miette::LabeledSpan {
    let text = (!label.text.is_empty()).then(|| label.text.clone());
    let span =
        miette::SourceSpan::new((label.span.start as usize).into(), (label.span.end - label.span.start) as usize);
    if primary {
        miette::LabeledSpan::new_primary_with_span(text, span)
    } else {
        miette::LabeledSpan::new_with_span(text, span)
    }
}

impl fmt::Debug for MietteReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Display for MietteReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for MietteReport {}

impl miette::Diagnostic for MietteReport {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.code.map(|c| Box::new(c) as Box<dyn fmt::Display>)
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help.as_ref().map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.source.as_ref().map(|s| s as &dyn miette::SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        if self.labels.is_empty() { None } else { Some(Box::new(self.labels.iter().cloned())) }
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn miette::Diagnostic> + 'a>> {
        if self.related.is_empty() {
            None
        } else {
            Some(Box::new(self.related.iter().map(|r| r as &dyn miette::Diagnostic)))
        }
    }
}

/// Edit distance counting a swap of neighbours as one edit (`tahn` is one from `tanh`), for
/// "did you mean" suggestions.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

/// The candidate closest to `name`, if it is close enough to be a plausible typo.
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    // One edit in three characters; very short names are too close to everything to suggest.
    let len = name.chars().count();
    let limit = if len < 3 { 0 } else { (len / 3).max(1) };
    candidates
        .into_iter()
        .map(|c| (edit_distance(name, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, c)| (*d, *c))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_characters() {
        let mut s = Sources::new();
        let f = s.add("a.cell", "ab\ncé d");
        assert_eq!(s.line_col(f, 0), (1, 1));
        assert_eq!(s.line_col(f, 3), (2, 1));
        assert_eq!(s.line_col(f, 7), (2, 4));
    }

    #[test]
    fn suggestions_are_close_matches_only() {
        assert_eq!(did_you_mean("tahn", ["tanh", "sigm", "relu"]), Some("tanh"));
        assert_eq!(did_you_mean("sigmod", ["tanh", "sigmoid", "sigm"]), Some("sigmoid"));
        assert_eq!(did_you_mean("foo", ["tanh", "sigm"]), None);
        assert_eq!(did_you_mean("lsmt", ["lstm", "gru"]), Some("lstm"));
    }
}
