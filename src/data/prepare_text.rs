//! `pisa data prepare text`: text files to GPT-2 token shards (`shards.rs`), as nanoGPT's
//! `data/fineweb.py` makes FineWeb's: every document is `<|endoftext|>` then its tokens,
//! the documents one stream in input order; the first tokens are the validation shard
//! `NAME_val_000000.bin` (modded-nanogpt's val shard is the first), the rest
//! `NAME_train_000001.bin`, `…_000002.bin`, … of at most `shard_tokens` each. Like
//! `fineweb.py`, shards are cut at token counts, so a document may straddle two.
//!
//! What a document is, by the file's name:
//! - `*.dict.dz` (dictzip: gzip with an extra field) or `*.dict`, a dictd dictionary: each
//!   entry, located by the `.index` beside it (`headword TAB offset TAB length`, numbers in
//!   dictd's base 64), in the order of the file, an entry that several headwords share
//!   once. Without an index, the whole file.
//! - `*.gz`, `*.dz`: gzip text, and any other file: plain text. The whole file is one
//!   document: a file is the unit its author wrote (a manual page, a book), as a FineWeb
//!   document is one web page; cutting at blank lines would put `<|endoftext|>` between the
//!   paragraphs of one text and teach the model that they are unrelated.
//!
//! Text is read as UTF-8, an invalid sequence as U+FFFD (`String::from_utf8_lossy`) with a
//! warning and a count in `meta.json`: GCIDE holds three stray cp1252 bytes in 40 MB, too
//! few to refuse a corpus for. A folder given as a source stands for all files under it, sorted
//! by path (a dictionary's `.index` is read with it, not as text). The output is the same
//! whatever the number of threads: documents are tokenised in parallel (long ones in
//! pieces that encode as the whole, `tokenizer::split_for_parallel`) and concatenated in
//! order. Everything is written in a hidden staging folder beside the output folder, then
//! renamed into place, with `meta.json` (sources and their SHA-256, token counts, the
//! tokenizer); memory stays bounded: tokens go to a staging file as they come.
use super::shards::write_shard;
use super::tokenizer::{split_for_parallel, Gpt2Bpe};
use anyhow::{bail, Context, Result};
use flate2::read::MultiGzDecoder;
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::fs::{self, File};
use std::io::{BufWriter, Read, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

/// What `pisa data prepare text` was asked.
pub struct Options {
    /// Files and folders, in order.
    pub sources: Vec<PathBuf>,
    /// The output folder.
    pub out: PathBuf,
    /// The shards' prefix: `NAME_val_000000.bin`.
    pub name: String,
    /// Tokens in the validation shard; `None`: 1% of all, rounded up.
    pub val_tokens: Option<u64>,
    /// At most this many tokens per training shard (`fineweb.py`'s 10^8 by default).
    pub shard_tokens: u64,
    /// Replace a non-empty output folder.
    pub force: bool,
    /// Draw a progress bar on stderr.
    pub progress: bool,
}

/// The default of `--shard-tokens`: `fineweb.py`'s `shard_size`.
pub const SHARD_TOKENS: u64 = 100_000_000;
/// The file listing what was made.
pub const META_FILE: &str = "meta.json";
/// Sources read and tokenised together: a group of about this many bytes on disk.
const GROUP_BYTES: u64 = 64 << 20;
/// Long documents are tokenised in pieces of about this many bytes.
const PIECE_BYTES: usize = 1 << 20;
/// The tokenised stream, in the staging folder until it is cut into shards.
const STREAM_FILE: &str = ".tokens.u16";

// Every GPT-2 id fits a shard's uint16.
const _: () = assert!(Gpt2Bpe::VOCAB <= 1 << 16);

/// `meta.json`.
#[derive(Serialize)]
pub struct Meta {
    pub tokenizer: &'static str,
    pub vocab: usize,
    pub eot: u32,
    pub documents: u64,
    pub tokens: u64,
    pub val_tokens: u64,
    pub shard_tokens: u64,
    pub shards: Vec<ShardMeta>,
    pub sources: Vec<SourceMeta>,
}

#[derive(Serialize)]
pub struct ShardMeta {
    pub file: String,
    pub tokens: u64,
}

#[derive(Serialize)]
pub struct SourceMeta {
    pub path: PathBuf,
    pub sha256: String,
    pub bytes: u64,
    pub documents: u64,
    pub tokens: u64,
    /// Invalid UTF-8 sequences, each read as U+FFFD.
    pub invalid_utf8: u64,
}

/// `pisa data prepare text`: prepares, prints the output folder on stdout and a summary
/// on stderr.
pub fn prepare_text_command(options: &Options) -> Result<()> {
    let meta = prepare_text(options)?;
    eprintln!(
        "{} tokens from {} documents in {} files: {} in the validation shard, the rest in {} \
         training shards",
        meta.tokens,
        meta.documents,
        meta.sources.len(),
        meta.val_tokens,
        meta.shards.len() - 1
    );
    println!("{}", options.out.display());
    Ok(())
}

/// Writes the shards and `meta.json` of `options.sources` into `options.out`; nothing
/// there (but a staging folder removed on failure) until all is written.
pub fn prepare_text(options: &Options) -> Result<Meta> {
    crate::spec::check_folder_name(&options.name).map_err(|e| anyhow::anyhow!("--name {e}"))?;
    if options.val_tokens == Some(0) || options.shard_tokens == 0 {
        bail!("--val-tokens and --shard-tokens must be at least 1");
    }
    let sources = expand(&options.sources)?;
    check_out(&options.out, options.force)?;
    let staging = Staging::create(&options.out)?;
    let (sources, documents) = tokenise(&sources, &staging.0, options.progress)?;
    let tokens: u64 = sources.iter().map(|s| s.tokens).sum();
    let val_tokens = options.val_tokens.unwrap_or(tokens.div_ceil(100));
    if val_tokens >= tokens {
        bail!(
            "the sources hold {tokens} tokens, which leaves none for training after the \
             {val_tokens} of the validation shard (--val-tokens)"
        );
    }
    let shards = cut(&staging.0, &options.name, val_tokens, options.shard_tokens)?;
    let meta = Meta {
        tokenizer: "gpt2 (tiktoken r50k_base)",
        vocab: Gpt2Bpe::VOCAB,
        eot: Gpt2Bpe::EOT,
        documents,
        tokens,
        val_tokens,
        shard_tokens: options.shard_tokens,
        shards,
        sources,
    };
    let json = serde_json::to_string_pretty(&meta)? + "\n";
    crate::results::write_atomic(&staging.0.join(META_FILE), json.as_bytes())?;
    staging.finish(&options.out, options.force)?;
    Ok(meta)
}

/// How a source file is read.
#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Text,
    Gzip,
    /// A dictd dictionary, dictzipped or not, with its index if there is one.
    Dictionary {
        compressed: bool,
        index: Option<PathBuf>,
    },
}

