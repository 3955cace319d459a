//! The LIBSVM text format, read into dense tensors (UCI Adult as "a9a", the tabular data
//! set of the paper's Table 2).
//!
//! Each line is `label index:value index:value ...`: a numeric label, then the non-zero
//! features with 1-based, strictly ascending indices. Blank lines and `#` comments are
//! skipped. Labels become class ids by rank: the sorted distinct label values of all the
//! files read together map to 0..K (so −1/+1 become 0/1, NIID-Bench's (y + 1)/2). The
//! feature count d is given, or is the largest index over all the files (Adult's test
//! file a9a.t never uses feature 123, so reading it alone would give d = 122).
use anyhow::{bail, ensure, Context, Result};
use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};

/// Adult ("a9a"): 123 binary features.
pub const ADULT_FEATURES: usize = 123;
/// Adult's training and test file names.
pub const ADULT_TRAIN: &str = "a9a";
pub const ADULT_TEST: &str = "a9a.t";

/// Where Adult's files come from.
pub fn adult_how_to_get() -> &'static str {
    "Get a9a and a9a.t (UCI Adult, 123 binary features, labels -1/+1) from \
     https://www.csie.ntu.edu.tw/~cjlin/libsvmtools/datasets/binary.html#a9a and put them \
     there."
}

/// One LIBSVM file, still sparse.
#[derive(Debug, Clone, PartialEq)]
pub struct Sparse {
    /// Where the samples came from (for messages).
    pub source: PathBuf,
    /// The label value of each sample.
    pub labels: Vec<f64>,
    /// Each sample's non-zero features as (0-based index, value), ascending.
    pub rows: Vec<Vec<(u32, f64)>>,
    /// The 1-based line number of each sample.
    pub lines: Vec<usize>,
}

impl Sparse {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The largest 1-based feature index used (0 if none).
    pub fn max_index(&self) -> usize {
        self.rows
            .iter()
            .filter_map(|r| r.last())
            .map(|&(i, _)| i as usize + 1)
            .max()
            .unwrap_or(0)
    }

    /// The features as a dense [N, `features`] tensor of `kind`; an index beyond
    /// `features` is an error naming its file and line.
    pub fn dense(&self, features: usize, kind: Kind) -> Result<Tensor> {
        let mut values = vec![0f64; self.len() * features];
        for (r, row) in self.rows.iter().enumerate() {
            if let Some(&(last, _)) = row.last() {
                ensure!(
                    (last as usize) < features,
                    "{}:{}: feature index {} exceeds the {features} features expected",
                    self.source.display(),
                    self.lines[r],
                    last + 1
                );
            }
            let dense = &mut values[r * features..(r + 1) * features];
            for &(i, v) in row {
                dense[i as usize] = v;
            }
        }
        Ok(Tensor::from_slice(&values)
            .view([self.len() as i64, features as i64])
            .to_kind(kind))
    }
}

/// Reads a LIBSVM file.
pub fn read(path: &Path) -> Result<Sparse> {
    let text = std::fs::read_to_string(path).with_context(|| {
        if path.exists() {
            format!("cannot read LIBSVM file {}", path.display())
        } else {
            format!(
                "LIBSVM file {} not found. Expected a text file of lines `label \
                 index:value ...` (1-based ascending indices), such as Adult's a9a. {}",
                path.display(),
                adult_how_to_get()
            )
        }
    })?;
    parse(&text, path)
}

