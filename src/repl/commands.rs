//! The REPL's `:commands` and expression evaluation: each turns the session into text.

use std::fmt::Write as _;
use std::path::Path;

use super::{Host, Reply, Session, draft, values};
use crate::check::{Cell, Target};
use crate::interp::gradcheck::{self, CheckSizes, TOLERANCE};
use crate::stdlib;
use crate::syntax::{ast, print};
use crate::tasks::{TaskConfig, TaskKind};
use crate::train::{Event, Hooks, Run, Stop, TrainConfig};

/// Every command: name, arguments, what it does (the `:help` text, and completion's list).
pub const COMMANDS: &[(&str, &str, &str)] = &[
    ("help", "", "this list"),
    ("load", "FILE|NAME", "make a .cell file (FILE:NAME picks one of several) or a standard cell current"),
    ("list", "", "the standard cells and the cells of this session"),
    ("show", "", "the current cell in canonical form"),
    ("grad", "", "its backward step: the symbolic derivative"),
    ("stats", "", "parameters and flops per step at H and D"),
    ("schedule", "", "the plan of GEMMs and fused kernels"),
    ("clif", "[KERNEL]", "the Cranelift IR of every kernel, or of one (`:schedule` names them)"),
    ("gradcheck", "", "the derivative against finite differences (f64) at H, D and seed"),
    ("eval", "", "one step: the value of every equation for x and the states"),
    ("step", "", "one step, then keep the new states as the given ones"),
    ("train", "TASK [STEPS]", "train briefly (H=64, default 300 steps); Ctrl-C stops early"),
    ("sample", "[PRIME]", "generate from the model :train made (arith: the answer to PRIME, like 12+345=)"),
    ("values", "", "H, D, the seed and the values given with let"),
    ("drop", "NAME", "remove the equation or init of NAME (`h'`: a next state; a state goes with its equation)"),
    ("save", "FILE", "write the current cell (and the session cells it derives from)"),
    ("reset", "", "forget the cell, the session's cells and the values"),
    ("quit", "", "leave (Ctrl-D does too)"),
];

const HELP_TAIL: &str = "\
Type a cell (`cell NAME { ... }`, over several lines) or one statement (`h' = tanh(W*x + U*h)`,
`state c`, `init b_f = 1`) to build the current cell; every input is checked at once. Type an
expression (`sigm(W_xz*x + b_z)`, `z*h`) to evaluate it on the current cell. Values: `let H = 8`,
`let D = 3`, `let seed = 1`, `let h = [0.1, -0.2, 0, 0.5]`, `let x = 0.5` (every entry); the
rest are drawn from the seed, weights from the cell's init rules.";

pub fn run(s: &mut Session, line: &str, host: &mut dyn Host) -> Reply {
    let line = line.trim();
    let (name, arg) = line.split_once(char::is_whitespace).map_or((line, ""), |(n, a)| (n, a.trim()));
    let Some(&(_, spec, _)) = COMMANDS.iter().find(|c| c.0 == name) else {
        let names = COMMANDS.iter().map(|c| c.0);
        let hint = match crate::diag::did_you_mean(name, names) {
            Some(n) => format!(" (did you mean `:{n}`?)"),
            None => String::new(),
        };
        return Reply::err(format!("error: no command `:{name}`{hint}; `:help` lists them"));
    };
    // An empty spec takes nothing, `[X]` is optional, anything else is required.
    match (spec.is_empty(), spec.starts_with('['), arg.is_empty()) {
        (true, _, false) => return Reply::err(format!("error: `:{name}` takes no argument")),
        (false, false, true) => return Reply::err(format!("error: `:{name}` needs an argument: {}", usage(name))),
        _ => {}
    }
    match name {
        "help" => Reply::ok(help()),
        "quit" => Reply { text: String::new(), error: false, quit: true },
        "load" => load(s, arg),
        "list" => Reply::ok(list(s)),
        "values" => Reply::ok(s.values.describe()),
        "reset" => {
            let threads = s.threads;
            *s = Session::new(s.style);
            s.threads = threads;
            Reply::ok("reset: no cell, H = 4, D = H, seed 0")
        }
        "drop" => drop(s, arg),
        "save" => save(s, arg),
        "train" => train(s, arg, host),
        "sample" => super::sample::sample(s, arg),
        // The draft as written, errors and all: what the diagnostics' line numbers refer to.
        "show" => match &s.draft {
            Some(d) => Reply::ok(print::cell(d).trim_end()),
            None => Reply::err(no_cell(s)),
        },
        _ => match s.checked.clone() {
            None => Reply::err(no_cell(s)),
            Some(cell) => on_cell(s, name, arg, &cell),
        },
    }
}

