//! From a mutated graph to a candidate: pruned, printed to `.cell` source with the one printer,
//! checked again from that source (so every candidate is a file a user can read and run), and
//! identified by its canonical hash. Invalid graphs are rejected with the reason.

use super::{canon, edit};
use crate::ir::{Graph, Op};
use crate::workspace::CellSource;

/// Largest candidate, in computed nodes and parameters: keeps runs short and the search in the
/// region the paper explored.
pub const MAX_NODES: usize = 48;
pub const MAX_PARAMS: usize = 24;

/// A valid candidate cell.
#[derive(Clone, Debug)]
pub struct Candidate {
    pub source: CellSource,
    /// The canonical hash: equal for cells that differ only by renaming, argument order of
    /// commutative operations, grouping of sums and products, or simplification.
    pub hash: String,
    /// The graph lowered from `source` (what will be trained).
    pub graph: Graph,
}

/// Makes `g` a candidate named `name`, or says why it is not a valid cell.
pub fn candidate(g: &Graph, name: &str) -> Result<Candidate, String> {
    let mut pruned = edit::prune(g);
    pruned.sig.name = name.to_string();
    let text = crate::syntax::print::cell(&crate::ir::raise::cell_def(&pruned));
    let source = CellSource { name: name.to_string(), file: format!("{name}.cell"), text };
    let cell = source.checked().map_err(|_| "does not check (shapes or names)".to_string())?;
    let graph = crate::ir::lower(&cell);
    let computed = graph.reachable(&graph.next).iter().filter(|&&id| graph.node(id).op.arity() > 0).count();
    if computed > MAX_NODES {
        return Err(format!("too large ({computed} nodes)"));
    }
    if graph.sig.params.len() > MAX_PARAMS {
        return Err(format!("too many parameters ({})", graph.sig.params.len()));
    }
    let reads = |op_is: &dyn Fn(Op) -> bool| {
        graph.reachable(&[graph.next[graph.sig.output]]).iter().any(|&id| op_is(graph.node(id).op))
    };
    if !reads(&|op| op == Op::Input) {
        return Err("the output ignores the input".into());
    }
    let recurrent =
        graph.next.iter().any(|&n| graph.reachable(&[n]).iter().any(|&id| matches!(graph.node(id).op, Op::State(_))));
    if !recurrent {
        return Err("no state is read: not recurrent".into());
    }
    let hash = canon::hash(&graph);
    Ok(Candidate { source, hash, graph })
}

/// The candidate of a cell given as source (the seed population: GRU, LSTM, user cells).
pub fn from_source(source: &CellSource) -> Result<Candidate, String> {
    let cell = source.checked()?;
    let graph = crate::ir::lower(&cell);
    Ok(Candidate { hash: canon::hash(&graph), source: source.clone(), graph })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn std_graph(name: &str) -> Graph {
        let ws = crate::workspace::Workspace::new();
        crate::ir::lower(&ws.check_std(name).expect("std").cells[0])
    }

    #[test]
    fn a_std_cell_round_trips_to_the_same_hash() {
        for name in ["gru", "lstm", "mut1", "mut2", "mut3"] {
            let g = std_graph(name);
            let c = candidate(&g, "c1").unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(c.hash, canon::hash(&g), "{name}:\n{}", c.source.text);
        }
    }

    #[test]
    fn most_mutations_of_the_gru_are_valid_cells_and_print_back() {
        let g = std_graph("gru");
        let mut rng = Rng::new(5);
        let (mut valid, mut tried) = (0, 0);
        for _ in 0..200 {
            let Some((m, _)) = super::super::mutate::mutate(&g, &mut rng, false) else { continue };
            tried += 1;
            if let Ok(c) = candidate(&m, "c9") {
                valid += 1;
                // The printed source is the cell: checking it again gives the same hash.
                assert_eq!(from_source(&c.source).unwrap().hash, c.hash, "{}", c.source.text);
            }
        }
        assert!(valid * 4 >= tried, "only {valid} of {tried} mutations valid");
    }
}