struct Source {
    path: PathBuf,
    kind: Kind,
    bytes: u64,
}

/// The files of the sources, folders expanded (sorted by path), kinds by name; the
/// indexes of dictionaries among them are not sources of their own. Every source must
/// exist and the list must not be empty.
fn expand(sources: &[PathBuf]) -> Result<Vec<Source>> {
    if sources.is_empty() {
        bail!("no source given");
    }
    let mut files = Vec::new();
    for source in sources {
        let meta = fs::metadata(source)
            .with_context(|| format!("source {}: no such file or folder", source.display()))?;
        if meta.is_dir() {
            let mut found = Vec::new();
            walk(source, &mut found)?;
            if found.is_empty() {
                bail!("source {}: a folder without files", source.display());
            }
            found.sort();
            files.extend(found);
        } else {
            files.push(source.clone());
        }
    }
    let kinds: Vec<Kind> = files.iter().map(|f| kind(f)).collect();
    let indexes: Vec<&PathBuf> = kinds
        .iter()
        .filter_map(|k| match k {
            Kind::Dictionary { index, .. } => index.as_ref(),
            _ => None,
        })
        .collect();
    let mut out = Vec::new();
    for (path, kind) in files.iter().zip(&kinds) {
        if indexes.contains(&path) {
            continue;
        }
        let bytes = fs::metadata(path)
            .with_context(|| format!("cannot read {}", path.display()))?
            .len();
        out.push(Source {
            path: path.clone(),
            kind: kind.clone(),
            bytes,
        });
    }
    Ok(out)
}

