//! Named f32 tensors in the safetensors format, with errors that name the tensor at fault.
//!
//! This is the interop layer of `cellc eval` and `cellc init` and the body of every checkpoint:
//! decoding and encoding bytes only; callers read and write the files. The format has no
//! checksum, so every file cellc writes carries a SHA-256 of each tensor's bytes and of the
//! metadata in its metadata (key [`DIGEST_KEY`]); decoding verifies them when present, so a
//! flipped bit or a NaN written over a weight is an error naming the tensor, not a quiet result.

use std::collections::BTreeMap;

use ndarray::ArrayD;
use safetensors::tensor::{Dtype, SafeTensors};
use sha2::{Digest, Sha256};

/// The metadata key of the digests: `{"tensors": {name: sha256 hex}, "metadata": sha256 hex}`
/// (the metadata's digest covers every other key, in name order).
pub const DIGEST_KEY: &str = "cellc.sha256";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn tensor_digest(a: &ArrayD<f32>) -> String {
    let mut h = Sha256::new();
    for v in a.iter() {
        h.update(v.to_le_bytes());
    }
    hex(&h.finalize())
}

fn metadata_digest(metadata: &BTreeMap<String, String>) -> String {
    let mut h = Sha256::new();
    for (k, v) in metadata.iter().filter(|(k, _)| *k != DIGEST_KEY) {
        for part in [k, v] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
    }
    hex(&h.finalize())
}

/// A set of named f32 tensors.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TensorSet {
    pub tensors: BTreeMap<String, ArrayD<f32>>,
    /// The file's free-form `__metadata__`.
    pub metadata: BTreeMap<String, String>,
}

impl TensorSet {
    /// Decodes a safetensors file, verifying its digests when it has them. `what` names the file
    /// in errors.
    pub fn decode(bytes: &[u8], what: &str) -> Result<TensorSet, String> {
        Ok(TensorSet::decode_checked(bytes, what)?.0)
    }

    /// Decodes and verifies: the set (without the digest key) and whether it carried digests
    /// (files written by cellc do; files from elsewhere may not).
    pub fn decode_checked(bytes: &[u8], what: &str) -> Result<(TensorSet, bool), String> {
        let mut set = TensorSet::decode_raw(bytes, what)?;
        let Some(digests) = set.metadata.remove(DIGEST_KEY) else { return Ok((set, false)) };
        let digests: serde_json::Value =
            serde_json::from_str(&digests).map_err(|e| format!("{what}: damaged digest metadata ({e})"))?;
        if digests["metadata"].as_str() != Some(metadata_digest(&set.metadata).as_str()) {
            return Err(format!("{what}: the metadata is damaged (it does not match the digest written with it)"));
        }
        let listed = digests["tensors"].as_object().ok_or_else(|| format!("{what}: damaged digest metadata"))?;
        for (name, t) in &set.tensors {
            match listed.get(name).and_then(|d| d.as_str()) {
                Some(d) if d == tensor_digest(t) => {}
                Some(_) => {
                    return Err(format!("{what}: tensor `{name}` is damaged (its bytes do not match its digest)"));
                }
                None => return Err(format!("{what}: tensor `{name}` was not written with this file")),
            }
        }
        if let Some(name) = listed.keys().find(|n| !set.tensors.contains_key(*n)) {
            return Err(format!("{what}: tensor `{name}` is missing (the file was written with it)"));
        }
        Ok((set, true))
    }

    /// Fails on the first weight that is NaN or infinite, naming the tensor and the index.
    pub fn check_finite(&self, what: &str) -> Result<(), String> {
        for (name, t) in &self.tensors {
            if let Some(i) = t.iter().position(|v| !v.is_finite()) {
                let v = t.iter().nth(i).copied().unwrap_or(f32::NAN);
                return Err(format!("{what}: tensor `{name}` holds {v} at index {i} (weights must be finite)"));
            }
        }
        Ok(())
    }

    fn decode_raw(bytes: &[u8], what: &str) -> Result<TensorSet, String> {
        let st = SafeTensors::deserialize(bytes).map_err(|e| format!("{what}: not a valid safetensors file ({e})"))?;
        let (_, meta) = SafeTensors::read_metadata(bytes).map_err(|e| format!("{what}: {e}"))?;
        let metadata = meta.metadata().clone().unwrap_or_default().into_iter().collect();
        let mut tensors = BTreeMap::new();
        for (name, view) in st.tensors() {
            if view.dtype() != Dtype::F32 {
                return Err(format!("{what}: tensor `{name}` has dtype {:?}; cellc reads F32 tensors", view.dtype()));
            }
            let data: Vec<f32> =
                view.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
            let array = ArrayD::from_shape_vec(view.shape().to_vec(), data)
                .map_err(|e| format!("{what}: tensor `{name}`: {e}"))?;
            tensors.insert(name, array);
        }
        Ok(TensorSet { tensors, metadata })
    }

