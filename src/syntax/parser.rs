//! pest pairs to AST: the only place that knows the grammar's rule structure.

use pest::Parser as _;
use pest::iterators::Pair;

use super::ast::*;
use crate::diag::{FileId, Span};

#[derive(pest_derive::Parser)]
#[grammar = "grammar/cell.pest"]
pub(crate) struct CellParser;

/// Builds AST nodes from pairs of one parsed text that starts at `offset` in file `file`.
pub(crate) struct Builder {
    pub file: FileId,
    pub offset: usize,
}

impl Builder {
    /// The pair's span without trailing whitespace and comments, which pest includes when an
    /// optional part after them fails to match (`a ~ b?` keeps the skip before the absent `b`).
    fn span(&self, pair: &Pair<'_, Rule>) -> Span {
        let start = self.offset + pair.as_span().start();
        Span::new(self.file, start, start + trim_trailing(pair.as_str()).len())
    }

    fn ident(&self, pair: Pair<'_, Rule>) -> Ident {
        Ident { name: pair.as_str().to_string(), span: self.span(&pair) }
    }

    pub fn cells(&self, file_pair: Pair<'_, Rule>) -> Vec<CellDef> {
        file_pair.into_inner().filter(|p| p.as_rule() == Rule::cell).map(|p| self.cell(p)).collect()
    }