/// Parses LIBSVM text; `source` names it in error messages (`source:line: ...`).
pub fn parse(text: &str, source: &Path) -> Result<Sparse> {
    let mut out = Sparse {
        source: source.to_path_buf(),
        labels: Vec::new(),
        rows: Vec::new(),
        lines: Vec::new(),
    };
    for (l, line) in text.lines().enumerate() {
        let at = || format!("{}:{}", source.display(), l + 1);
        let content = line.split('#').next().unwrap_or("");
        let mut tokens = content.split_ascii_whitespace();
        let Some(label) = tokens.next() else {
            continue;
        };
        let label: f64 = match label.parse() {
            Ok(v) if f64::is_finite(v) => v,
            _ => bail!(
                "{}: label {label:?} is not a finite number; a LIBSVM line is \
                 `label index:value ...`",
                at()
            ),
        };
        let mut row: Vec<(u32, f64)> = Vec::new();
        for token in tokens {
            let Some((index, value)) = token.split_once(':') else {
                bail!("{}: {token:?} is not an `index:value` pair", at());
            };
            if index == "qid" {
                bail!("{}: `qid` (ranking data) is not supported", at());
            }
            let index: u32 = match index.parse() {
                Ok(i) if i >= 1 => i,
                _ => bail!(
                    "{}: feature index {index:?} in {token:?} is not an integer ≥ 1 \
                     (LIBSVM indices are 1-based)",
                    at()
                ),
            };
            let value: f64 = match value.parse() {
                Ok(v) if f64::is_finite(v) => v,
                _ => bail!(
                    "{}: value {value:?} of feature {index} is not a finite number",
                    at()
                ),
            };
            if let Some(&(previous, _)) = row.last() {
                ensure!(
                    index > previous + 1,
                    "{}: feature index {index} after {}; indices must be strictly ascending",
                    at(),
                    previous + 1
                );
            }
            row.push((index - 1, value));
        }
        out.labels.push(label);
        out.rows.push(row);
        out.lines.push(l + 1);
    }
    Ok(out)
}

/// The class ids of label values: sorted distinct values → 0..K.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelMap {
    /// The label value of each class id.
    pub values: Vec<f64>,
}

impl LabelMap {
    /// The distinct labels of all `sets`, sorted.
    pub fn of(sets: &[&Sparse]) -> Self {
        let mut values: Vec<f64> = sets.iter().flat_map(|s| s.labels.iter().copied()).collect();
        values.sort_by(f64::total_cmp);
        values.dedup();
        Self { values }
    }

    /// K.
    pub fn classes(&self) -> usize {
        self.values.len()
    }

    /// The class id of a label value.
    pub fn id(&self, value: f64) -> Option<i64> {
        self.values
            .binary_search_by(|v| v.total_cmp(&value))
            .ok()
            .map(|i| i as i64)
    }

    /// The class ids of a set's labels as int64 [N].
    pub fn ids(&self, set: &Sparse) -> Result<Tensor> {
        let ids = set
            .labels
            .iter()
            .zip(&set.lines)
            .map(|(&v, line)| {
                self.id(v).with_context(|| {
                    format!(
                        "{}:{line}: label {v} is not one of the known labels {:?}",
                        set.source.display(),
                        self.values
                    )
                })
            })
            .collect::<Result<Vec<i64>>>()?;
        Ok(Tensor::from_slice(&ids))
    }
}

/// Dense features and class ids.
#[derive(Debug)]
pub struct Split {
    /// [N, d] of the requested kind.
    pub x: Tensor,
    /// int64 [N], in 0..K.
    pub y: Tensor,
}