fn usage(name: &str) -> String {
    COMMANDS.iter().find(|c| c.0 == name).map_or(String::new(), |c| format!(":{} {}", c.0, c.1))
}

fn help() -> String {
    let mut out = String::from("Commands:\n");
    for (name, args, what) in COMMANDS {
        let _ = writeln!(out, "  :{:<24} {what}", format!("{name} {args}").trim_end());
    }
    out.push('\n');
    out.push_str(HELP_TAIL);
    out
}

fn no_cell(s: &Session) -> String {
    match &s.draft {
        None => "error: no current cell: type one, or `:load gru` (`:list` shows the standard cells)".into(),
        Some(d) => format!("error: `{}` has errors (`:show` shows it); fix them first", d.name.name),
    }
}

/// Commands that need a valid current cell.
fn on_cell(s: &mut Session, name: &str, arg: &str, cell: &Cell) -> Reply {
    let fwd = crate::ir::lower(cell);
    let bwd = crate::autodiff::grad(&fwd);
    let (h, d) = (s.values.hidden, s.values.input_for(&fwd));
    match name {
        "grad" => Reply::ok(crate::autodiff::print::backward_text(&bwd).trim_end()),
        "stats" => {
            let st = crate::stats::stats(&fwd, &bwd, h, d);
            let th = crate::data::thousands;
            Reply::ok(format!(
                "{} at H = {h}, D = {d}: {} parameters\nflops per step per example: forward {} ({} in matrix products), backward {} ({})",
                cell.name,
                th(st.params),
                th(st.forward.total() as usize),
                th(st.forward.matmul_flops as usize),
                th(st.backward.total() as usize),
                th(st.backward.matmul_flops as usize),
            ))
        }
        "schedule" => {
            let plan = crate::schedule::plan(&bwd);
            Reply::ok(crate::schedule::describe(&plan, &bwd).trim_end())
        }
        "clif" => {
            let plan = crate::schedule::plan(&bwd);
            let opts = crate::codegen::Options { clif: true, asm: false };
            let kernels = match crate::codegen::compile(&bwd.graph, &plan, opts) {
                Ok(k) => k,
                Err(e) => return Reply::err(format!("error: cannot compile `{}`: {e}", cell.name)),
            };
            if arg.is_empty() {
                return Reply::ok(kernels.clif.join("\n").trim_end());
            }
            match plan.kernels.iter().position(|k| k.name == arg) {
                Some(k) => Reply::ok(kernels.clif[k].trim_end()),
                None => {
                    let names: Vec<&str> = plan.kernels.iter().map(|k| k.name.as_str()).collect();
                    Reply::err(format!("error: no kernel `{arg}`; `{}` has: {}", cell.name, names.join(", ")))
                }
            }
        }
        "gradcheck" => {
            let sizes = CheckSizes { hidden: h, input: d, seq: 3, batch: 2, per_tensor: 8 };
            let r = gradcheck::check(&fwd, &bwd, s.values.seed, sizes);
            let ok = r.worst <= TOLERANCE;
            let text = format!(
                "{}: worst relative error {:.1e} at {} over {} checks (H = {h}, D = {d}, 3 steps, batch 2, seed {}): {}",
                cell.name,
                r.worst,
                r.worst_at,
                r.checks,
                s.values.seed,
                if ok { "ok" } else { "FAILED" }
            );
            if ok { Reply::ok(text) } else { Reply::err(text) }
        }
        "eval" | "step" => step(s, cell, name == "step"),
        _ => unreachable!("every command is listed in COMMANDS and handled"),
    }
}

