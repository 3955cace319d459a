//! Token shards in the format of nanoGPT's `data/fineweb.py` and modded-nanogpt's
//! `data/cached_fineweb10B.py` (`write_datafile`; read by `train_gpt.py`'s
//! `_load_data_shard`): a header of 256 little-endian int32 — magic 20240520, version 1,
//! the token count n, zeros — then n little-endian uint16 tokens. Files are memory-mapped,
//! so a user's FineWeb shards are read in place. Checked against numpy-written shards by
//! `tests/shards.rs` (goldens by `scripts/golden_shards.py`).
use anyhow::{bail, Context, Result};
use memmap2::Mmap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// `header[0]`.
pub const MAGIC: i32 = 20240520;
/// `header[1]`.
pub const VERSION: i32 = 1;
/// Bytes before the tokens: 256 int32.
pub const HEADER_BYTES: usize = 256 * 4;

/// What a shard must hold, for error messages.
const FORMAT: &str = "a token shard: 256 little-endian int32 (20240520, 1, token count n, \
                      zeros), then n uint16 tokens";

/// What a `tokens` data folder holds, and how to make one (for a missing folder).
pub const HOW_TO_GET: &str = "token shards NAME_train_*.bin and NAME_val_*.bin: FineWeb's from \
    modded-nanogpt's data/cached_fineweb10B.py, or any text's from `pisa data prepare text \
    SOURCE... --out DIR` (scripts/prepare_debian_text.sh makes debian-text from Debian's \
    dict-gcide and python3.11-doc)";

/// The training and validation shards of a `tokens` folder: the files of `dir` whose names
/// contain `_train_` and `_val_` and end in `.bin`, each list sorted by name (modded-nanogpt's
/// `fineweb_train_*.bin` and `fineweb_val_*.bin` patterns).
pub fn split(dir: &Path) -> Result<(Shards, Shards)> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "bin"))
        .collect();
    names.sort();
    let with = |part: &str| -> Result<Shards> {
        let files: Vec<PathBuf> = names
            .iter()
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().contains(part))
            })
            .cloned()
            .collect();
        if files.is_empty() {
            bail!(
                "{} has no *{part}*.bin shard; it must hold {HOW_TO_GET}",
                dir.display()
            );
        }
        Shards::open_files(&files)
    };
    Ok((with("_train_")?, with("_val_")?))
}

/// An ordered list of mapped shards, read as one stream of tokens.
pub struct Shards {
    files: Vec<PathBuf>,
    maps: Vec<Mmap>,
    /// `ends[k]`: tokens in files 0..=k.
    ends: Vec<u64>,
}