impl Split {
    pub fn len(&self) -> i64 {
        self.y.size()[0]
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A LIBSVM training file and optional test file, read with one feature count and one
/// label map.
#[derive(Debug)]
pub struct Dataset {
    pub train: Split,
    pub test: Option<Split>,
    /// d.
    pub features: usize,
    pub labels: LabelMap,
}

/// Reads `train` (and `test`) as dense `kind` features. `features` = None takes the
/// largest index over both files; a given count must cover every index used.
pub fn load(
    train: &Path,
    test: Option<&Path>,
    features: Option<usize>,
    kind: Kind,
) -> Result<Dataset> {
    let train = read(train)?;
    ensure!(
        !train.is_empty(),
        "{}: no samples (empty LIBSVM file)",
        train.source.display()
    );
    let test = test.map(read).transpose()?;
    let sets: Vec<&Sparse> = std::iter::once(&train).chain(test.as_ref()).collect();
    let features = match features {
        Some(d) => d,
        None => sets.iter().map(|s| s.max_index()).max().unwrap_or(0),
    };
    ensure!(
        features > 0,
        "{}: no feature is ever non-zero; give the feature count",
        train.source.display()
    );
    let labels = LabelMap::of(&sets);
    let split = |s: &Sparse| -> Result<Split> {
        Ok(Split {
            x: s.dense(features, kind)?,
            y: labels.ids(s)?,
        })
    };
    Ok(Dataset {
        train: split(&train)?,
        test: test.as_ref().map(split).transpose()?,
        features,
        labels,
    })
}

/// Adult from `dir`/a9a and `dir`/a9a.t with its 123 features.
pub fn load_adult(dir: &Path, kind: Kind) -> Result<Dataset> {
    for name in [ADULT_TRAIN, ADULT_TEST] {
        let path = dir.join(name);
        ensure!(
            path.is_file(),
            "Adult file {} not found. {}",
            path.display(),
            adult_how_to_get()
        );
    }
    load(
        &dir.join(ADULT_TRAIN),
        Some(&dir.join(ADULT_TEST)),
        Some(ADULT_FEATURES),
        kind,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn parse_err(text: &str) -> String {
        format!("{:#}", parse(text, Path::new("bad.svm")).unwrap_err())
    }

    #[test]
    fn parses_labels_features_comments_and_blank_lines() {
        let text = "# a header comment\n\
                    -1 3:1 11:0.5 \n\
                    \n\
                    +1 1:2.5 4:-1   # trailing comment\n\
                    +1\n";
        let s = parse(text, Path::new("tiny")).unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(s.labels, vec![-1.0, 1.0, 1.0]);
        assert_eq!(s.lines, vec![2, 4, 5]);
        assert_eq!(s.rows[0], vec![(2, 1.0), (10, 0.5)]);
        assert!(s.rows[2].is_empty());
        assert_eq!(s.max_index(), 11);
        let x = s.dense(12, Kind::Double).unwrap();
        assert_eq!(x.size(), vec![3, 12]);
        assert_eq!(
            Vec::<f64>::try_from(&x.get(1)).unwrap(),
            [vec![2.5, 0.0, 0.0, -1.0], vec![0.0; 8]].concat()
        );
        assert_eq!(x.get(2).abs().sum(Kind::Double).double_value(&[]), 0.0);
        let e = format!("{:#}", s.dense(10, Kind::Float).unwrap_err());
        assert!(
            e.contains("tiny:2: feature index 11 exceeds the 10 features"),
            "{e}"
        );
    }

    #[test]
    fn labels_map_to_ranks_over_all_files() {
        let dir = tempfile::tempdir().unwrap();
        // Multiclass labels; the test file holds a label the training file lacks.
        let train = write(dir.path(), "train", "3 1:1\n1 2:1\n3 3:1\n");
        let test = write(dir.path(), "test", "2 1:1\n1 1:1\n");
        let data = load(&train, Some(&test), None, Kind::Float).unwrap();
        assert_eq!(data.labels.values, vec![1.0, 2.0, 3.0]);
        assert_eq!(data.labels.classes(), 3);
        assert_eq!(Vec::<i64>::try_from(&data.train.y).unwrap(), vec![2, 0, 2]);
        let test = data.test.unwrap();
        assert_eq!(Vec::<i64>::try_from(&test.y).unwrap(), vec![1, 0]);
        assert_eq!(test.y.kind(), Kind::Int64);
        assert_eq!(data.train.x.kind(), Kind::Float);
        // ±1 labels become 0/1.
        let pm = write(dir.path(), "pm", "+1 1:1\n-1 1:1\n");
        let data = load(&pm, None, None, Kind::Float).unwrap();
        assert_eq!(Vec::<i64>::try_from(&data.train.y).unwrap(), vec![1, 0]);
        assert_eq!(data.labels.id(-1.0), Some(0));
        assert_eq!(data.labels.id(0.0), None);
    }

    #[test]
    fn feature_count_is_given_or_the_largest_index_of_both_files() {
        let dir = tempfile::tempdir().unwrap();
        let train = write(dir.path(), "train", "-1 1:1 3:1\n+1 2:1\n");
        // The test file uses a larger index than training, like a9a vice versa.
        let test = write(dir.path(), "test", "-1 5:1\n");
        let data = load(&train, Some(&test), None, Kind::Double).unwrap();
        assert_eq!(data.features, 5);
        assert_eq!(data.train.x.size(), vec![2, 5]);
        assert_eq!(data.test.as_ref().unwrap().x.size(), vec![1, 5]);
        assert_eq!(data.test.unwrap().x.double_value(&[0, 4]), 1.0);
        let data = load(&train, None, Some(8), Kind::Double).unwrap();
        assert_eq!(data.train.x.size(), vec![2, 8]);
        let e = format!(
            "{:#}",
            load(&train, Some(&test), Some(4), Kind::Double).unwrap_err()
        );
        assert!(
            e.contains("test:1: feature index 5 exceeds the 4 features"),
            "{e}"
        );
    }

    #[test]
    fn malformed_lines_name_their_file_and_line() {
        let cases = [
            (
                "1 1:1\nx 2:1\n",
                "bad.svm:2: label \"x\" is not a finite number",
            ),
            ("1 1:1\nnan 2:1\n", "bad.svm:2: label \"nan\""),
            ("1 1:1 2\n", "bad.svm:1: \"2\" is not an `index:value` pair"),
            (
                "1 0:1\n",
                "bad.svm:1: feature index \"0\" in \"0:1\" is not an integer ≥ 1",
            ),
            ("1 a:1\n", "feature index \"a\""),
            ("1 -2:1\n", "feature index \"-2\""),
            ("\n\n1 2:x\n", "bad.svm:3: value \"x\" of feature 2"),
            ("1 2:inf\n", "value \"inf\""),
            (
                "1 3:1 2:1\n",
                "bad.svm:1: feature index 2 after 3; indices must be strictly ascending",
            ),
            ("1 3:1 3:1\n", "feature index 3 after 3"),
            ("1 qid:3 1:1\n", "`qid`"),
        ];
        for (text, expected) in cases {
            let e = parse_err(text);
            assert!(e.contains(expected), "{text:?}: {e}");
        }
    }

    #[test]
    fn missing_and_empty_files_say_what_is_expected() {
        let dir = tempfile::tempdir().unwrap();
        let e = format!("{:#}", read(&dir.path().join("a9a")).unwrap_err());
        assert!(e.contains("a9a not found"), "{e}");
        assert!(e.contains("label index:value"), "{e}");
        assert!(e.contains("libsvmtools"), "{e}");
        let e = format!("{:#}", load_adult(dir.path(), Kind::Float).unwrap_err());
        assert!(e.contains("Adult file") && e.contains("a9a.t"), "{e}");
        let empty = write(dir.path(), "empty", "# nothing\n\n");
        let e = format!("{:#}", load(&empty, None, None, Kind::Float).unwrap_err());
        assert!(e.contains("no samples"), "{e}");
    }

    /// The real Adult files of the shared data folder, where this checkout has them.
    #[test]
    fn reads_the_shared_adult_a9a() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/adult");
        if !dir.join(ADULT_TRAIN).is_file() || !dir.join(ADULT_TEST).is_file() {
            eprintln!("skipped: {} has no a9a and a9a.t", dir.display());
            return;
        }
        let data = load_adult(&dir, Kind::Float).unwrap();
        assert_eq!(data.features, 123);
        assert_eq!(data.labels.values, vec![-1.0, 1.0]);
        assert_eq!(data.train.x.size(), vec![32_561, 123]);
        let test = data.test.unwrap();
        assert_eq!(test.x.size(), vec![16_281, 123]);
        // a9a.t never uses feature 123; taking the max over both files agrees.
        assert_eq!(read(&dir.join(ADULT_TEST)).unwrap().max_index(), 122);
        let positive = data.train.y.sum(Kind::Int64).int64_value(&[]);
        assert_eq!(positive, 7_841);
        let rate = positive as f64 / 32_561.0;
        assert!((rate - 0.24).abs() < 0.01, "{rate}");
        // Binary features, 14 set per row in the first row.
        assert_eq!(data.train.x.get(0).sum(Kind::Float).double_value(&[]), 14.0);
        let ones = data.train.x.eq(1.0).logical_or(&data.train.x.eq(0.0));
        assert!(ones.all().int64_value(&[]) == 1);
    }
}