/// `:eval` and `:step`: the value of every equation at the session's point.
fn step(s: &mut Session, cell: &Cell, carry: bool) -> Reply {
    let (g, nodes) = crate::ir::lower_values(cell);
    let point = match s.values.point(&g) {
        Ok(p) => p,
        Err(e) => return Reply::err(format!("error: {e}")),
    };
    let vals = crate::interp::step_values(&g, &point.weights, &point.x, &point.states, &nodes);
    let widen = |v: &[f64]| if v.len() == 1 { vec![v[0]; point.hidden] } else { v.to_vec() };
    let mut rows: Vec<(String, String)> = vec![];
    let tag = |n: &str| if point.random.iter().any(|r| r == n) { "  (random)" } else { "" };
    rows.push(("x".into(), format!("{}{}", values::fmt_vector(&point.x), tag("x"))));
    for (i, st) in cell.states.iter().enumerate() {
        rows.push((st.name.clone(), format!("{}{}", values::fmt_vector(&point.states[i]), tag(&st.name))));
    }
    for (eq, v) in cell.equations.iter().zip(&vals) {
        rows.push((eq.display_name(), values::fmt_vector(v)));
    }
    let width = rows.iter().map(|r| r.0.chars().count()).max().unwrap_or(1);
    let mut out = format!("H = {}, D = {}, seed {}\n", point.hidden, point.input, s.values.seed);
    for (name, v) in rows {
        let _ = writeln!(out, "{name:width$} = {v}");
    }
    if carry {
        let mut carried = vec![];
        for (i, st) in cell.states.iter().enumerate() {
            let eq = cell.equations.iter().position(|e| e.target == Target::Next(i)).expect("checked: next equation");
            s.values.given.insert(st.name.clone(), values::Given::Vector(widen(&vals[eq])));
            carried.push(format!("{} = {}'", st.name, st.name));
        }
        let _ = write!(out, "now {}", carried.join(", "));
    }
    Reply::ok(out.trim_end())
}

/// An expression typed at the prompt: evaluated as an extra equation of the current cell.
pub fn evaluate_expression(s: &mut Session, expr: &ast::Expr) -> Reply {
    let mut def = s.draft.clone().unwrap_or_else(|| {
        // No cell yet: a trivial one gives the expression x and h to read.
        let mut d = draft::empty(draft::SKETCH);
        let text = "h' = h";
        let f = s.ws.add("(empty cell)", text);
        let stmt = crate::syntax::parse_stmt(f, text).expect("a fixed valid statement");
        draft::apply(&mut d, stmt, &[]);
        d
    });
    let taken = draft::names(&def);
    let name = (0..).map(|i| if i == 0 { "ans".to_string() } else { format!("ans{i}") }).find(|n| !taken.contains(n));
    let name = name.expect("an unused name exists");
    let eq = ast::Equation {
        target: ast::Ident { name: name.clone(), span: Default::default() },
        primed: false,
        rhs: expr.clone(),
    };
    let stmt = ast::Stmt {
        kind: ast::StmtKind::Equation(eq),
        span: Default::default(),
        comments: vec![],
        trailing_comment: None,
        blank_before: false,
    };
    def.body.push(stmt);
    let text = s.file_text(&def, None);
    let (cell, mut diags) = s.check_text(&text, &def.name.name);
    diags.retain(|d| !(d.code == "cellc::unused" && d.message.contains(&format!("`{name}`"))));
    let Some(cell) = cell else {
        return Reply::err(s.render(&diags));
    };
    let (g, nodes) = crate::ir::lower_values(&cell);
    let point = match s.values.point(&g) {
        Ok(p) => p,
        Err(e) => return Reply::err(format!("error: {e}")),
    };
    let at = cell.equations.iter().position(|e| e.name == name).expect("the added equation is in the cell");
    let v = crate::interp::step_values(&g, &point.weights, &point.x, &point.states, &nodes[at..=at]);
    let shown = if v[0].len() == 1 { values::fmt_number(v[0][0]) } else { values::fmt_vector(&v[0]) };
    let warnings = s.render(&diags);
    Reply::ok(if warnings.is_empty() { shown } else { format!("{warnings}\n{shown}") })
}

