//! The flags that define a training run, shared by `cellc run` and `cellc compare` (flattened
//! into both), and the training configuration they describe.

use super::args::{DataArg, TaskParser, ThreadsArg, parse_duration};
use crate::tasks::{DataNeed, TaskConfig, TaskKind};
use crate::train::optim::OptimizerKind;
use crate::train::schedule::{self, Schedule};
use crate::train::{Budget, TrainConfig};

/// The flags that define a training run (`cellc run`, `cellc compare`).
#[derive(clap::Args, Debug)]
pub struct TrainArgs {
    /// The task to train on.
    #[arg(long, value_parser = TaskParser)]
    pub task: Option<TaskKind>,
    /// Hidden size H (and the embedding size).
    #[arg(long, default_value_t = 128)]
    pub hidden: usize,
    /// Stacked layers of the cell.
    #[arg(long, default_value_t = 1)]
    pub layers: usize,
    /// Examples per batch, parallel streams of xml, ptb and text, or pieces side by side of music
    /// [default: 64; ptb 20; music 16]
    #[arg(long)]
    pub batch: Option<usize>,
    /// xml, ptb, text, music: steps per batch (truncated backpropagation through time)
    /// [default: 64; ptb 35; music 100]
    #[arg(long)]
    pub bptt: Option<usize>,
    /// The optimiser.
    #[arg(long, value_enum, default_value_t = OptimizerKind::Adam)]
    pub optimizer: OptimizerKind,
    /// Base learning rate (default: 3e-3 for Adam, 1 for SGD).
    #[arg(long)]
    pub lr: Option<f64>,
    /// How the learning rate moves: cosine or linear (warm up over --warmup of the run, then fall
    /// to --floor times the rate when the budget ends; a time budget's length in steps is
    /// estimated from the measured step rate as the run goes), constant, or plateau (halve it when
    /// validation stops improving for --decay-patience validations).
    #[arg(long, value_enum, default_value_t = ScheduleName::Cosine)]
    pub schedule: ScheduleName,
    /// cosine, linear: the fraction of the run spent warming up.
    #[arg(long, default_value_t = schedule::WARMUP)]
    pub warmup: f64,
    /// cosine, linear: the final rate as a fraction of --lr.
    #[arg(long, default_value_t = schedule::FLOOR)]
    pub floor: f64,
    /// Clip the global gradient norm to this (0: no clipping).
    #[arg(long, default_value_t = 5.0)]
    pub clip: f64,
    /// Weights start uniform in ±scale/sqrt(fan-in) (unless the cell says otherwise).
    #[arg(long, default_value_t = 1.0)]
    pub init_scale: f64,
    /// Every parameter starts uniform in ±A instead, whatever the cell says (Zaremba et al.
    /// 2014 use 0.1 on PTB).
    #[arg(long, value_name = "A")]
    pub init_uniform: Option<f64>,
    /// Dropout probability on the non-recurrent connections: the embedding into the first layer,
    /// between layers, and before the output (Zaremba et al. 2014).
    #[arg(long, default_value_t = 0.0)]
    pub dropout: f64,
    /// Variational dropout: the same mask at every time step of a batch (Gal & Ghahramani 2016).
    #[arg(long)]
    pub variational: bool,
    /// Tie the output matrix to the input embedding (Press & Wolf 2017).
    #[arg(long)]
    pub tied: bool,
    /// Run batches of whole examples (arith, memorize) padded to their longest example, every
    /// example every step, instead of each for its own length (the default; the same
    /// gradients, less work).
    #[arg(long)]
    pub padded: bool,
    /// Bidirectional layers (arith, memorize: tasks that read a whole question before
    /// answering): every layer below the top also reads each question backwards, its own
    /// weights, the two directions' outputs summed. Needs --layers 2 or more; the top layer
    /// answers left to right.
    #[arg(long)]
    pub bidirectional: bool,
    /// Stop after this many training steps.
    #[arg(long, group = "budget")]
    pub steps: Option<u64>,
    /// Stop after this many epochs: passes over a corpus (ptb, text), or 100,000 examples (arith,
    /// memorize), or 1,000,000 characters (xml).
    #[arg(long, group = "budget")]
    pub epochs: Option<f64>,
    /// Stop after this much time: seconds, or with a unit (90s, 5m, 1h). Default 5m.
    #[arg(long, group = "budget")]
    pub time: Option<String>,
    /// Validate every this many steps [default: 200; ptb, text and music: once per epoch]
    #[arg(long)]
    pub eval_every: Option<u64>,
    /// Validation and test examples (arith, memorize).
    #[arg(long, default_value_t = 2000)]
    pub eval_examples: usize,
    /// plateau: multiply the learning rate by this when validation stops improving.
    #[arg(long, default_value_t = 0.5)]
    pub decay: f64,
    /// plateau: decay by epochs instead, multiplying the learning rate by --decay at the end of
    /// every epoch after this one (Zaremba et al.'s PTB schedule: 4).
    #[arg(long, value_name = "EPOCH")]
    pub decay_epoch: Option<u32>,
    #[command(flatten)]
    pub data: DataArg,
    /// plateau: evaluations without improvement before the learning rate decays.
    #[arg(long, default_value_t = 3)]
    pub decay_patience: u32,
    /// Stop early after this many evaluations without improvement (default 0: train to the end
    /// of the budget).
    #[arg(long, default_value_t = 0)]
    pub patience: u32,
    /// arith: most digits per operand in training.
    #[arg(long, default_value_t = 8)]
    pub max_digits: usize,
    /// arith: also test on longer numbers, up to this many digits.
    #[arg(long)]
    pub eval_max_digits: Option<usize>,
    /// arith: mean distractor letters after each input character.
    #[arg(long, default_value_t = 1.0)]
    pub distractors: f64,
    /// arith: a curriculum over the number of digits: begin with 1-digit numbers (half of the
    /// examples still of any length) and add a digit when validation at the current length
    /// reaches 0.75 (measured: no faster than without in a 5-minute run, so off by default)
    #[arg(long)]
    pub curriculum: bool,
    /// xml: iterations after which every open tag is closed.
    #[arg(long, default_value_t = 50)]
    pub max_depth: usize,
    /// Seed of every random choice (data, initialisation, dropout).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[command(flatten)]
    pub threads: ThreadsArg,
}