impl Shards {
    /// The files matching a glob pattern (e.g. `data/fineweb10B/fineweb_train_*.bin`),
    /// sorted by path as modded-nanogpt's `sorted(Path.cwd().glob(pattern))`.
    pub fn open(pattern: &str) -> Result<Shards> {
        let entries =
            glob::glob(pattern).with_context(|| format!("bad shard pattern {pattern:?}"))?;
        let mut paths = entries
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("cannot list the shards matching {pattern:?}"))?;
        if paths.is_empty() {
            bail!("no token shard matches {pattern:?} (expected files of {FORMAT})");
        }
        paths.sort();
        Shards::open_files(&paths)
    }

    /// The given files, in this order, each checked: magic, version, and a length of
    /// exactly the header and its n tokens.
    pub fn open_files(paths: &[PathBuf]) -> Result<Shards> {
        let mut maps = Vec::with_capacity(paths.len());
        let mut ends = Vec::with_capacity(paths.len());
        let mut total = 0u64;
        for path in paths {
            let (map, n) = map_shard(path)?;
            total += n;
            maps.push(map);
            ends.push(total);
        }
        Ok(Shards {
            files: paths.to_vec(),
            maps,
            ends,
        })
    }

    /// Tokens over all files.
    pub fn len(&self) -> u64 {
        self.ends.last().copied().unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// Tokens `[start, start + out.len())` of the files' concatenation into `out`, across
    /// file boundaries, as i64 (what tch takes for indices).
    pub fn read(&self, start: u64, out: &mut [i64]) -> Result<()> {
        let end = start.checked_add(out.len() as u64);
        if end.is_none_or(|end| end > self.len()) {
            bail!(
                "tokens {start}..{start}+{} are past the end of the shards ({} tokens in {} files)",
                out.len(),
                self.len(),
                self.files.len()
            );
        }
        let mut at = start;
        let mut filled = 0;
        // The first file whose end is past `at`.
        let mut k = self.ends.partition_point(|&e| e <= at);
        while filled < out.len() {
            let file_start = if k == 0 { 0 } else { self.ends[k - 1] };
            let offset = (at - file_start) as usize;
            let available = (self.ends[k] - at) as usize;
            let n = available.min(out.len() - filled);
            let bytes = &self.maps[k][HEADER_BYTES + 2 * offset..HEADER_BYTES + 2 * (offset + n)];
            for (o, b) in out[filled..filled + n]
                .iter_mut()
                .zip(bytes.chunks_exact(2))
            {
                *o = i64::from(u16::from_le_bytes([b[0], b[1]]));
            }
            filled += n;
            at += n as u64;
            k += 1;
        }
        Ok(())
    }
}

/// Maps one shard and checks its header against its length; returns its token count.
fn map_shard(path: &Path) -> Result<(Mmap, u64)> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let len = file
        .metadata()
        .with_context(|| format!("cannot read {}", path.display()))?
        .len();
    if len < HEADER_BYTES as u64 {
        bail!(
            "{}: {len} bytes, shorter than the {HEADER_BYTES}-byte header of {FORMAT}",
            path.display()
        );
    }
    // SAFETY: the map is read-only; like every reader of these files (numpy's memmap in
    // nanoGPT) it assumes nobody truncates a shard while it is being read.
    let map =
        unsafe { Mmap::map(&file) }.with_context(|| format!("cannot map {}", path.display()))?;
    let word = |i: usize| i32::from_le_bytes(map[4 * i..4 * i + 4].try_into().expect("4 bytes"));
    let (magic, version, count) = (word(0), word(1), word(2));
    if magic != MAGIC {
        bail!(
            "{}: magic number {magic}, not {MAGIC}: not {FORMAT}",
            path.display()
        );
    }
    if version != VERSION {
        bail!(
            "{}: version {version}, not {VERSION}: not {FORMAT}",
            path.display()
        );
    }
    let expected = u64::try_from(count)
        .ok()
        .map(|n| HEADER_BYTES as u64 + 2 * n);
    if expected != Some(len) {
        bail!(
            "{}: the header counts {count} tokens, so {} bytes, but the file has {len}: \
             truncated or not {FORMAT}",
            path.display(),
            expected.map_or("a non-negative count".into(), |e| e.to_string())
        );
    }
    Ok((map, count as u64))
}

/// Writes one shard at `path` atomically (a temporary file beside it, then a rename): the
/// header, then the tokens, as `write_datafile` does.
pub fn write_shard(path: &Path, tokens: &[u16]) -> Result<()> {
    let Ok(count) = i32::try_from(tokens.len()) else {
        bail!(
            "{}: {} tokens do not fit a shard header's int32 count",
            path.display(),
            tokens.len()
        );
    };
    crate::results::write_atomic_with(path, |tmp| {
        let mut out = BufWriter::new(File::create(tmp)?);
        let mut header = [0i32; 256];
        header[..3].copy_from_slice(&[MAGIC, VERSION, count]);
        for word in header {
            out.write_all(&word.to_le_bytes())?;
        }
        for token in tokens {
            out.write_all(&token.to_le_bytes())?;
        }
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        Ok(())
    })
}