/// `:load FILE|NAME|FILE:NAME`.
fn load(s: &mut Session, arg: &str) -> Reply {
    let (path, wanted) = match arg.rsplit_once(':') {
        Some((p, n)) if !Path::new(arg).exists() && !n.is_empty() && !n.contains('/') => (p, Some(n)),
        _ => (arg, None),
    };
    let text = if Path::new(path).is_file() {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => return Reply::err(format!("error: cannot read `{path}`: {e}")),
        };
        match crate::syntax::guard::decode(&bytes) {
            Ok(t) => t.to_string(),
            Err(e) => return Reply::err(format!("error: {path}: {e}")),
        }
    } else if let Some(src) = stdlib::source(path) {
        src.to_string()
    } else {
        let mut msg = format!("error: no file or standard cell named `{path}`");
        if let Some(n) = crate::diag::did_you_mean(path, stdlib::names()) {
            let _ = write!(msg, " (did you mean `{n}`?)");
        } else if Path::new(path).is_dir() {
            msg = format!("error: `{path}` is a directory, not a .cell file");
        }
        return Reply::err(msg);
    };
    let file = s.ws.add(path, &text);
    let (ast, diags) = crate::syntax::parse(file, &text);
    if !diags.is_empty() {
        return Reply::err(s.render(&diags));
    }
    let names: Vec<String> = ast.cells.iter().map(|c| c.name.name.clone()).collect();
    let chosen = match wanted {
        Some(n) => match ast.cells.iter().find(|c| c.name.name == n) {
            Some(c) => c.clone(),
            None => return Reply::err(format!("error: `{path}` has no cell `{n}` (it has: {})", names.join(", "))),
        },
        None => match ast.cells.first() {
            Some(c) => c.clone(),
            None => return Reply::err(format!("error: `{path}` has no cells")),
        },
    };
    for def in &ast.cells {
        s.remember(def.clone());
    }
    s.draft = Some(chosen);
    let mut reply = s.recheck(None);
    if names.len() > 1 && wanted.is_none() {
        reply.text.push_str(&format!(
            "\n({path} has {} cells: {}; this is the first, `:load {path}:NAME` picks another)",
            names.len(),
            names.join(", ")
        ));
    }
    reply
}

fn list(s: &Session) -> String {
    let mut rows: Vec<(String, String)> = vec![];
    for def in s.ws.std_defs() {
        rows.push((def.name.name.clone(), def.summary().to_string()));
    }
    for def in &s.defs {
        rows.push((def.name.name.clone(), format!("(this session) {}", def.summary()).trim_end().to_string()));
    }
    let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    rows.iter().map(|(n, d)| format!("{n:width$}  {d}").trim_end().to_string()).collect::<Vec<_>>().join("\n")
}

fn drop(s: &mut Session, arg: &str) -> Reply {
    let Some(def) = s.draft.as_mut() else {
        return Reply::err(no_cell(s));
    };
    if draft::drop(def, arg) == 0 {
        return Reply::err(format!("error: the current cell has no equation, init or state `{arg}`"));
    }
    let mut reply = s.recheck(None);
    if !reply.error {
        super::prefix_last_line(&mut reply.text, &format!("dropped {arg}; "));
    }
    reply
}