/// All files under `dir`, following links to files and folders.
fn walk(dir: &Path, found: &mut Vec<PathBuf>) -> Result<()> {
    let entries = fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?;
    for entry in entries {
        let path = entry
            .with_context(|| format!("cannot list {}", dir.display()))?
            .path();
        if path.is_dir() {
            walk(&path, found)?;
        } else {
            found.push(path);
        }
    }
    Ok(())
}

fn kind(path: &Path) -> Kind {
    let name = path
        .file_name()
        .map_or(String::new(), |n| n.to_string_lossy().into_owned());
    let dictionary = |stem: &str, compressed| {
        let index = path.with_file_name(format!("{stem}.index"));
        Kind::Dictionary {
            compressed,
            index: index.is_file().then_some(index),
        }
    };
    if let Some(stem) = name.strip_suffix(".dict.dz") {
        dictionary(stem, true)
    } else if let Some(stem) = name.strip_suffix(".dict") {
        dictionary(stem, false)
    } else if name.ends_with(".gz") || name.ends_with(".dz") {
        Kind::Gzip
    } else {
        Kind::Text
    }
}

/// `out` must not exist, or be an empty folder, or (with `force`) a folder.
fn check_out(out: &Path, force: bool) -> Result<()> {
    match fs::read_dir(out) {
        Ok(mut entries) => {
            if entries.next().is_some() && !force {
                bail!(
                    "{} exists and is not empty; give --force to replace it",
                    out.display()
                );
            }
            Ok(())
        }
        Err(_) if !out.exists() => Ok(()),
        Err(_) => bail!("{} exists and is not a folder", out.display()),
    }
}

/// The hidden folder the output is written in (`.<out>.partial-<pid>`, as run folders'
/// staging, so stale ones of killed processes are removed the same way); removed unless
/// [`Staging::finish`] renames it into place.
struct Staging(PathBuf);

