//! Word-level Penn Treebank in Mikolov's text files, read as the AWD-LSTM suite's
//! `data.py` reads them: each line split on whitespace, `<eos>` appended, words numbered
//! in order of first appearance. The files are `train.txt`, `valid.txt`, `test.txt` or
//! `ptb.train.txt`, `ptb.valid.txt`, `ptb.test.txt`.
//!
//! The vocabulary is the training split's (the suite numbers the words of all three files,
//! but PTB's validation and test words all occur in its training split, so the numbering
//! is the same); a word of another split that is not in it is an error naming the word and
//! its line. Without the training file (this machine: `valid_fraction`), the proxy trains
//! on the validation file but for its last lines, validates on those, and numbers the
//! words of the validation and test files.
use anyhow::{bail, ensure, Context, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tch::Tensor;

/// The end-of-sentence token appended to every line.
pub const EOS: &str = "<eos>";

/// Where to get the corpus (`pisa data fetch` has no source for it: PTB is licensed).
pub const HOW_TO_GET: &str = "PTB as Mikolov's text files (simple-examples.tgz, data/ptb.*.txt; \
     the AWD-LSTM suite's getdata.sh); this machine has only ptb.valid.txt and ptb.test.txt \
     (set data.valid_fraction to train on the first)";

/// The corpus as word ids.
pub struct Corpus {
    /// Words by id.
    pub words: Vec<String>,
    pub train: Vec<i64>,
    pub valid: Vec<i64>,
    pub test: Vec<i64>,
}

/// One split's lines (1-based numbers) and the file they came from.
struct Lines {
    file: PathBuf,
    lines: Vec<(usize, String)>,
}

impl Lines {
    fn read(file: PathBuf) -> Result<Self> {
        let bytes =
            std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
        let text = String::from_utf8(bytes).map_err(|e| {
            let at = e.utf8_error().valid_up_to();
            let bytes = e.as_bytes();
            let line = 1 + bytes[..at].iter().filter(|&&b| b == b'\n').count();
            anyhow::anyhow!("{}:{line}: not UTF-8 text (byte {at})", file.display())
        })?;
        let lines = text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l.to_string()))
            .collect();
        Ok(Self { file, lines })
    }

    /// The last `fraction` of the lines (at least one), split off.
    fn split_off_tail(&mut self, fraction: f64) -> Result<Lines> {
        let n = self.lines.len();
        let tail = ((n as f64 * fraction).round() as usize).clamp(1, n.max(2) - 1);
        ensure!(
            n >= 2,
            "{}: {n} line(s) cannot be split into training and validation lines",
            self.file.display()
        );
        Ok(Lines {
            file: self.file.clone(),
            lines: self.lines.split_off(n - tail),
        })
    }

    fn words(&self) -> impl Iterator<Item = (usize, &str)> {
        self.lines.iter().flat_map(|(number, line)| {
            line.split_whitespace()
                .chain(std::iter::once(EOS))
                .map(move |w| (*number, w))
        })
    }
}

/// Words numbered in order of first appearance.
#[derive(Default)]
struct Vocabulary {
    words: Vec<String>,
    ids: HashMap<String, i64>,
}

impl Vocabulary {
    fn add(&mut self, lines: &Lines) {
        for (_, w) in lines.words() {
            if !self.ids.contains_key(w) {
                self.ids.insert(w.to_string(), self.words.len() as i64);
                self.words.push(w.to_string());
            }
        }
    }

    /// The split as ids; a word outside the vocabulary is an error naming it and its line.
    fn encode(&self, lines: &Lines, vocabulary_of: &str) -> Result<Vec<i64>> {
        lines
            .words()
            .map(|(number, w)| {
                self.ids.get(w).copied().with_context(|| {
                    format!(
                        "{}:{number}: the word {w:?} is not in the vocabulary of {vocabulary_of}",
                        lines.file.display()
                    )
                })
            })
            .collect()
    }
}

/// The file of `split` in `dir`: `<split>.txt` or `ptb.<split>.txt`.
fn split_file(dir: &Path, split: &str) -> Option<PathBuf> {
    [format!("{split}.txt"), format!("ptb.{split}.txt")]
        .into_iter()
        .map(|name| dir.join(name))
        .find(|p| p.is_file())
}

