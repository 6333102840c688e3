//! The standard cells: the `std/*.cell` files, embedded in the binary and looked up by name.

/// (name, source) of every standard cell, in the order `cellc list` shows them.
pub const STD_CELLS: &[(&str, &str)] = &[
    ("tanh_rnn", include_str!("../std/tanh_rnn.cell")),
    ("lstm", include_str!("../std/lstm.cell")),
    ("lstm_f", include_str!("../std/lstm_f.cell")),
    ("lstm_i", include_str!("../std/lstm_i.cell")),
    ("lstm_o", include_str!("../std/lstm_o.cell")),
    ("lstm_b", include_str!("../std/lstm_b.cell")),
    ("gru", include_str!("../std/gru.cell")),
    ("gru_torch", include_str!("../std/gru_torch.cell")),
    ("lstm_ln", include_str!("../std/lstm_ln.cell")),
    ("gru_ln", include_str!("../std/gru_ln.cell")),
    ("mut1", include_str!("../std/mut1.cell")),
    ("mut2", include_str!("../std/mut2.cell")),
    ("mut3", include_str!("../std/mut3.cell")),
    ("mingru", include_str!("../std/mingru.cell")),
    ("minlstm", include_str!("../std/minlstm.cell")),
    ("mgu", include_str!("../std/mgu.cell")),
    ("indrnn", include_str!("../std/indrnn.cell")),
    ("ugrnn", include_str!("../std/ugrnn.cell")),
];

/// The source of the standard cell `name`.
pub fn source(name: &str) -> Option<&'static str> {
    STD_CELLS.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
}

/// Every standard cell name.
pub fn names() -> impl Iterator<Item = &'static str> {
    STD_CELLS.iter().map(|(n, _)| *n)
}

/// The name a standard cell's file is reported under.
pub fn file_name(name: &str) -> String {
    format!("std/{name}.cell")
}