impl Staging {
    fn create(out: &Path) -> Result<Staging> {
        let leaf = out
            .file_name()
            .with_context(|| format!("{} has no folder name", out.display()))?;
        let parent = match out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
        crate::results::remove_stale_staging(&parent.join(leaf))?;
        let path = parent.join(format!(
            ".{}.partial-{}",
            leaf.to_string_lossy(),
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir(&path).with_context(|| format!("cannot create {}", path.display()))?;
        Ok(Staging(path))
    }

    /// Renames the staging folder to `out`, replacing (with `force`) what was there.
    fn finish(self, out: &Path, force: bool) -> Result<()> {
        check_out(out, force)?;
        let mut old = self.0.clone().into_os_string();
        old.push(".old");
        let old = PathBuf::from(old);
        let replaced = out.exists() && fs::read_dir(out)?.next().is_some();
        if replaced {
            fs::rename(out, &old)
                .with_context(|| format!("cannot move the old {} aside", out.display()))?;
        }
        fs::rename(&self.0, out)
            .with_context(|| format!("cannot rename {} to {}", self.0.display(), out.display()))?;
        if replaced {
            fs::remove_dir_all(&old)
                .with_context(|| format!("cannot remove the old output {}", old.display()))?;
        }
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A source read into memory: its documents' text.
struct Loaded {
    meta: SourceMeta,
    documents: Vec<String>,
    /// Where the first invalid UTF-8 byte is in the (uncompressed) text.
    first_invalid: Option<usize>,
}

fn read_source(source: &Source) -> Result<Loaded> {
    let path = &source.path;
    let raw = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let sha256 = Sha256::digest(&raw)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let compressed = match &source.kind {
        Kind::Gzip => true,
        Kind::Dictionary { compressed, .. } => *compressed,
        Kind::Text => false,
    };
    let bytes = if compressed {
        let mut out = Vec::new();
        MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .with_context(|| format!("{}: not a valid gzip file", path.display()))?;
        out
    } else {
        raw
    };
    let ranges = match &source.kind {
        Kind::Dictionary {
            index: Some(index), ..
        } => dictionary_entries(index, path, bytes.len())?,
        _ => std::iter::once(0..bytes.len()).collect(),
    };
    let mut invalid = 0;
    let mut first_invalid = None;
    let documents = ranges
        .into_iter()
        .map(|range| {
            let (text, n, first) = decode(&bytes[range.clone()]);
            invalid += n;
            first_invalid = first_invalid.or(first.map(|f| range.start + f));
            text
        })
        .collect::<Vec<_>>();
    Ok(Loaded {
        meta: SourceMeta {
            path: path.clone(),
            sha256,
            bytes: source.bytes,
            documents: documents.len() as u64,
            tokens: 0,
            invalid_utf8: invalid,
        },
        documents,
        first_invalid,
    })
}

/// `bytes` as UTF-8, each invalid sequence replaced by U+FFFD as `String::from_utf8_lossy`
/// does; how many were, and where the first was.
fn decode(bytes: &[u8]) -> (String, u64, Option<usize>) {
    let mut text = String::with_capacity(bytes.len());
    let (mut invalid, mut first) = (0, None);
    for chunk in bytes.utf8_chunks() {
        text.push_str(chunk.valid());
        if !chunk.invalid().is_empty() {
            // Before the first replacement, the text is as long as the bytes read.
            first = first.or(Some(text.len()));
            text.push(char::REPLACEMENT_CHARACTER);
            invalid += 1;
        }
    }
    (text, invalid, first)
}

/// The entries of the dictionary `dict` (`len` bytes uncompressed) that its dictd `index`
/// lists, in the order of the text, each once.
fn dictionary_entries(index: &Path, dict: &Path, len: usize) -> Result<Vec<Range<usize>>> {
    let listing =
        fs::read_to_string(index).with_context(|| format!("cannot read {}", index.display()))?;
    let mut entries = Vec::new();
    for (i, line) in listing.lines().enumerate() {
        if line.is_empty() {
            continue;
        }
        let at = || format!("{}:{}", index.display(), i + 1);
        let mut fields = line.split('\t');
        let (Some(headword), Some(offset), Some(length)) =
            (fields.next(), fields.next(), fields.next())
        else {
            bail!("{}: not `headword TAB offset TAB length`", at());
        };
        let number = |s: &str| dictd_base64(s).with_context(|| format!("{}: {headword:?}", at()));
        let (start, length) = (number(offset)?, number(length)?);
        match start.checked_add(length).filter(|&end| end <= len as u64) {
            Some(end) => entries.push(start as usize..end as usize),
            None => bail!(
                "{}: entry {headword:?} at bytes {start}+{length} is past the end of {} \
                 ({len} bytes uncompressed)",
                at(),
                dict.display(),
            ),
        }
    }
    entries.sort_by_key(|r| (r.start, r.end));
    entries.dedup();
    Ok(entries)
}

/// A number in dictd's base 64: digits `A-Za-z0-9+/` for 0..64, the most significant
/// first (dictd's `b64_decode`).
fn dictd_base64(s: &str) -> Result<u64> {
    if s.is_empty() {
        bail!("an empty number");
    }
    s.bytes().try_fold(0u64, |n, c| {
        let digit = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => bail!("{s:?} is not a dictd base-64 number ({:?})", c as char),
        };
        n.checked_mul(64)
            .map(|n| n + u64::from(digit))
            .with_context(|| format!("{s:?} is too large"))
    })
}

/// A piece of a document to tokenise; `first` ones get `<|endoftext|>` before them.
struct Piece<'a> {
    source: usize,
    first: bool,
    text: &'a str,
    /// Its share of the source's bytes on disk, for the progress bar.
    weight: u64,
}

/// Tokenises the sources into `staging/STREAM_FILE`, in groups read and encoded in
/// parallel; returns each source's record and the number of documents.
fn tokenise(sources: &[Source], staging: &Path, progress: bool) -> Result<(Vec<SourceMeta>, u64)> {
    let bpe = Gpt2Bpe::new()?;
    let total: u64 = sources.iter().map(|s| s.bytes).sum();
    let bar = if progress {
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template(
                "tokenising {bar:40} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
            )
            .expect("valid template"),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let path = staging.join(STREAM_FILE);
    let mut stream = BufWriter::new(
        File::create(&path).with_context(|| format!("cannot create {}", path.display()))?,
    );
    let mut metas = Vec::with_capacity(sources.len());
    let mut documents = 0;
    for group in groups(sources) {
        if crate::interrupt::requested() {
            bail!("interrupted; nothing written");
        }
        let read: Vec<Loaded> = group.par_iter().map(read_source).collect::<Result<_>>()?;
        let pieces: Vec<Piece> = read
            .iter()
            .enumerate()
            .flat_map(|(s, r)| pieces(s, r, group[s].bytes))
            .collect();
        let encoded: Vec<Vec<u32>> = pieces
            .par_iter()
            .map(|p| {
                let ids = bpe.encode(p.text);
                bar.inc(p.weight);
                ids
            })
            .collect();
        let mut tokens = vec![0u64; read.len()];
        for (piece, ids) in pieces.iter().zip(&encoded) {
            let eot = piece.first.then_some(Gpt2Bpe::EOT);
            for id in eot.iter().chain(ids) {
                stream
                    .write_all(&(*id as u16).to_le_bytes())
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
            tokens[piece.source] += (usize::from(piece.first) + ids.len()) as u64;
        }
        drop(pieces);
        for (r, tokens) in read.into_iter().zip(tokens) {
            if let Some(first) = r.first_invalid {
                bar.suspend(|| {
                    eprintln!(
                        "warning: {}: {} invalid UTF-8 sequences read as U+FFFD, the first at \
                         byte {first}",
                        r.meta.path.display(),
                        r.meta.invalid_utf8
                    )
                });
            }
            documents += r.meta.documents;
            metas.push(SourceMeta { tokens, ..r.meta });
        }
    }
    stream
        .into_inner()
        .map_err(|e| e.into_error())
        .with_context(|| format!("cannot write {}", path.display()))?;
    bar.finish_and_clear();
    Ok((metas, documents))
}

/// Consecutive runs of sources of about [`GROUP_BYTES`] on disk (at least one each).
fn groups(sources: &[Source]) -> Vec<&[Source]> {
    let mut groups = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, s) in sources.iter().enumerate() {
        bytes += s.bytes;
        if bytes >= GROUP_BYTES || i + 1 == sources.len() {
            groups.push(&sources[start..=i]);
            (start, bytes) = (i + 1, 0);
        }
    }
    groups
}

/// The pieces of a source's documents; their weights add up to the source's size.
fn pieces(source: usize, loaded: &Loaded, disk_bytes: u64) -> Vec<Piece<'_>> {
    let text_bytes = loaded
        .documents
        .iter()
        .map(String::len)
        .sum::<usize>()
        .max(1) as u128;
    let mut done = 0u128;
    let mut out = Vec::new();
    for document in &loaded.documents {
        for (k, text) in split_for_parallel(document, PIECE_BYTES)
            .into_iter()
            .enumerate()
        {
            let before = done * disk_bytes as u128 / text_bytes;
            done += text.len() as u128;
            out.push(Piece {
                source,
                first: k == 0,
                text,
                weight: (done * disk_bytes as u128 / text_bytes - before) as u64,
            });
        }
    }
    out
}

/// Cuts the staged token stream into the validation shard (the first `val_tokens`) and
/// training shards of at most `shard_tokens`, then removes the stream.
fn cut(staging: &Path, name: &str, val_tokens: u64, shard_tokens: u64) -> Result<Vec<ShardMeta>> {
    let path = staging.join(STREAM_FILE);
    let file = File::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
    // SAFETY: the stream is this process's own file in its staging folder, read-only.
    let stream = unsafe { memmap2::Mmap::map(&file) }
        .with_context(|| format!("cannot map {}", path.display()))?;
    let total = stream.len() as u64 / 2;
    let mut ranges = vec![(format!("{name}_val_{:06}.bin", 0), 0..val_tokens)];
    let mut start = val_tokens;
    while start < total {
        let end = (start + shard_tokens).min(total);
        ranges.push((format!("{name}_train_{:06}.bin", ranges.len()), start..end));
        start = end;
    }
    let mut shards = Vec::with_capacity(ranges.len());
    for (file, range) in ranges {
        if crate::interrupt::requested() {
            bail!("interrupted; nothing written");
        }
        let bytes = &stream[2 * range.start as usize..2 * range.end as usize];
        let tokens: Vec<u16> = bytes
            .chunks_exact(2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
            .collect();
        write_shard(&staging.join(&file), &tokens)?;
        shards.push(ShardMeta {
            file,
            tokens: range.end - range.start,
        });
    }
    drop(stream);
    fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
    Ok(shards)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dictd_numbers() {
        // dictd's own examples: "A" 0, "B" 1, "BA" 64; gcide.index's "00-database-info\tKj\tuk".
        assert_eq!(dictd_base64("A").unwrap(), 0);
        assert_eq!(dictd_base64("/").unwrap(), 63);
        assert_eq!(dictd_base64("BA").unwrap(), 64);
        assert_eq!(dictd_base64("Kj").unwrap(), 10 * 64 + 35);
        assert_eq!(dictd_base64("uk").unwrap(), 46 * 64 + 36);
        assert!(dictd_base64("").is_err());
        assert!(dictd_base64("A=").unwrap_err().to_string().contains("'='"));
        assert!(dictd_base64("///////////").is_err());
    }

    #[test]
    fn kinds_by_name() {
        assert_eq!(kind(Path::new("a/b.txt")), Kind::Text);
        assert_eq!(kind(Path::new("b.rst.txt.gz")), Kind::Gzip);
        assert_eq!(
            kind(Path::new("/nonexistent/gcide.dict.dz")),
            Kind::Dictionary {
                compressed: true,
                index: None
            }
        );
    }

    #[test]
    fn weights_add_up() {
        let loaded = Loaded {
            meta: SourceMeta {
                path: "x".into(),
                sha256: String::new(),
                bytes: 77,
                documents: 2,
                tokens: 0,
                invalid_utf8: 0,
            },
            documents: vec!["a\nb\n".into(), "a\nb\nc\n".repeat(300_000)],
            first_invalid: None,
        };
        let p = pieces(0, &loaded, 77);
        assert!(p.len() > 2);
        assert_eq!(p.iter().map(|p| p.weight).sum::<u64>(), 77);
        assert_eq!(p.iter().filter(|p| p.first).count(), 2);
    }

    #[test]
    fn invalid_utf8_is_replaced_and_counted() {
        assert_eq!(decode("café".as_bytes()), ("café".into(), 0, None));
        assert_eq!(
            decode(b"caf\xe9 x\x92s \xff\xfe"),
            ("caf\u{fffd} x\u{fffd}s \u{fffd}\u{fffd}".into(), 4, Some(3))
        );
    }
}
