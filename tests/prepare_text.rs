//! `pisa data prepare text` through the binary: byte-equal to an independent Python
//! implementation of nanoGPT's fineweb.py convention on a committed corpus (goldens by
//! `scripts/golden_shards.py`), documents of text, gzip and dictd files, the val/train
//! split, thread-count independence, and failures that name the file and write nothing.
mod common;

use common::*;
use flate2::write::GzEncoder;
use pisa::data::shards::Shards;
use pisa::data::tokenizer::Gpt2Bpe;
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

const EOT: i64 = Gpt2Bpe::EOT as i64;

fn prepare(sources: &[&Path], out: &Path, extra: &[&str]) -> Outcome {
    let mut c = command();
    c.args(["data", "prepare", "text"]).args(sources);
    c.arg("--out").arg(out).args(extra);
    finish(&mut c)
}

/// Every file of a folder, by name.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().into_string().unwrap(),
                fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

fn read_meta(out: &Path) -> serde_json::Value {
    serde_json::from_slice(&fs::read(out.join("meta.json")).unwrap()).unwrap()
}

/// The tokens of shards `NAME_{val,train}_*.bin` in `out`: (val, train).
fn tokens(out: &Path, name: &str) -> (Vec<i64>, Vec<i64>) {
    let read = |kind: &str| {
        let shards =
            Shards::open(out.join(format!("{name}_{kind}_*.bin")).to_str().unwrap()).unwrap();
        let mut t = vec![0; shards.len() as usize];
        shards.read(0, &mut t).unwrap();
        t
    };
    (read("val"), read("train"))
}

