//! Token shards against nanoGPT's `write_datafile` (numpy; goldens by
//! `scripts/golden_shards.py`): reading its files, writing the same bytes, reading across
//! files, and bad files as errors that name the file.
use pisa::data::shards::{write_shard, Shards, HEADER_BYTES};
use std::fs;
use std::path::{Path, PathBuf};

fn golden(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/shards")
        .join(name)
}

/// `EDGE_TOKENS` of scripts/golden_shards.py.
fn edge_tokens() -> Vec<u16> {
    let mut t = vec![0, 1, 2, 255, 256, 50255, 50256, 65534, 65535];
    t.extend((0..1000u32).map(|i| (i * 7919 % 65536) as u16));
    t
}

fn read_all(shards: &Shards) -> Vec<i64> {
    let mut out = vec![0; shards.len() as usize];
    shards.read(0, &mut out).unwrap();
    out
}

#[test]
fn reads_numpy_written_shards() {
    let shards = Shards::open(golden("edge.bin").to_str().unwrap()).unwrap();
    assert_eq!(shards.len(), 1009);
    let expected: Vec<i64> = edge_tokens().into_iter().map(i64::from).collect();
    assert_eq!(read_all(&shards), expected);
}

#[test]
fn writes_the_bytes_numpy_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("edge.bin");
    write_shard(&path, &edge_tokens()).unwrap();
    assert_eq!(
        fs::read(&path).unwrap(),
        fs::read(golden("edge.bin")).unwrap()
    );
    // Only the shard: the temporary file was renamed.
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    // An empty shard is a header.
    write_shard(&dir.path().join("empty.bin"), &[]).unwrap();
    let empty = Shards::open_files(&[dir.path().join("empty.bin")]).unwrap();
    assert!(empty.is_empty());
}

#[test]
fn a_pattern_sorts_by_name_and_reads_across_files() {
    let pattern = golden("expected/tiny_train_*.bin");
    let shards = Shards::open(pattern.to_str().unwrap()).unwrap();
    let names: Vec<_> = shards
        .files()
        .iter()
        .map(|f| f.file_name().unwrap().to_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["tiny_train_000001.bin", "tiny_train_000002.bin"]);
    assert_eq!(shards.len(), 64 + 52);
    let all = read_all(&shards);
    // Any window, across the boundary at 64 or not, is that slice of the whole.
    for (start, n) in [(0, 1), (60, 10), (63, 2), (64, 52), (100, 16), (116, 0)] {
        let mut out = vec![-1; n];
        shards.read(start as u64, &mut out).unwrap();
        assert_eq!(out, all[start..start + n], "{start}+{n}");
    }
    // The same file twice is twice the tokens.
    let one = golden("expected/tiny_val_000000.bin");
    let twice = Shards::open_files(&[one.clone(), one]).unwrap();
    let t = read_all(&twice);
    assert_eq!(t.len(), 80);
    assert_eq!(t[..40], t[40..]);
    assert_eq!(t[0], 50256, "a document starts with <|endoftext|>");
}

#[test]
fn reading_past_the_end_is_an_error() {
    let shards = Shards::open(golden("edge.bin").to_str().unwrap()).unwrap();
    let mut out = vec![0; 10];
    let e = shards.read(1000, &mut out).unwrap_err().to_string();
    assert!(e.contains("1009 tokens"), "{e}");
    assert!(shards.read(u64::MAX, &mut out).is_err());
    shards.read(999, &mut out).unwrap();
}

/// Writes `bytes` as `name` in `dir` and opens it: the error, which must name the file.
fn open_bad(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    fs::write(&path, bytes).unwrap();
    let e = Shards::open_files(std::slice::from_ref(&path))
        .err()
        .expect("an error");
    let e = format!("{e:#}");
    assert!(e.contains(&path.display().to_string()), "{e}");
    e
}

#[test]
fn bad_files_are_errors_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let good = fs::read(golden("edge.bin")).unwrap();
    let with = |at: usize, value: i32| {
        let mut b = good.clone();
        b[at..at + 4].copy_from_slice(&value.to_le_bytes());
        b
    };
    let e = open_bad(dir.path(), "magic.bin", &with(0, 20240521));
    assert!(e.contains("magic number 20240521, not 20240520"), "{e}");
    let e = open_bad(dir.path(), "version.bin", &with(4, 2));
    assert!(e.contains("version 2"), "{e}");
    let e = open_bad(dir.path(), "count.bin", &with(8, 1010));
    assert!(e.contains("counts 1010 tokens"), "{e}");
    let e = open_bad(dir.path(), "negative.bin", &with(8, -1));
    assert!(e.contains("counts -1 tokens"), "{e}");
    let e = open_bad(dir.path(), "truncated.bin", &good[..good.len() - 1]);
    assert!(e.contains("truncated"), "{e}");
    let e = open_bad(dir.path(), "header.bin", &good[..HEADER_BYTES - 4]);
    assert!(e.contains("shorter than the 1024-byte header"), "{e}");
    let e = open_bad(dir.path(), "empty.bin", &[]);
    assert!(e.contains("0 bytes"), "{e}");

    let e = Shards::open_files(&[dir.path().join("absent.bin")])
        .err()
        .unwrap();
    assert!(format!("{e:#}").contains("absent.bin"), "{e:#}");
    let pattern = dir.path().join("nothing_*.bin");
    let e = Shards::open(pattern.to_str().unwrap())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("nothing_*.bin") && e.contains("20240520"), "{e}");
    let e = Shards::open("[").err().unwrap().to_string();
    assert!(e.contains("bad shard pattern"), "{e}");
}