fn save(s: &mut Session, arg: &str) -> Reply {
    let Some(def) = s.draft.clone() else {
        return Reply::err(no_cell(s));
    };
    let text = s.file_text(&def, None);
    let path = Path::new(arg);
    match crate::io::write_atomic(path, text.as_bytes()) {
        Ok(()) => Reply::ok(format!("wrote {} ({} lines)", path.display(), text.lines().count())),
        Err(e) => Reply::err(format!("error: cannot write `{arg}`: {e}")),
    }
}

/// Steps `:train` runs when not told.
pub const TRAIN_STEPS: u64 = 300;

fn train(s: &mut Session, arg: &str, host: &mut dyn Host) -> Reply {
    let Some(cell) = s.checked.clone() else {
        return Reply::err(no_cell(s));
    };
    let mut words = arg.split_whitespace();
    let task = words.next().unwrap_or_default();
    let steps = match words.next().map(str::parse::<u64>) {
        None => TRAIN_STEPS,
        Some(Ok(n)) if n >= 1 => n,
        Some(_) => return Reply::err("error: STEPS must be a whole number of at least 1"),
    };
    if words.next().is_some() {
        return Reply::err(format!("error: too many arguments: {}", usage("train")));
    }
    let config = match train_config(task, steps, s.values.seed, s.threads) {
        Ok(c) => c,
        Err(e) => return Reply::err(format!("error: {e}")),
    };
    match run_training(&cell, config, host) {
        Ok((text, model)) => {
            s.trained = Some(model);
            Reply::ok(text)
        }
        Err(e) => Reply::err(format!("error: {e}")),
    }
}

/// A short run's settings: H = 64, Adam 3e-3, clip 5, five validations on 500 examples.
fn train_config(task: &str, steps: u64, seed: u64, threads: usize) -> Result<TrainConfig, String> {
    let all: Vec<&str> = TaskKind::ALL.iter().map(|k| k.name()).collect();
    let kind = TaskKind::parse(task).map_err(|_| format!("no task `{task}`; one of: {}", all.join(", ")))?;
    let mut t = TaskConfig::new(kind);
    t.data = kind.locate_data(None)?;
    let mut c = TrainConfig::short(t, 64, steps, seed);
    c.threads = threads;
    Ok(c)
}

fn run_training(
    cell: &Cell,
    config: TrainConfig,
    host: &mut dyn Host,
) -> Result<(String, super::sample::TrainedModel), String> {
    let mut run = Run::start(cell, config)?;
    let kind = run.task.kind();
    let metric = kind.metric();
    let result = {
        let host = std::cell::RefCell::new(&mut *host);
        let mut observe = |ev: Event<'_>| match ev {
            Event::Step { step, loss, progress, tokens_per_s, seconds } => host.borrow_mut().status(&format!(
                "step {step}  loss {loss:.3}  {:3.0}%  {:.1}k tok/s  {seconds:.1} s  (Ctrl-C stops)",
                progress * 100.0,
                tokens_per_s / 1000.0
            )),
            Event::Eval(r) => host.borrow_mut().line(&format!(
                "step {:>5}  train loss {:.4}  valid {metric} {:.4}",
                r.step, r.train_loss, r.valid.metric
            )),
        };
        let cancel = || host.borrow().interrupted();
        run.train(Hooks { observe: Some(&mut observe), cancel: Some(&cancel), save: None })?
    };
    let outcome = result
        .map_err(|d| format!("training diverged at step {}: the first non-finite value is {}", d.step, d.origin))?;
    let how = match outcome.stop {
        Stop::Interrupted => format!("interrupted after {} steps", outcome.steps),
        _ => format!("{} steps", outcome.steps),
    };
    let text = format!(
        "{} on {kind}: {how}; best valid {metric} {:.4} (step {}), test {metric} {:.4}",
        cell.name, outcome.valid.metric, outcome.best_step, outcome.test.metric
    );
    let model =
        super::sample::TrainedModel { cell: cell.clone(), config: run.state.config.clone(), params: outcome.best };
    Ok((text, model))
}
