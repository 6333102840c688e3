//! Family trees: boxes (a name and a line of detail) joined to their parents, roots at the top,
//! each level one row; leaves spread evenly, a parent centred over its children. Drawn through
//! the same [`Canvas`] as the charts, so SVG and PNG agree.

use super::{Anchor, Canvas, Rgb};

/// One box of a tree.
#[derive(Clone, Debug)]
pub struct TreeNode {
    pub label: String,
    pub detail: String,
    /// Text on the edge from the parent (the mutation).
    pub edge: String,
    /// Index of the parent in the tree's node list (parents come first).
    pub parent: Option<usize>,
    pub highlight: bool,
}

/// A tree under a title.
#[derive(Clone, Debug)]
pub struct Tree {
    pub title: String,
    pub nodes: Vec<TreeNode>,
}

const BOX_W: f64 = 150.0;
const BOX_H: f64 = 34.0;
/// Horizontal distance between neighbouring leaves: a box and room for its edge label.
const COLUMN: f64 = 220.0;
const ROW_H: f64 = 90.0;
/// Edge labels are cut to this many characters (8 px each in the PNG font).
const EDGE_CHARS: usize = 26;
const TOP: f64 = 50.0;

fn depth(tree: &Tree, i: usize) -> usize {
    let mut d = 0;
    let mut at = tree.nodes[i].parent;
    while let Some(p) = at {
        d += 1;
        at = tree.nodes[p].parent;
    }
    d
}

/// Horizontal centre of every node, in box widths.
fn layout(tree: &Tree) -> Vec<f64> {
    let n = tree.nodes.len();
    let children: Vec<Vec<usize>> =
        (0..n).map(|i| (0..n).filter(|&c| tree.nodes[c].parent == Some(i)).collect()).collect();
    let mut x = vec![0.0; n];
    let mut next_leaf = 0.0;
    fn place(i: usize, children: &[Vec<usize>], x: &mut [f64], next_leaf: &mut f64) {
        if children[i].is_empty() {
            x[i] = *next_leaf;
            *next_leaf += 1.0;
            return;
        }
        for &c in &children[i] {
            place(c, children, x, next_leaf);
        }
        x[i] = children[i].iter().map(|&c| x[c]).sum::<f64>() / children[i].len() as f64;
    }
    for root in (0..n).filter(|&i| tree.nodes[i].parent.is_none()) {
        place(root, &children, &mut x, &mut next_leaf);
    }
    x
}

fn size(tree: &Tree) -> (f64, f64) {
    let leaves = layout(tree).iter().copied().fold(0.0_f64, f64::max) + 1.0;
    let levels = (0..tree.nodes.len()).map(|i| depth(tree, i)).max().unwrap_or(0) + 1;
    ((leaves * COLUMN + 40.0).max(500.0), TOP + levels as f64 * ROW_H + 20.0)
}

/// Draws the tree.
pub fn draw_tree(tree: &Tree, c: &mut dyn Canvas) {
    let (w, _) = size(tree);
    let black: Rgb = (0, 0, 0);
    let grey: Rgb = (110, 110, 110);
    c.text((w / 2.0, 26.0), &tree.title, super::title_size(&tree.title, w), Anchor::Middle, black);
    let x = layout(tree);
    let centre = |i: usize| (20.0 + (x[i] + 0.5) * COLUMN, TOP + depth(tree, i) as f64 * ROW_H);
    for (i, node) in tree.nodes.iter().enumerate() {
        let (cx, top) = centre(i);
        if let Some(p) = node.parent {
            let (px, ptop) = centre(p);
            c.line((px, ptop + BOX_H), (cx, top), grey, 1.5);
            // The label sits just above the child's box, so siblings' labels never overlap.
            let mut edge = node.edge.clone();
            if edge.chars().count() > EDGE_CHARS {
                edge = edge.chars().take(EDGE_CHARS - 3).collect::<String>() + "...";
            }
            c.text((cx, top - 6.0), &edge, 8.0, Anchor::Middle, grey);
        }
        let color: Rgb = if node.highlight { (213, 94, 0) } else { (0, 114, 178) };
        let (l, r, b) = (cx - BOX_W / 2.0, cx + BOX_W / 2.0, top + BOX_H);
        c.polyline(&[(l, top), (r, top), (r, b), (l, b), (l, top)], color, if node.highlight { 2.5 } else { 1.5 });
        c.text((cx, top + 14.0), &node.label, 12.0, Anchor::Middle, black);
        c.text((cx, top + 28.0), &node.detail, 10.0, Anchor::Middle, grey);
    }
}

/// Writes the tree as SVG or PNG, by the path's extension (atomically).
pub fn write_tree(tree: &Tree, path: &std::path::Path) -> Result<(), String> {
    let (w, h) = size(tree);
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    let bytes = match ext.as_deref() {
        Some("svg") => {
            let mut s = super::svg::Svg::new(w, h);
            draw_tree(tree, &mut s);
            s.finish().into_bytes()
        }
        Some("png") => {
            let mut r = super::raster::Raster::new(w as usize, h as usize);
            draw_tree(tree, &mut r);
            r.encode_png()?
        }
        _ => return Err(format!("{}: a plot is written as .svg or .png", path.display())),
    };
    crate::io::write_atomic(path, &bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents_sit_over_their_children() {
        let node = |label: &str, parent| TreeNode {
            label: label.into(),
            detail: String::new(),
            edge: String::new(),
            parent,
            highlight: false,
        };
        let tree = Tree { title: "t".into(), nodes: vec![node("a", None), node("b", Some(0)), node("c", Some(0))] };
        let x = layout(&tree);
        assert_eq!((x[1], x[2], x[0]), (0.0, 1.0, 0.5));
        assert_eq!(depth(&tree, 2), 1);
    }
}