/// `--schedule`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScheduleName {
    Cosine,
    Linear,
    Constant,
    Plateau,
}

impl TrainArgs {
    /// The budget the flags give, if any.
    pub fn budget(&self) -> Result<Option<Budget>, String> {
        let args = self;
        Ok(match (args.steps, args.epochs, &args.time) {
            (Some(0), _, _) => return Err("--steps must be at least 1".into()),
            (Some(n), _, _) => Some(Budget::Steps(n)),
            (_, Some(e), _) if e.is_nan() || e <= 0.0 => return Err("--epochs must be positive".into()),
            (_, Some(e), _) => Some(Budget::Epochs(e)),
            (_, _, Some(t)) => Some(Budget::Seconds(parse_duration("--time", t)?)),
            _ => None,
        })
    }

    /// The training configuration the flags describe for task `kind` (its ranges are checked
    /// when the run starts); `default_budget` when no budget flag is given.
    pub fn config(
        &self,
        kind: TaskKind,
        default_budget: Budget,
        default_threads: usize,
    ) -> Result<TrainConfig, String> {
        let args = self;
        let mut t = TaskConfig::new(kind);
        let (batch, bptt) = kind.default_shape();
        let (batch, bptt) = (args.batch.unwrap_or(batch), args.bptt.unwrap_or(bptt));
        if kind.data() == DataNeed::Generated && args.data.data.is_some() {
            return Err(format!("--data is for ptb, text and music, not {kind}"));
        }
        t.data = kind.locate_data(args.data.data.as_deref())?;
        t.max_digits = args.max_digits;
        t.eval_max_digits = args.eval_max_digits;
        t.distractors = args.distractors;
        t.curriculum = args.curriculum;
        t.max_depth = args.max_depth;
        t.streams = batch;
        if args.eval_every == Some(0) {
            return Err("--eval-every must be at least 1".into());
        }
        Ok(TrainConfig {
            task: t,
            hidden: args.hidden,
            layers: args.layers,
            batch,
            bptt,
            optimizer: args.optimizer,
            lr: args.lr.unwrap_or(match args.optimizer {
                OptimizerKind::Adam => 3e-3,
                OptimizerKind::Sgd => 1.0,
            }),
            schedule: match args.schedule {
                ScheduleName::Cosine => Schedule::Cosine { warmup: args.warmup, floor: args.floor },
                ScheduleName::Linear => Schedule::Linear { warmup: args.warmup, floor: args.floor },
                ScheduleName::Constant => Schedule::Constant,
                ScheduleName::Plateau => Schedule::Plateau,
            },
            clip: args.clip,
            init_scale: args.init_scale,
            init_uniform: args.init_uniform,
            dropout: args.dropout,
            variational: args.variational,
            padded: args.padded,
            bidirectional: args.bidirectional,
            tied: args.tied,
            budget: args.budget()?.unwrap_or(default_budget),
            // 0: once per epoch for a corpus or music, else 200 (decided when the task is built).
            eval_every: args.eval_every.unwrap_or(0),
            eval_examples: args.eval_examples,
            decay: args.decay,
            decay_patience: args.decay_patience,
            decay_epoch: args.decay_epoch,
            stop_patience: args.patience,
            seed: args.seed,
            threads: args.threads.threads.unwrap_or(default_threads).max(1),
        })
    }
}