    pub fn cell(&self, pair: Pair<'_, Rule>) -> CellDef {
        let span = self.span(&pair);
        let mut doc = vec![];
        let mut name = None;
        let mut base = None;
        let mut body = vec![];
        let mut cell_start = span.start;
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::doc => doc.push(doc_line(p.into_inner().next().map_or("", |t| t.as_str()))),
                Rule::kw_cell => cell_start = self.span(&p).start,
                Rule::name => name = Some(self.ident(p)),
                Rule::derive => {
                    let mut inner = p.into_inner();
                    base = inner.next().map(|b| self.ident(b));
                    body = inner.find(|b| b.as_rule() == Rule::body).map(|b| self.body(b)).unwrap_or_default();
                }
                Rule::body => body = self.body(p),
                _ => {}
            }
        }
        CellDef {
            comments: vec![],
            doc,
            name: name.expect("grammar: cell has a name"),
            base,
            body,
            end_comments: vec![],
            span: Span { start: cell_start, ..span },
        }
    }

    fn body(&self, pair: Pair<'_, Rule>) -> Vec<Stmt> {
        pair.into_inner().map(|p| self.stmt(p)).collect()
    }

    pub fn stmt(&self, pair: Pair<'_, Rule>) -> Stmt {
        let span = self.span(&pair);
        let rule = pair.as_rule();
        let mut inner = pair.into_inner().filter(|p| !is_keyword(p.as_rule()));
        let kind = match rule {
            Rule::state_decl => StmtKind::State(inner.map(|p| self.ident(p)).collect()),
            Rule::output_decl => StmtKind::Output(self.ident(inner.next().expect("grammar: output name"))),
            Rule::init_decl => {
                let name = self.ident(inner.next().expect("grammar: init name"));
                let value = self.init_value(inner.next().expect("grammar: init value"));
                StmtKind::Init(name, value)
            }
            Rule::equation => {
                let target = inner.next().expect("grammar: equation target");
                let primed = target.clone().into_inner().any(|p| p.as_rule() == Rule::prime);
                let name = self.ident(target.into_inner().next().expect("grammar: target name"));
                let rhs = self.expr(inner.next().expect("grammar: equation rhs"));
                StmtKind::Equation(Equation { target: name, primed, rhs })
            }
            other => unreachable!("grammar: unexpected statement rule {other:?}"),
        };
        Stmt { kind, span, comments: vec![], trailing_comment: None, blank_before: false }
    }

    fn init_value(&self, pair: Pair<'_, Rule>) -> InitValue {
        let span = self.span(&pair);
        let mut negated = false;
        let mut kind = None;
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::negate => negated = true,
                Rule::number => kind = Some(InitKind::Number(self.number(p))),
                Rule::scheme => {
                    let mut inner = p.into_inner();
                    let name = self.ident(inner.next().expect("grammar: scheme name"));
                    let args: Vec<Number> = inner.map(|a| self.number(a)).collect();
                    let has_parens = !args.is_empty();
                    kind = Some(InitKind::Scheme { name, args: has_parens.then_some(args) });
                }
                _ => {}
            }
        }
        InitValue { negated, kind: kind.expect("grammar: init value kind"), span }
    }

    fn number(&self, pair: Pair<'_, Rule>) -> Number {
        let text = pair.as_str().to_string();
        // The grammar only admits decimal literals, which always parse (possibly to inf).
        let value = text.parse::<f64>().unwrap_or(f64::NAN);
        Number { value, text, span: self.span(&pair) }
    }

    pub fn expr(&self, pair: Pair<'_, Rule>) -> Expr {
        let span = self.span(&pair);
        let mut terms = vec![];
        let mut sign = Sign::Plus;
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::negate => sign = Sign::Minus,
                Rule::add_op => sign = if has_inner(&p, Rule::minus) { Sign::Minus } else { Sign::Plus },
                Rule::product => terms.push((sign, self.product(p))),
                other => unreachable!("grammar: unexpected rule in expr {other:?}"),
            }
        }
        if terms.len() == 1 && terms[0].0 == Sign::Plus {
            return terms.pop().map(|(_, e)| e).expect("one term");
        }
        Expr { kind: ExprKind::Sum(terms), span }
    }

    fn product(&self, pair: Pair<'_, Rule>) -> Expr {
        let span = self.span(&pair);
        let mut factors = vec![];
        let mut op = MulOp::Mul;
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::mul_op => op = if has_inner(&p, Rule::divide) { MulOp::Div } else { MulOp::Mul },
                Rule::factor => factors.push((op, self.factor(p))),
                other => unreachable!("grammar: unexpected rule in product {other:?}"),
            }
        }
        if factors.len() == 1 {
            return factors.pop().map(|(_, e)| e).expect("one factor");
        }
        Expr { kind: ExprKind::Product(factors), span }
    }

    fn factor(&self, pair: Pair<'_, Rule>) -> Expr {
        let span = self.span(&pair);
        let mut inner = pair.into_inner();
        let negations = inner.next().expect("grammar: negations").as_str().matches('-').count();
        let atom = self.atom(inner.next().expect("grammar: atom"));
        // `--a` is `a`: fold pairs of minus signs so the tree stays shallow.
        if negations % 2 == 1 { Expr { kind: ExprKind::Neg(Box::new(atom)), span } } else { atom }
    }

    fn atom(&self, pair: Pair<'_, Rule>) -> Expr {
        let span = self.span(&pair);
        let kind = match pair.as_rule() {
            Rule::number => ExprKind::Number(self.number(pair)),
            Rule::var => {
                let primed = pair.clone().into_inner().any(|p| p.as_rule() == Rule::prime);
                let name = pair.into_inner().next().expect("grammar: var name").as_str().to_string();
                ExprKind::Var { name, primed }
            }
            Rule::call => {
                let mut inner = pair.into_inner();
                let func = self.ident(inner.next().expect("grammar: call name"));
                let args = inner.map(|a| self.expr(a)).collect();
                ExprKind::Call { func, args }
            }
            Rule::paren => ExprKind::Paren(Box::new(self.expr(pair.into_inner().next().expect("grammar: paren")))),
            other => unreachable!("grammar: unexpected atom {other:?}"),
        };
        Expr { kind, span }
    }
}

/// `text` without trailing whitespace and `//` comments.
fn trim_trailing(mut text: &str) -> &str {
    loop {
        text = text.trim_end();
        let last_line = text.rfind('\n').map_or(0, |i| i + 1);
        match text[last_line..].find("//") {
            Some(c) => text = &text[..last_line + c],
            None => return text,
        }
    }
}

fn has_inner(pair: &Pair<'_, Rule>, rule: Rule) -> bool {
    pair.clone().into_inner().any(|p| p.as_rule() == rule)
}

fn is_keyword(rule: Rule) -> bool {
    matches!(rule, Rule::kw_cell | Rule::kw_state | Rule::kw_output | Rule::kw_init | Rule::kw_with)
}

/// `/// text` keeps `text` without the one space after the slashes.
fn doc_line(text: &str) -> String {
    text.strip_prefix(' ').unwrap_or(text).trim_end().to_string()
}

/// Runs pest on `text` with `rule`.
pub(crate) fn parse_rule(
    rule: Rule,
    text: &str,
) -> Result<pest::iterators::Pairs<'_, Rule>, Box<pest::error::Error<Rule>>> {
    CellParser::parse(rule, text).map_err(Box::new)
}