/// Reads the corpus in `dir`. With `valid_fraction` (for a folder without the training
/// file), the validation file's last `valid_fraction` of lines validate and the rest train.
pub fn load(dir: &Path, valid_fraction: Option<f64>) -> Result<Corpus> {
    let need = |split: &str| {
        split_file(dir, split).with_context(|| {
            format!(
                "{} has no {split}.txt or ptb.{split}.txt: it needs {HOW_TO_GET}",
                dir.display()
            )
        })
    };
    let test = Lines::read(need("test")?)?;
    let mut valid = Lines::read(need("valid")?)?;
    let mut vocabulary = Vocabulary::default();
    let (train, vocabulary_of) = match (split_file(dir, "train"), valid_fraction) {
        (Some(file), None) => {
            let train = Lines::read(file)?;
            vocabulary.add(&train);
            let of = format!("the training split {}", train.file.display());
            (train, of)
        }
        (None, Some(fraction)) => {
            let held = valid.split_off_tail(fraction)?;
            let train = std::mem::replace(&mut valid, held);
            vocabulary.add(&train);
            vocabulary.add(&valid);
            vocabulary.add(&test);
            (train, "the validation and test files".to_string())
        }
        (Some(file), Some(_)) => bail!(
            "data.valid_fraction is for folders without a training file, but {} is one",
            file.display()
        ),
        (None, None) => bail!(
            "{} has no train.txt or ptb.train.txt: add it, or set data.valid_fraction (e.g. 0.1) \
             to train on the validation file but for its last lines (a proxy; {HOW_TO_GET})",
            dir.display()
        ),
    };
    Ok(Corpus {
        train: vocabulary.encode(&train, &vocabulary_of)?,
        valid: vocabulary.encode(&valid, &vocabulary_of)?,
        test: vocabulary.encode(&test, &vocabulary_of)?,
        words: vocabulary.words,
    })
}

/// The suite's `batchify`: the ids cut to a multiple of `batch` and laid out as `batch`
/// parallel streams, one per column: [len / batch, batch].
pub fn batchify(ids: &[i64], batch: i64) -> Tensor {
    let rows = ids.len() as i64 / batch;
    Tensor::from_slice(&ids[..(rows * batch) as usize])
        .view([batch, rows])
        .tr()
        .contiguous()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        dir
    }

    #[test]
    fn words_are_numbered_in_order_with_eos_per_line() {
        let dir = folder(&[
            ("ptb.train.txt", " a b\nb c \n"),
            ("ptb.valid.txt", "c a\n"),
            ("ptb.test.txt", "b\n"),
        ]);
        let c = load(dir.path(), None).unwrap();
        assert_eq!(c.words, ["a", "b", EOS, "c"]);
        assert_eq!(c.train, [0, 1, 2, 1, 3, 2]);
        assert_eq!(c.valid, [3, 0, 2]);
        assert_eq!(c.test, [1, 2]);
    }

    #[test]
    fn an_unknown_word_names_itself_and_its_line() {
        let dir = folder(&[
            ("train.txt", "a b\n"),
            ("valid.txt", "a\nb zebra\n"),
            ("test.txt", "a\n"),
        ]);
        let e = format!("{:#}", load(dir.path(), None).err().unwrap());
        assert!(e.contains("valid.txt:2") && e.contains("\"zebra\""), "{e}");
    }

    #[test]
    fn the_proxy_trains_on_the_validation_file_but_its_tail() {
        let lines: String = (0..10).map(|i| format!("w{i}\n")).collect();
        let dir = folder(&[("ptb.valid.txt", &lines), ("ptb.test.txt", "w0 t\n")]);
        let c = load(dir.path(), Some(0.2)).unwrap();
        assert_eq!(c.train.len(), 8 * 2, "8 lines of a word and <eos>");
        assert_eq!(c.valid.len(), 2 * 2);
        assert_eq!(
            c.words.last().unwrap(),
            "t",
            "the test words are numbered too"
        );
        let e = format!("{:#}", load(dir.path(), None).err().unwrap());
        assert!(e.contains("valid_fraction"), "{e}");
    }

    #[test]
    fn batchify_lays_out_parallel_streams() {
        let t = batchify(&[0, 1, 2, 3, 4, 5, 6], 2);
        assert_eq!(t.size(), [3, 2]);
        let v: Vec<i64> = Vec::try_from(t.reshape([-1])).unwrap();
        assert_eq!(v, [0, 3, 1, 4, 2, 5]);
    }
}