fn gzip(bytes: &[u8], extra: Option<Vec<u8>>) -> Vec<u8> {
    let builder = match extra {
        Some(extra) => flate2::GzBuilder::new().extra(extra),
        None => flate2::GzBuilder::new(),
    };
    let mut enc: GzEncoder<Vec<u8>> = builder.write(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// A number in dictd's base 64 (`A-Za-z0-9+/`, most significant digit first).
fn dictd_b64(mut n: usize) -> String {
    const DIGITS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = vec![DIGITS[n % 64]];
    while n >= 64 {
        n /= 64;
        s.push(DIGITS[n % 64]);
    }
    s.reverse();
    String::from_utf8(s).unwrap()
}

/// Writes `stem.dict.dz` (dictzip-like: gzip with an RA extra field) of `entries` and its
/// index listing `headwords` of entry `k`, sorted by headword; returns the dictionary.
fn dictionary(dir: &Path, stem: &str, entries: &[&str], headwords: &[(&str, usize)]) -> PathBuf {
    let text = entries.concat();
    let mut at = vec![0];
    for e in entries {
        at.push(at.last().unwrap() + e.len());
    }
    let mut index: Vec<_> = headwords
        .iter()
        .map(|&(h, k)| {
            format!(
                "{h}\t{}\t{}\n",
                dictd_b64(at[k]),
                dictd_b64(entries[k].len())
            )
        })
        .collect();
    index.sort();
    fs::write(dir.join(format!("{stem}.index")), index.concat()).unwrap();
    let ra = [
        b"RA".as_slice(),
        &8u16.to_le_bytes(),
        &[1, 0, 0xff, 0xff, 1, 0, 0, 0],
    ]
    .concat();
    let path = dir.join(format!("{stem}.dict.dz"));
    fs::write(&path, gzip(text.as_bytes(), Some(ra))).unwrap();
    path
}

#[test]
fn matches_the_python_reference() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/shards");
    let s = Scratch::new();
    let out = s.path().join("tiny");
    let args = [
        "--name",
        "tiny",
        "--val-tokens",
        "40",
        "--shard-tokens",
        "64",
    ];
    let o = prepare(&[&root.join("corpus")], &out, &args);
    o.expect_code(0, "prepare");
    assert_eq!(o.stdout.trim(), out.display().to_string());
    let mut got = files(&out);
    let meta_json = got.remove("meta.json").expect("meta.json");
    assert_eq!(got, files(&root.join("expected")));

    let meta: serde_json::Value = serde_json::from_slice(&meta_json).unwrap();
    assert_eq!(meta["tokens"], 156);
    assert_eq!(meta["documents"], 7);
    assert_eq!(meta["val_tokens"], 40);
    let sources: Vec<_> = meta["sources"].as_array().unwrap().iter().collect();
    let names: Vec<_> = sources
        .iter()
        .map(|s| {
            let p = PathBuf::from(s["path"].as_str().unwrap());
            p.strip_prefix(root.join("corpus"))
                .unwrap()
                .display()
                .to_string()
        })
        .collect();
    // Sorted by path; the dictionary's index is not a source of its own.
    assert_eq!(
        names,
        ["a.txt", "c.txt.gz", "sub/b.rst.txt", "words.dict.dz"]
    );
    let docs: Vec<_> = sources
        .iter()
        .map(|s| s["documents"].as_u64().unwrap())
        .collect();
    assert_eq!(docs, [1, 1, 1, 4], "4 entries: two headwords share one");
    let sum: u64 = sources.iter().map(|s| s["tokens"].as_u64().unwrap()).sum();
    assert_eq!(sum, 156);
    assert_eq!(
        sources[0]["sha256"].as_str().unwrap(),
        pisa::data::fetch::sha256_file(&root.join("corpus/a.txt")).unwrap()
    );

    // Default --val-tokens: 1% of 156, rounded up.
    let out2 = s.path().join("default");
    prepare(&[&root.join("corpus")], &out2, &[]).expect_code(0, "default split");
    let (val, train) = tokens(&out2, "text");
    assert_eq!((val.len(), train.len()), (2, 154));
    assert_eq!(read_meta(&out2)["shards"].as_array().unwrap().len(), 2);
}

#[test]
fn documents_of_text_gzip_and_dictd_files() {
    let s = Scratch::new();
    let data = s.path().join("data");
    fs::create_dir(&data).unwrap();
    let plain = s.write("data/one.txt", "alpha beta\n\ngamma\n");
    let gz = data.join("two.txt.gz");
    fs::write(&gz, gzip("Zipped, naïve text.".as_bytes(), None)).unwrap();
    // The first entry is long, so offsets take two base-64 digits.
    let long = format!("intro\n{}\n", "x".repeat(100));
    let entries = [
        long.as_str(),
        "cat\n  A small feline.\n",
        "dog\n  A canine. Wait, 'dog'?\n",
    ];
    let dict = dictionary(
        &data,
        "pets",
        &entries,
        &[("intro", 0), ("dog", 2), ("cat", 1), ("kitty", 1)],
    );
    // A dictionary without an index is one document.
    let noindex = s.write("data/plain.dict", "word\n  definition\n");

    let out = s.path().join("out");
    let sources = [plain.as_path(), gz.as_path(), &dict, &noindex];
    prepare(
        &sources,
        &out,
        &["--val-tokens", "3", "--shard-tokens", "4"],
    )
    .expect_code(0, "prepare");

    let bpe = Gpt2Bpe::new().unwrap();
    let documents = [
        "alpha beta\n\ngamma\n",
        "Zipped, naïve text.",
        entries[0],
        entries[1],
        entries[2],
        "word\n  definition\n",
    ];
    let mut stream = Vec::new();
    for d in documents {
        stream.push(EOT);
        stream.extend(bpe.encode(d).into_iter().map(i64::from));
    }
    let (val, train) = tokens(&out, "text");
    assert_eq!(val, stream[..3]);
    assert_eq!(train, stream[3..]);
    assert_eq!(
        stream.iter().filter(|&&t| t == EOT).count(),
        documents.len()
    );
    let meta = read_meta(&out);
    assert_eq!(meta["documents"], documents.len());
    assert_eq!(meta["tokens"], stream.len());
    let shards = meta["shards"].as_array().unwrap();
    assert_eq!(shards.len(), 1 + (stream.len() - 3).div_ceil(4));
    assert_eq!(shards[0]["file"], "text_val_000000.bin");
    assert_eq!(shards[2]["file"], "text_train_000002.bin");
    assert!(shards[1..shards.len() - 1].iter().all(|s| s["tokens"] == 4));
    for shard in shards {
        let file = out.join(shard["file"].as_str().unwrap());
        assert_eq!(Shards::open_files(&[file]).unwrap().len(), shard["tokens"]);
    }
}

#[test]
fn the_same_bytes_whatever_the_threads() {
    let s = Scratch::new();
    for i in 0..40 {
        let text = format!(
            "Document {i}: {}\n",
            "some words, ünïcode 語 and 123 numbers. ".repeat(i * 7)
        );
        s.write(&format!("corpus/d{i:02}.txt"), &text);
    }
    // Over a MiB: tokenised in pieces.
    let big: String = (0..30_000)
        .map(|i| format!("Line {i} of a long file,  with  spaces.\n"))
        .collect();
    s.write("corpus/big/long.txt", &big);
    let corpus = s.path().join("corpus");
    let run = |threads: &str| {
        let out = s.path().join(format!("out{threads}"));
        let mut c = command();
        c.env("RAYON_NUM_THREADS", threads);
        c.args(["data", "prepare", "text"])
            .arg(&corpus)
            .arg("--out")
            .arg(&out);
        c.args(["--shard-tokens", "100000"]);
        finish(&mut c).expect_code(0, threads);
        out
    };
    let one = run("1");
    let two = run("2");
    let got = files(&one);
    assert!(got.len() >= 7, "{:?}", got.keys());
    assert_eq!(got, files(&two));
    // The long file in pieces has the tokens of the whole.
    let bpe = Gpt2Bpe::new().unwrap();
    let meta = read_meta(&one);
    let source = &meta["sources"][0];
    assert!(source["path"].as_str().unwrap().ends_with("big/long.txt"));
    assert_eq!(source["tokens"], 1 + bpe.encode(&big).len());
    let mut first = vec![0; 1 + 20];
    Shards::open(one.join("text_val_*.bin").to_str().unwrap())
        .unwrap()
        .read(0, &mut first)
        .unwrap();
    let expected: Vec<i64> = std::iter::once(EOT)
        .chain(bpe.encode(&big).into_iter().take(20).map(i64::from))
        .collect();
    assert_eq!(first, expected);
}

/// `pisa data prepare text` fails with exit 1, saying `says`, and leaves `s` as it was but
/// for `out`'s absence.
fn fails(s: &Scratch, sources: &[&Path], extra: &[&str], says: &[&str]) {
    let before: Vec<_> = fs::read_dir(s.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    let out = s.path().join("out");
    prepare(sources, &out, extra)
        .expect_code(1, says[0])
        .expect_stderr(says, says[0]);
    assert!(!out.exists(), "{} written", out.display());
    let after: Vec<_> = fs::read_dir(s.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(before, after, "a staging folder was left behind");
}

#[test]
fn failures_name_the_file_and_write_nothing() {
    let s = Scratch::new();
    let good = s.write("good.txt", "fine text");
    let missing = s.path().join("missing.txt");
    let m = missing.display().to_string();
    fails(&s, &[&good, &missing], &[], &[&m, "no such file or folder"]);

    let not_gzip = s.write("fake.gz", "plain text, not gzip");
    let f = not_gzip.display().to_string();
    fails(&s, &[&good, &not_gzip], &[], &[&f, "not a valid gzip file"]);

    let dicts = s.path().join("dicts");
    fs::create_dir(&dicts).unwrap();
    let dict = dictionary(&dicts, "d", &["one\n", "two\n"], &[("one", 0), ("two", 1)]);
    fs::write(dicts.join("d.index"), "one\tA\tE\ntwo\tE\tZ\n").unwrap();
    let i = format!("{}:2", dicts.join("d.index").display());
    fails(&s, &[&dict], &[], &[&i, "\"two\"", "past the end"]);
    fs::write(dicts.join("d.index"), "one\tA\tE\ntwo\tE?\tE\n").unwrap();
    fails(&s, &[&dict], &[], &[&i, "not a dictd base-64 number"]);
    fs::remove_dir_all(&dicts).unwrap();

    fails(
        &s,
        &[&good],
        &["--val-tokens", "3"],
        &["hold 3 tokens", "--val-tokens"],
    );
    let empty = s.path().join("empty");
    fs::create_dir(&empty).unwrap();
    fails(&s, &[&empty], &[], &["a folder without files"]);
}

/// Invalid UTF-8 is read as U+FFFD, with a warning naming the file, and counted.
#[test]
fn invalid_utf8_is_replaced_with_a_warning() {
    let s = Scratch::new();
    let latin1 = s.path().join("latin1.txt");
    fs::write(&latin1, b"caf\xe9 cr\xe8me, and more text").unwrap();
    let out = s.path().join("out");
    let l = latin1.display().to_string();
    prepare(&[&latin1], &out, &["--val-tokens", "1"])
        .expect_code(0, "latin1")
        .expect_stderr(
            &["warning", &l, "2 invalid UTF-8 sequences", "byte 3"],
            "latin1",
        );
    let meta = read_meta(&out);
    assert_eq!(meta["sources"][0]["invalid_utf8"], 2);
    let bpe = Gpt2Bpe::new().unwrap();
    let (val, train) = tokens(&out, "text");
    let ids: Vec<u32> = val
        .iter()
        .chain(&train)
        .skip(1)
        .map(|&t| t as u32)
        .collect();
    assert_eq!(
        bpe.decode(&ids).unwrap(),
        "caf\u{fffd} cr\u{fffd}me, and more text"
    );
}

#[test]
fn a_non_empty_out_is_replaced_only_with_force() {
    let s = Scratch::new();
    let text = s.write("t.txt", "Some text to tokenise, long enough for a split.");
    let out = s.path().join("out");
    fs::create_dir(&out).unwrap();
    // An empty folder is taken as it is.
    prepare(&[&text], &out, &[]).expect_code(0, "empty out");
    let first = files(&out);
    fs::write(out.join("keep.txt"), "mine").unwrap();
    prepare(&[&text], &out, &["--name", "other"])
        .expect_code(1, "non-empty out")
        .expect_stderr(&["is not empty", "--force"], "non-empty out");
    assert!(out.join("keep.txt").exists());
    prepare(&[&text], &out, &["--force"]).expect_code(0, "forced");
    assert_eq!(files(&out), first);
    let leftovers: Vec<_> = fs::read_dir(s.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 2, "{leftovers:?}");
}
