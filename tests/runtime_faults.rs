//! A runtime that cannot hang: a panic injected into one thread of a lockstep step (the mode
//! where threads wait for each other at barriers) at a random step ends the step on every
//! thread; the call returns an error, and the engine and its thread pool give the right numbers
//! on the next call. A watchdog fails the test instead of letting a hang hang it.

use std::sync::mpsc;
use std::time::Duration;

use cellc::rng::Rng;
use cellc::runtime::{Engine, Sizes, StepMode, faults};
use cellc::workspace::Workspace;

fn engine(name: &str) -> Engine {
    let ws = Workspace::new();
    let mut e = Engine::compile(&ws.check_std(name).unwrap().cells[0]).unwrap();
    e.step_mode = StepMode::Lockstep;
    e
}

/// The injected fault is one per process: tests that arm it take turns.
static ONE_FAULT_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `f` on another thread; fails if it has not returned within `limit` (a hang).
fn within<T: Send + 'static>(limit: Duration, what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit).unwrap_or_else(|_| panic!("{what} did not return within {limit:?}: a hang"))
}

#[test]
fn a_thread_that_panics_ends_the_step_on_every_thread_and_the_pool_carries_on() {
    let _turn = ONE_FAULT_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut rng = Rng::new(5);
    let mut slowest = Duration::ZERO;
    for round in 0..20 {
        let name = ["gru", "lstm", "mut1"][round % 3];
        let threads = 2 + round % 2;
        let sizes = Sizes { hidden: 24, input: 24, batch: 8, steps: 12 };
        let (thread, step) = (rng.below(threads as u64) as usize, rng.below(12) as usize);
        let backward = round % 2 == 1;
        let result = within(Duration::from_secs(120), "a failing step", move || {
            let e = engine(name);
            let mut bufs = e.buffers(sizes).unwrap();
            let weights: Vec<Vec<f32>> = e.param_lens(sizes).into_iter().map(|n| vec![0.01; n]).collect();
            let mut grads: Vec<Vec<f32>> = weights.iter().map(|w| vec![0.0; w.len()]).collect();
            let dy = vec![0.1; sizes.steps * sizes.batch * sizes.hidden];
            bufs.input_mut(&e).fill(0.5);
            let clean = |bufs: &mut cellc::runtime::Buffers, grads: &mut Vec<Vec<f32>>| {
                e.forward(bufs, &weights, threads).unwrap();
                e.backward(bufs, &weights, &dy, grads, threads).unwrap();
                (bufs.output(&e).to_vec(), grads.clone())
            };
            let want = clean(&mut bufs, &mut grads);
            let t = std::time::Instant::now();
            let failed = if backward {
                e.forward(&mut bufs, &weights, threads).unwrap();
                faults::arm_panic(thread, step);
                e.backward(&mut bufs, &weights, &dy, &mut grads, threads)
            } else {
                faults::arm_panic(thread, step);
                e.forward(&mut bufs, &weights, threads)
            };
            let took = t.elapsed();
            let again = clean(&mut bufs, &mut grads);
            (failed, want == again, took)
        });
        let (failed, same, took) = result;
        slowest = slowest.max(took);
        let err = failed.expect_err("the injected panic is an error");
        assert!(err.contains("stopped on every thread") && err.contains("on purpose"), "{err}");
        assert!(same, "round {round}: the next call gives the numbers of a clean one");
    }
    // Reported, not asserted (a loaded machine is slower): the target is well under a second.
    eprintln!("the slowest failing call returned its error after {slowest:?}");
}

#[test]
fn a_schedule_whose_slots_do_not_fit_is_refused_before_any_run() {
    use cellc::check::Dim;
    use cellc::runtime::check_schedule;
    use cellc::schedule::{Cols, Stage};
    let e = engine("gru");
    let g = &e.backward.graph;
    assert_eq!(check_schedule(g, &e.schedule), Ok(()));
    // A GEMM writing past its output's rows, and a kernel reading a slot of the other width:
    // what a planner bug would make.
    let mut sch = e.schedule.clone();
    let out = sch.forward_step.iter_mut().find_map(|s| match s {
        Stage::Gemm { out, .. } => Some(out),
        Stage::Kernel { .. } => None,
    });
    out.unwrap().col = Cols { h: 100, d: 0 };
    let err = check_schedule(g, &sch).unwrap_err();
    assert!(err.contains("GEMM's output spans columns"), "{err}");
    let mut sch = e.schedule.clone();
    let arg = sch.forward_step.iter_mut().find_map(|s| match s {
        Stage::Kernel { args, .. } => args.first_mut(),
        Stage::Gemm { .. } => None,
    });
    let arg = arg.unwrap();
    arg.dim = if arg.dim == Dim::H { Dim::D } else { Dim::H };
    assert!(check_schedule(g, &sch).unwrap_err().contains("reads rows of"));
}

/// The same fault under the trainer's language model: the training step returns the error
/// (which `cellc run` prints as one line) and the next step trains as if nothing happened.
#[test]
fn a_failing_step_reaches_the_trainer_as_an_error_and_training_goes_on() {
    let _turn = ONE_FAULT_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    use cellc::train::lm::{LmParams, LmRunner, LmShape};
    let out = within(Duration::from_secs(120), "a failing training step", || {
        let e = engine("lstm");
        let shape = LmShape { vocab: 10, hidden: 16, layers: 2, batch: 8, steps: 12, bidirectional: false };
        let tokens: Vec<u32> = (0..96).map(|i| (i % 10) as u32).collect();
        let targets: Vec<u32> = tokens.iter().map(|t| (t + 1) % 10).collect();
        let run = |fault: Option<(usize, usize)>| {
            let mut params = LmParams::init(&e, shape, 1.0, 1);
            let mut runner = LmRunner::new(&e, shape, 2).unwrap();
            let mut losses = vec![runner.train_step(&mut params, &tokens, &targets, 0.5)];
            if let Some((thread, step)) = fault {
                faults::arm_panic(thread, step);
                losses.push(runner.train_step(&mut params, &tokens, &targets, 0.0));
            }
            losses.push(runner.train_step(&mut params, &tokens, &targets, 0.5));
            losses
        };
        (run(None), run(Some((1, 7))))
    });
    let (clean, faulty) = out;
    let err = faulty[1].clone().expect_err("the injected panic is an error");
    assert!(err.contains("stopped on every thread") && err.contains("on purpose"), "{err}");
    // A failed step with learning rate 0 changes nothing: the steps around it match a clean run.
    assert_eq!(clean[0], faulty[0]);
    assert_eq!(clean[1], faulty[2], "training goes on from where it was");
}