    /// Encodes as a safetensors file. Tensors and metadata are written in name order, so the same
    /// tensors always give the same bytes (the format's reference writer orders metadata by hash).
    /// The digests of every tensor and of the metadata go in as [`DIGEST_KEY`].
    pub fn encode(&self) -> Vec<u8> {
        let mut header = serde_json::Map::new();
        let digests = serde_json::json!({
            "tensors": self.tensors.iter().map(|(n, t)| (n.clone(), tensor_digest(t))).collect::<BTreeMap<_, _>>(),
            "metadata": metadata_digest(&self.metadata),
        });
        let mut meta: serde_json::Map<String, serde_json::Value> =
            self.metadata.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect();
        meta.insert(DIGEST_KEY.into(), serde_json::Value::String(digests.to_string()));
        header.insert("__metadata__".into(), serde_json::Value::Object(meta));
        let mut data = vec![];
        for (name, a) in &self.tensors {
            let start = data.len();
            data.extend(a.iter().flat_map(|v| v.to_le_bytes()));
            let info = serde_json::json!({"dtype": "F32", "shape": a.shape(), "data_offsets": [start, data.len()]});
            header.insert(name.clone(), info);
        }
        // serde_json's map keeps keys sorted (no `preserve_order` feature), so this is canonical.
        let mut text = serde_json::Value::Object(header).to_string().into_bytes();
        // Pad the header with spaces so the data starts 8-byte aligned, as the format recommends.
        while !(8 + text.len()).is_multiple_of(8) {
            text.push(b' ');
        }
        let mut out = (text.len() as u64).to_le_bytes().to_vec();
        out.extend(text);
        out.extend(data);
        out
    }

    /// The tensor `name`, which must have exactly `shape` (`labels` name the axes in errors,
    /// like `["T", "B", "D"]`). `what` names the file.
    pub fn take(&mut self, name: &str, shape: &[usize], labels: &[&str], what: &str) -> Result<ArrayD<f32>, String> {
        let expected = describe_shape(shape, labels);
        let Some(t) = self.tensors.remove(name) else {
            return Err(format!("{what}: missing tensor `{name}` (expected shape {expected})"));
        };
        if t.shape() != shape {
            return Err(format!("{what}: tensor `{name}` has shape {:?}, expected {expected}", t.shape()));
        }
        Ok(t)
    }

    /// The tensor `name` with `rank` axes, whatever their sizes (to learn T, B, D from `x`).
    pub fn take_rank(&mut self, name: &str, labels: &[&str], what: &str) -> Result<ArrayD<f32>, String> {
        let want = format!("[{}]", labels.join(", "));
        let Some(t) = self.tensors.remove(name) else {
            return Err(format!("{what}: missing tensor `{name}` (expected shape {want})"));
        };
        if t.ndim() != labels.len() {
            return Err(format!("{what}: tensor `{name}` has shape {:?}, expected {want}", t.shape()));
        }
        Ok(t)
    }

    /// The tensors named `layer<l>.<name>`, renamed `<name>`; `None` when there are none.
    pub fn layer(&self, l: usize) -> Option<TensorSet> {
        let prefix = format!("layer{l}.");
        let tensors: std::collections::BTreeMap<String, ndarray::ArrayD<f32>> =
            self.tensors.iter().filter_map(|(k, v)| Some((k.strip_prefix(&prefix)?.to_string(), v.clone()))).collect();
        (!tensors.is_empty()).then(|| TensorSet { tensors, metadata: self.metadata.clone() })
    }

    /// Fails on any tensor not yet taken: a misspelt name should not be silently ignored.
    pub fn expect_empty(&self, what: &str, allowed: &str) -> Result<(), String> {
        match self.tensors.keys().next() {
            None => Ok(()),
            Some(extra) => Err(format!("{what}: unexpected tensor `{extra}` ({allowed})")),
        }
    }
}

/// `[T=3, B=2, D=4]` when labels are given, else `[3, 2, 4]`.
fn describe_shape(shape: &[usize], labels: &[&str]) -> String {
    let parts: Vec<String> = shape
        .iter()
        .enumerate()
        .map(|(i, n)| match labels.get(i) {
            Some(l) if !l.is_empty() => format!("{l}={n}"),
            _ => n.to_string(),
        })
        .collect();
    format!("[{}]", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_metadata() {
        let mut set = TensorSet::default();
        set.tensors.insert("W".into(), ArrayD::from_shape_vec(vec![2, 3], vec![1., 2., 3., 4., 5., 6.]).unwrap());
        set.tensors.insert("b".into(), ArrayD::from_shape_vec(vec![2], vec![-1., 0.5]).unwrap());
        set.metadata.insert("cell".into(), "gru".into());
        let back = TensorSet::decode(&set.encode(), "t").unwrap();
        assert_eq!(back, set);
    }

    #[test]
    fn errors_name_the_tensor_and_shape() {
        let mut set = TensorSet::default();
        set.tensors.insert("x".into(), ArrayD::zeros(vec![2, 3]));
        assert_eq!(
            set.clone().take("x", &[4, 2, 3], &["T", "B", "D"], "IN").unwrap_err(),
            "IN: tensor `x` has shape [2, 3], expected [T=4, B=2, D=3]"
        );
        assert_eq!(
            set.take("h", &[2, 5], &["B", "H"], "IN").unwrap_err(),
            "IN: missing tensor `h` (expected shape [B=2, H=5])"
        );
        assert!(TensorSet::decode(b"garbage", "W").unwrap_err().starts_with("W: not a valid safetensors file"));
    }
}
