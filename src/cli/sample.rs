//! `cellc sample DIR`: generation from a model trained by `cellc run --save`: text for the text and
//! PTB models, the answer to a typed problem for arith, a piece of music (a standard MIDI file and
//! a piano roll) for the music models.

use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::json;

use super::failure::Outcome;
use super::ui::Ui;
use crate::runtime::Engine;
use crate::tasks::{Task, TaskKind};
use crate::train::checkpoint;
use crate::train::sample::{Generator, Input, Options, generate};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A checkpoint directory written by `cellc run --save` (its best model is used).
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    /// Symbols (characters, words) or music frames to generate; arith stops at the answer's end.
    #[arg(long, default_value_t = 200)]
    length: usize,
    /// Below 1 sharper, above 1 flatter; 0 always takes the likeliest.
    #[arg(long, default_value_t = 1.0)]
    temperature: f64,
    /// Draw among the k likeliest symbols only (0: all).
    #[arg(long, default_value_t = 0)]
    top_k: usize,
    /// Seed of the draws: the same seed gives the same sample.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// What to start from: characters for text, XML and arith (`--prime "12+345="`), words for
    /// PTB. Without it: a new sentence (PTB), a new line (text), `<` (XML); arith needs one.
    /// Music starts from silence.
    #[arg(long)]
    prime: Option<String>,
    /// Music: the piece as a standard MIDI file here (and a piano roll beside it, .png).
    #[arg(long, value_name = "FILE.mid")]
    out: Option<PathBuf>,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
    /// Where the model's data is now, if not where it was trained (PTB and text need their
    /// vocabulary from it).
    #[command(flatten)]
    data: super::args::DataArg,
}

pub fn run(_ui: &Ui, a: Args) -> Outcome {
    if !(a.temperature >= 0.0 && a.temperature.is_finite()) {
        return Err("--temperature must be 0 or positive".into());
    }
    let (source, mut config) = checkpoint::peek(&a.dir)?;
    if a.data.data.is_some() {
        config.task.data = config.task.kind.locate_data(a.data.data.as_deref())?;
    }
    let cell = source.checked()?;
    let task = config.task.build()?;
    let engine = Engine::compile(&cell).map_err(|e| format!("cannot compile `{}`: {e}", cell.name))?;
    let model = checkpoint::load_model(&a.dir, &engine, &task)?;
    let mut g = Generator::new(&engine, &model.params, config.model_shape(&task))?;
    let kind = task.kind();
    // Without a prime, start where the training data starts a unit: a sentence, a line, a tag.
    let start = match (&a.prime, kind) {
        (Some(_), TaskKind::Music(_)) => return Err("music is generated from silence; drop --prime".into()),
        (Some(text), _) => Some(text.clone()),
        (None, TaskKind::Music(_)) => None,
        (None, TaskKind::Arith) => return Err("give arith a problem to answer: --prime \"12+345=\"".into()),
        (None, TaskKind::Ptb) => Some("<eos>".to_string()),
        (None, TaskKind::Text) => Some("\n".to_string()),
        (None, TaskKind::Xml) => Some("<".to_string()),
        (None, TaskKind::Memorize) => return Err("give a prime to start from: --prime TEXT".into()),
    };
    let prime: Vec<Input> = match &start {
        Some(text) => task.encode(text)?.into_iter().map(Input::Symbol).collect(),
        None => vec![],
    };
    let o = Options { length: a.length, temperature: a.temperature, top_k: a.top_k, seed: a.seed };
    let out = generate(&mut g, &task, &prime, &o)?;
    if let TaskKind::Music(_) = kind {
        return music(&a, &source.name, &out);
    }
    let text = render(&task, &out);
    if a.json {
        println!(
            "{}",
            json!({"cell": source.name, "task": kind.name(), "prime": start, "sample": text, "seed": a.seed})
        );
    } else {
        let shown = match (start.as_deref(), kind) {
            (Some("<eos>"), TaskKind::Ptb) if a.prime.is_none() => String::new(),
            (Some(p), TaskKind::Ptb) => format!("{p} "),
            (Some(p), _) => p.to_string(),
            (None, _) => String::new(),
        };
        println!("{shown}{text}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Generated symbols as text: words separated by spaces (`<eos>` a line break), else characters.
fn render(task: &Task, out: &[Input]) -> String {
    let words = task.kind() == TaskKind::Ptb;
    let mut s = String::new();
    for input in out {
        let Input::Symbol(i) = input else { continue };
        let sym = task.symbol(*i);
        if words {
            if sym == "<eos>" {
                s.push('\n');
            } else {
                s.push_str(&sym);
                s.push(' ');
            }
        } else {
            s.push_str(&sym);
        }
    }
    s
}

fn music(a: &Args, cell: &str, out: &[Input]) -> Outcome {
    let frames: Vec<Vec<u8>> =
        out.iter().filter_map(|i| if let Input::Notes(n) = i { Some(n.clone()) } else { None }).collect();
    let path = a.out.clone().ok_or("music: say where the MIDI file goes with --out piece.mid")?;
    crate::io::write_atomic(&path, &crate::data::midi::write(&frames)?)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    let roll = path.with_extension("png");
    crate::plot::roll::write_roll(&format!("{cell}: {} frames, seed {}", frames.len(), a.seed), &frames, &roll)?;
    let notes: usize = frames.iter().map(Vec::len).sum();
    if a.json {
        println!(
            "{}",
            json!({"cell": cell, "frames": frames.len(), "notes": notes, "midi": path, "roll": roll, "seed": a.seed,
                       "piece": frames})
        );
    } else {
        println!("{} frames, {notes} notes: {} and {}", frames.len(), path.display(), roll.display());
    }
    Ok(ExitCode::SUCCESS)
}
