//! What the library writes survives: atomic writes (temporary file + rename), so an interrupted
//! run never leaves a half-written file where a good one was, and floats that JSON cannot hold
//! (infinities, NaN) written so that they read back.

use std::io::Write;
use std::path::Path;

/// Writes `bytes` to a temporary file beside `path`, syncs it, then renames it over `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomic_all(&[(path, bytes)])
}

/// Writes several files so that either all are replaced or none is: every temporary file is
/// written and synced first (a full disk fails here, and every temporary file is removed), then
/// each is renamed over its target and the directories are synced.
pub fn write_atomic_all(files: &[(&Path, &[u8])]) -> std::io::Result<()> {
    let tmp_of = |path: &Path| {
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        (dir.to_path_buf(), dir.join(format!(".{name}.tmp-{}", std::process::id())))
    };
    let written = files.iter().try_for_each(|(path, bytes)| {
        let mut f = std::fs::File::create(tmp_of(path).1)?;
        f.write_all(bytes)?;
        f.sync_all()
    });
    if let Err(e) = written {
        for (path, _) in files {
            let _ = std::fs::remove_file(tmp_of(path).1);
        }
        return Err(e);
    }
    for (path, _) in files {
        let (dir, tmp) = tmp_of(path);
        std::fs::rename(&tmp, path)?;
        // The rename itself survives a power cut only once the directory is synced.
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// A float in JSON that may be infinite or NaN (a perplexity of exp(800), a diverged loss): JSON
/// has no such numbers and serde_json writes them as `null`, which then fails to read back as a
/// float. Written as the strings "inf", "-inf" and "NaN"; read from those, from numbers, and from
/// `null` (NaN: what older files hold). Use with `#[serde(with = "crate::io::float")]`.
pub mod float {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        match *v {
            v if v.is_finite() => s.serialize_f64(v),
            v if v.is_nan() => s.serialize_str("NaN"),
            v if v > 0.0 => s.serialize_str("inf"),
            _ => s.serialize_str("-inf"),
        }
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Stored {
        Number(f64),
        Text(String),
        Null(()),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        match Stored::deserialize(d)? {
            Stored::Number(v) => Ok(v),
            Stored::Null(()) => Ok(f64::NAN),
            Stored::Text(t) => match t.as_str() {
                "inf" => Ok(f64::INFINITY),
                "-inf" => Ok(f64::NEG_INFINITY),
                "NaN" => Ok(f64::NAN),
                other => Err(serde::de::Error::custom(format!("`{other}` is not a number"))),
            },
        }
    }
}

/// [`float`] for a learning curve's `[step, value]` pairs.
pub mod float_pairs {
    use serde::ser::SerializeSeq;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    struct Point(u64, #[serde(with = "super::float")] f64);

    pub fn serialize<S: Serializer>(v: &[(u64, f64)], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(v.len()))?;
        for &(step, value) in v {
            seq.serialize_element(&Point(step, value))?;
        }
        seq.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(u64, f64)>, D::Error> {
        Ok(Vec::<Point>::deserialize(d)?.into_iter().map(|Point(s, v)| (s, v)).collect())
    }
}

#[cfg(test)]
mod tests {
    #[derive(Debug, serde::Serialize, serde::Deserialize)]
    struct R {
        #[serde(with = "super::float")]
        x: f64,
        #[serde(with = "super::float_pairs")]
        curve: Vec<(u64, f64)>,
    }

    #[test]
    fn non_finite_floats_survive_json() {
        for x in [1.5, f64::INFINITY, f64::NEG_INFINITY] {
            let json = serde_json::to_string(&R { x, curve: vec![(1, x), (2, 0.25)] }).unwrap();
            let back: R = serde_json::from_str(&json).unwrap();
            assert_eq!((back.x, back.curve.clone()), (x, vec![(1, x), (2, 0.25)]), "{json}");
        }
        let nan: R = serde_json::from_str(r#"{"x":"NaN","curve":[[1,null]]}"#).unwrap();
        assert!(nan.x.is_nan() && nan.curve[0].1.is_nan());
        let old: R = serde_json::from_str(r#"{"x":null,"curve":[]}"#).unwrap();
        assert!(old.x.is_nan(), "null, as older files hold, reads as NaN");
        assert!(serde_json::from_str::<R>(r#"{"x":"lots","curve":[]}"#).is_err());
    }
}
