//! `pisa data fetch`: downloads the public datasets the readers expect, checked against
//! the SHA-256 of the official files.
//!
//! A dataset is a [`Manifest`]: its folder under the data directory and its files, each
//! with official URLs, SHA-256 and size. [`download`] streams one URL into a temporary
//! file next to the destination, hashing as it goes, and renames it into place only when
//! the length and the hash are right; a server silent for longer than the timeout of
//! [`Network`] (30 s, `$PISA_FETCH_TIMEOUT_S`) is given up on, and a failure that may pass
//! (timeout, broken connection, 5xx) is tried again a few times. On any failure nothing is
//! left behind: no temporary file, no empty folder made for it.
//! [`fetch`] skips files already there with the right hash, and unpacks archives
//! (CIFAR-10's tar.gz) into the folder the reader looks in.
//!
//! The checksums are those of TensorFlow Datasets' `url_checksums` files (mnist.txt,
//! fashion_mnist.txt, cifar10.txt), which also give the sizes.
use anyhow::{bail, ensure, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{BufReader, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The datasets `pisa data fetch` knows.
pub const DATASETS: [&str; 3] = ["mnist", "fashion-mnist", "cifar10"];

/// One file of a dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSpec {
    /// Its name in the dataset folder, and the last part of its URLs.
    pub name: String,
    /// Where to get it, tried in order.
    pub urls: Vec<String>,
    /// SHA-256 of the file, lower-case hex.
    pub sha256: String,
    /// Its size in bytes.
    pub size: u64,
    /// Other (SHA-256, description) accepted for a copy already in place: the same
    /// data packed differently, e.g. by a distribution.
    pub also_accepted: Vec<(String, String)>,
}

/// A tar.gz archive to unpack after it is downloaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unpack {
    /// The manifest file that is the archive.
    pub archive: String,
    /// The folder the archive holds, which ends up in the dataset folder.
    pub folder: String,
    /// Files of that folder that must be there after unpacking, with their sizes; when
    /// they all are, the archive is neither needed nor checked again.
    pub expect: Vec<(String, u64)>,
}

/// A dataset: the folder under the data directory and its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub name: String,
    pub folder: String,
    pub files: Vec<FileSpec>,
    pub unpack: Option<Unpack>,
}

fn file(name: &str, bases: &[&str], sha256: &str, size: u64) -> FileSpec {
    FileSpec {
        name: name.into(),
        urls: bases.iter().map(|b| format!("{b}{name}")).collect(),
        sha256: sha256.into(),
        size,
        also_accepted: vec![],
    }
}

/// The manifest of a dataset of [`DATASETS`].
pub fn manifest(name: &str) -> Result<Manifest> {
    let m = match name {
        "mnist" => {
            // torchvision's mirror, TensorFlow's, and Yann LeCun's page.
            let bases = [
                "https://ossci-datasets.s3.amazonaws.com/mnist/",
                "https://storage.googleapis.com/cvdf-datasets/mnist/",
                "http://yann.lecun.com/exdb/mnist/",
            ];
            Manifest {
                name: name.into(),
                folder: "mnist".into(),
                files: vec![
                    file(
                        "train-images-idx3-ubyte.gz",
                        &bases,
                        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
                        9_912_422,
                    ),
                    file(
                        "train-labels-idx1-ubyte.gz",
                        &bases,
                        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
                        28_881,
                    ),
                    file(
                        "t10k-images-idx3-ubyte.gz",
                        &bases,
                        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
                        1_648_877,
                    ),
                    file(
                        "t10k-labels-idx1-ubyte.gz",
                        &bases,
                        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
                        4_542,
                    ),
                ],
                unpack: None,
            }
        }
        "fashion-mnist" => {
            let bases = [
                "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
                "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            ];
            // Debian's package dataset-fashion-mnist ships the same gzip streams without
            // the file name in the gzip header (each file is shorter by the name's length
            // plus one), so their hashes differ from the official ones.
            let debian = |f: FileSpec, sha: &str| FileSpec {
                also_accepted: vec![(
                    sha.into(),
                    "Debian's dataset-fashion-mnist (the official data, gzip header without \
                     the file name)"
                        .into(),
                )],
                ..f
            };
            Manifest {
                name: name.into(),
                folder: "fashion-mnist".into(),
                files: vec![
                    debian(
                        file(
                            "train-images-idx3-ubyte.gz",
                            &bases,
                            "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
                            26_421_880,
                        ),
                        "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
                    ),
                    debian(
                        file(
                            "train-labels-idx1-ubyte.gz",
                            &bases,
                            "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
                            29_515,
                        ),
                        "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
                    ),
                    debian(
                        file(
                            "t10k-images-idx3-ubyte.gz",
                            &bases,
                            "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
                            4_422_102,
                        ),
                        "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
                    ),
                    debian(
                        file(
                            "t10k-labels-idx1-ubyte.gz",
                            &bases,
                            "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
                            5_148,
                        ),
                        "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
                    ),
                ],
                unpack: None,
            }
        }
        "cifar10" => {
            use super::cifar;
            let record_bytes = (cifar::RECORD * cifar::RECORDS_PER_FILE) as u64;
            Manifest {
                name: name.into(),
                folder: "cifar10".into(),
                files: vec![file(
                    "cifar-10-binary.tar.gz",
                    &["https://www.cs.toronto.edu/~kriz/"],
                    "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd",
                    170_052_171,
                )],
                unpack: Some(Unpack {
                    archive: "cifar-10-binary.tar.gz".into(),
                    folder: cifar::FOLDER.into(),
                    expect: cifar::TRAIN_FILES
                        .iter()
                        .chain([&cifar::TEST_FILE])
                        .map(|f| (f.to_string(), record_bytes))
                        .collect(),
                }),
            }
        }
        _ => bail!(
            "unknown dataset {name:?}; `pisa data fetch` knows {}",
            DATASETS.join(", ")
        ),
    };
    Ok(m)
}

/// `pisa data fetch NAME [--dir DIR] [--mirror URL]`: fetches into `<data dir>/<folder>`
/// (the data directory as `spec::data_dir` resolves `dir`) with a progress bar when
/// stderr is a terminal, and prints the dataset folder. `$PISA_FETCH_TIMEOUT_S` sets the
/// network timeout (see [`Network::from_env`]).
pub fn fetch_command(name: &str, dir: Option<&Path>, mirror: Option<&str>) -> Result<()> {
    let manifest = manifest(name)?;
    let network = Network::from_env()?;
    let data_dir = crate::spec::data_dir(dir);
    let folder = fetch(
        &manifest,
        &data_dir,
        mirror,
        std::io::stderr().is_terminal(),
        &network,
    )?;
    println!("{}", folder.display());
    Ok(())
}

/// Fetches `manifest` into `data_dir/<folder>`: files there with the right SHA-256 are
/// kept, the others downloaded (from `mirror`/<file name> when given, else from each
/// official URL in turn), archives unpacked. Reports on stderr as it goes. Every file is
/// tried; the error lists those that could not be had and where to put them by hand.
/// A failure leaves the files already verified; the dataset folder (and the data
/// directory) stay only if they existed before or hold some file.
pub fn fetch(
    manifest: &Manifest,
    data_dir: &Path,
    mirror: Option<&str>,
    progress: bool,
    network: &Network,
) -> Result<PathBuf> {
    let folder = data_dir.join(&manifest.folder);
    let name = &manifest.name;
    if let Some(unpack) = &manifest.unpack {
        if unpacked(&folder, unpack) {
            eprintln!(
                "{name}: {} is complete, nothing to do",
                folder.join(&unpack.folder).display()
            );
            return Ok(folder);
        }
    }
    let _new_folders = NewFolders::create(&folder)?;
    let mut failed: Vec<(&FileSpec, Vec<String>)> = Vec::new();
    for f in &manifest.files {
        let dest = folder.join(&f.name);
        if dest.is_file() {
            let actual = sha256_file(&dest)?;
            if actual == f.sha256 {
                eprintln!("{name}: {} already there, SHA-256 ok", dest.display());
                continue;
            }
            if let Some((_, what)) = f.also_accepted.iter().find(|(sha, _)| *sha == actual) {
                eprintln!(
                    "{name}: {} already there, SHA-256 ok ({what})",
                    dest.display()
                );
                continue;
            }
            eprintln!(
                "{name}: {} is there but its SHA-256 is {actual}, not {}; downloading it again",
                dest.display(),
                f.sha256
            );
        }
        let urls = match mirror {
            Some(m) => vec![format!("{}/{}", m.trim_end_matches('/'), f.name)],
            None => f.urls.clone(),
        };
        let mut errors = Vec::new();
        let mut done = false;
        for url in &urls {
            eprintln!("{name}: downloading {url}");
            match download(url, &dest, &f.sha256, Some(f.size), progress, network) {
                Ok(()) => {
                    done = true;
                    break;
                }
                Err(e) => errors.push(format!("{e:#}")),
            }
        }
        if done {
            // Say why the addresses tried first did not do.
            for e in &errors {
                eprintln!("{name}: (failed first: {e})");
            }
            eprintln!("{name}: {} downloaded, SHA-256 ok", dest.display());
            continue;
        }
        failed.push((f, errors));
    }
    if !failed.is_empty() {
        bail!("{}", by_hand(manifest, data_dir, &failed));
    }
    if let Some(unpack) = &manifest.unpack {
        let archive = folder.join(&unpack.archive);
        eprintln!("{name}: extracting {}", archive.display());
        extract_tar_gz(&archive, &folder, unpack)?;
        eprintln!(
            "{name}: {} ready ({} can be deleted)",
            folder.join(&unpack.folder).display(),
            archive.display()
        );
    }
    Ok(folder)
}

/// The error of a fetch that could not get some files: what failed, and what to put where.
fn by_hand(manifest: &Manifest, data_dir: &Path, failed: &[(&FileSpec, Vec<String>)]) -> String {
    let folder = data_dir.join(&manifest.folder);
    let mut text = format!(
        "could not download {} of the {} files of {}:\n",
        failed.len(),
        manifest.files.len(),
        manifest.name
    );
    for (_, errors) in failed {
        for e in errors {
            text += &format!("  {e}\n");
        }
    }
    text += &format!(
        "Without network access, put these files in {} by hand:\n",
        folder.display()
    );
    for (f, _) in failed {
        text += &format!(
            "  {} ({} bytes, SHA-256 {}) from {}\n",
            f.name,
            f.size,
            f.sha256,
            f.urls.join(" or ")
        );
    }
    text += &format!(
        "then run `pisa data fetch {} --dir {}` again to check them",
        manifest.name,
        data_dir.display()
    );
    if let Some(u) = &manifest.unpack {
        text += &format!(
            " and extract {archive}; or extract it yourself (tar xzf {archive} -C {dir}) so \
             that {dir}/{folder}/{first} exists",
            archive = u.archive,
            dir = folder.display(),
            folder = u.folder,
            first = u.expect.first().map_or("", |(n, _)| n.as_str()),
        );
    }
    text.push('.');
    text
}

/// Whether `folder/<unpack.folder>` holds every expected file with its size.
fn unpacked(folder: &Path, unpack: &Unpack) -> bool {
    let inner = folder.join(&unpack.folder);
    unpack.expect.iter().all(|(name, size)| {
        std::fs::metadata(inner.join(name)).is_ok_and(|m| m.is_file() && m.len() == *size)
    })
}

/// Unpacks the tar.gz `archive` into a temporary folder inside `folder`, checks that it
/// holds `unpack.folder` with the expected files, and renames that into `folder`
/// (replacing an incomplete one).
pub fn extract_tar_gz(archive: &Path, folder: &Path, unpack: &Unpack) -> Result<()> {
    let shown = archive.display();
    let tmp = tempfile::Builder::new()
        .prefix(".extract-")
        .tempdir_in(folder)
        .with_context(|| format!("cannot create a temporary folder in {}", folder.display()))?;
    let gz = flate2::read::GzDecoder::new(BufReader::new(
        File::open(archive).with_context(|| format!("cannot open {shown}"))?,
    ));
    tar::Archive::new(gz)
        .unpack(tmp.path())
        .with_context(|| format!("cannot extract {shown} (corrupt archive?)"))?;
    ensure!(
        unpacked(tmp.path(), unpack),
        "{shown} does not hold {}/ with {}",
        unpack.folder,
        unpack
            .expect
            .iter()
            .map(|(n, s)| format!("{n} ({s} bytes)"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let dest = folder.join(&unpack.folder);
    if dest.exists() {
        std::fs::remove_dir_all(&dest)
            .with_context(|| format!("cannot replace the incomplete folder {}", dest.display()))?;
    }
    std::fs::rename(tmp.path().join(&unpack.folder), &dest)
        .with_context(|| format!("cannot move the extracted files to {}", dest.display()))?;
    Ok(())
}

/// The SHA-256 of a file, lower-case hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// How downloads face a slow or failing network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    /// The longest wait to connect, for the response headers, and for each read of the
    /// body: a server silent for longer is given up on. The body as a whole has no limit,
    /// so a slow download that keeps going finishes.
    pub timeout: Duration,
    /// Tries of one URL, when a try fails for a reason that may pass: a timeout, a
    /// connection reset, a body cut short, a 5xx (or 408, 429) status.
    pub attempts: u32,
    /// The pause before the second try, doubled before each later one.
    pub backoff: Duration,
}

/// The environment variable that sets [`Network::timeout`] of `pisa data fetch`, in
/// seconds (e.g. `5` or `0.5`).
pub const TIMEOUT_VAR: &str = "PISA_FETCH_TIMEOUT_S";

impl Default for Network {
    /// 30 s timeouts, 3 tries, 0.5 s then 1 s between them.
    fn default() -> Self {
        Network {
            timeout: Duration::from_secs(30),
            attempts: 3,
            backoff: Duration::from_millis(500),
        }
    }
}

impl Network {
    /// The defaults, with the timeout from `$PISA_FETCH_TIMEOUT_S` when it is set.
    pub fn from_env() -> Result<Self> {
        let mut network = Network::default();
        match std::env::var(TIMEOUT_VAR) {
            Ok(text) => {
                network.timeout = text
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|s| *s > 0.0)
                    .and_then(|s| Duration::try_from_secs_f64(s).ok())
                    .with_context(|| {
                        format!("{TIMEOUT_VAR}={text:?} is not a positive number of seconds")
                    })?;
            }
            Err(std::env::VarError::NotPresent) => {}
            Err(e) => bail!("{TIMEOUT_VAR}: {e}"),
        }
        Ok(network)
    }
}

/// Folders created for a download, removed again when this is dropped if they are still
/// empty: a failure leaves no empty folder behind, while folders that existed before, and
/// any that hold a file, stay.
struct NewFolders(Vec<PathBuf>);

impl NewFolders {
    /// Creates `dir` and its missing parents, remembering which were missing.
    fn create(dir: &Path) -> Result<Self> {
        let missing = NewFolders(
            dir.ancestors()
                .take_while(|a| !a.as_os_str().is_empty() && !a.exists())
                .map(Path::to_path_buf)
                .collect(),
        );
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the folder {}", dir.display()))?;
        Ok(missing)
    }
}

impl Drop for NewFolders {
    fn drop(&mut self) {
        // Deepest first; `remove_dir` refuses a folder that holds anything, and then its
        // parents are not empty either.
        for dir in &self.0 {
            if std::fs::remove_dir(dir).is_err() {
                break;
            }
        }
    }
}

/// Why one try failed, and whether another try might do better.
struct Failed {
    cause: anyhow::Error,
    transient: bool,
}

impl Failed {
    fn fatal(cause: anyhow::Error) -> Self {
        Failed {
            cause,
            transient: false,
        }
    }

    fn transient(cause: anyhow::Error) -> Self {
        Failed {
            cause,
            transient: true,
        }
    }
}

/// Whether a request that failed with `e` may succeed if tried again: timeouts, broken
/// connections and server-side statuses may pass; a refused connection (nothing listens
/// there), an unknown host, a TLS failure or a 4xx status will not within a few seconds.
fn transient(e: &ureq::Error) -> bool {
    use std::io::ErrorKind as K;
    match e {
        ureq::Error::StatusCode(code) => *code >= 500 || *code == 408 || *code == 429,
        ureq::Error::Timeout(_) => true,
        ureq::Error::Io(io) => matches!(
            io.kind(),
            K::ConnectionReset
                | K::ConnectionAborted
                | K::BrokenPipe
                | K::UnexpectedEof
                | K::TimedOut
                | K::WouldBlock
                | K::Interrupted
                | K::NotConnected
        ),
        _ => false,
    }
}

/// `e` in words, saying when it is a timeout and which limit it hit.
fn describe(e: &ureq::Error, network: &Network) -> String {
    let limit = network.timeout.as_secs_f64();
    match e {
        ureq::Error::StatusCode(code) => format!("HTTP status {code}"),
        ureq::Error::Timeout(ureq::Timeout::PerRead) => {
            format!(
                "timed out: the server sent nothing for {limit} s ({TIMEOUT_VAR} sets the limit)"
            )
        }
        ureq::Error::Timeout(which) => {
            format!("timed out ({which}) after {limit} s ({TIMEOUT_VAR} sets the limit)")
        }
        e => e.to_string(),
    }
}

/// Downloads `url` to `dest`: streams it into a temporary file in `dest`'s folder,
/// checks the length (the server's Content-Length and `size` when given) and the
/// SHA-256, then renames it to `dest` (replacing a file there). A try that fails for a
/// reason that may pass (see [`Network`]) is made again, up to `network.attempts` tries;
/// a 404 or a wrong hash is not. On any error the temporary file is deleted, `dest` is
/// left as it was and no folder created for it remains; the error names the URL, `dest`,
/// the tries made and the cause, and for a hash mismatch the expected and the actual
/// hash. `progress` draws a bar on stderr.
pub fn download(
    url: &str,
    dest: &Path,
    sha256: &str,
    size: Option<u64>,
    progress: bool,
    network: &Network,
) -> Result<()> {
    let dir = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let file_name = dest
        .file_name()
        .with_context(|| format!("{} is not a file path", dest.display()))?
        .to_string_lossy()
        .into_owned();
    let _new_folders = NewFolders::create(dir)?;
    let job = Job {
        url,
        dir,
        dest,
        file_name,
        sha256: sha256.to_ascii_lowercase(),
        size,
    };
    let config = ureq::Agent::config_builder()
        .timeout_connect(Some(network.timeout))
        .timeout_send_request(Some(network.timeout))
        .timeout_recv_response(Some(network.timeout))
        .timeout_per_read(Some(network.timeout))
        .user_agent(concat!("pisa/", env!("CARGO_PKG_VERSION")))
        .build();
    let agent = ureq::Agent::new_with_config(config);
    let attempts = network.attempts.max(1);
    let mut pause = network.backoff;
    let mut attempt = 1;
    loop {
        let Err(failed) = job.once(&agent, network, progress) else {
            return Ok(());
        };
        if failed.transient && attempt < attempts {
            eprintln!(
                "{url}: attempt {attempt} of {attempts} failed ({:#}); trying again in {} s",
                failed.cause,
                pause.as_secs_f64()
            );
            std::thread::sleep(pause);
            pause *= 2;
            attempt += 1;
            continue;
        }
        let tries = match (attempt, failed.transient) {
            (1, false) => "1 attempt, not retried".to_string(),
            (n, false) => format!("{n} attempts, not retried further"),
            (n, true) => format!("{n} attempts"),
        };
        return Err(failed.cause.context(format!(
            "cannot download {url} to {} ({tries})",
            dest.display()
        )));
    }
}

/// One file to download, as [`download`] was asked.
struct Job<'a> {
    url: &'a str,
    /// The folder of `dest`, where the temporary file goes.
    dir: &'a Path,
    dest: &'a Path,
    file_name: String,
    /// Lower-case hex.
    sha256: String,
    size: Option<u64>,
}

impl Job<'_> {
    /// One try: on success the checked file is at `dest`; on failure the temporary file
    /// is gone.
    fn once(&self, agent: &ureq::Agent, network: &Network, progress: bool) -> Result<(), Failed> {
        let Job {
            url,
            dir,
            dest,
            file_name,
            ..
        } = self;
        let mut response = agent.get(*url).call().map_err(|e| Failed {
            transient: transient(&e),
            cause: anyhow::anyhow!("{}", describe(&e, network)),
        })?;
        let announced = response.body().content_length();
        if let (Some(announced), Some(size)) = (announced, self.size) {
            if announced != size {
                return Err(Failed::fatal(anyhow::anyhow!(
                    "the server announces {announced} bytes, but {file_name} has {size}"
                )));
            }
        }

        let prefix = format!(".{file_name}.");
        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix).suffix(".part");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            builder.permissions(std::fs::Permissions::from_mode(0o644));
        }
        let mut tmp = builder
            .tempfile_in(dir)
            .with_context(|| format!("cannot create a temporary file in {}", dir.display()))
            .map_err(Failed::fatal)?;

        let bar = if progress {
            let bar = ProgressBar::new(announced.or(self.size).unwrap_or(0));
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix} {bar:40} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
                )
                .expect("valid template"),
            );
            bar.set_prefix(file_name.clone());
            bar
        } else {
            ProgressBar::hidden()
        };
        let mut reader = response.body_mut().as_reader();
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 16];
        let mut got: u64 = 0;
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    bar.abandon();
                    let e = ureq::Error::from(e);
                    let of = announced.map_or(String::new(), |a| format!(" of {a}"));
                    return Err(Failed {
                        transient: transient(&e),
                        cause: anyhow::anyhow!(
                            "transfer interrupted after {got}{of} bytes: {}",
                            describe(&e, network)
                        ),
                    });
                }
            };
            hasher.update(&buf[..n]);
            tmp.write_all(&buf[..n])
                .with_context(|| format!("cannot write {}", tmp.path().display()))
                .map_err(Failed::fatal)?;
            got += n as u64;
            bar.set_position(got);
        }
        bar.finish_and_clear();
        if let Some(announced) = announced {
            if got != announced {
                return Err(Failed::transient(anyhow::anyhow!(
                    "connection closed after {got} of {announced} bytes"
                )));
            }
        }
        if let Some(size) = self.size {
            if got != size {
                let cause = anyhow::anyhow!("received {got} bytes, but {file_name} has {size}");
                // Fewer bytes may be a cut connection; more are another file.
                return Err(if got < size {
                    Failed::transient(cause)
                } else {
                    Failed::fatal(cause)
                });
            }
        }
        let actual = hex(&hasher.finalize());
        if actual != self.sha256 {
            return Err(Failed::fatal(anyhow::anyhow!(
                "SHA-256 mismatch for {file_name}: expected {}, got {actual}; the download \
                 was deleted",
                self.sha256
            )));
        }
        tmp.as_file()
            .sync_all()
            .with_context(|| format!("cannot write {}", tmp.path().display()))
            .map_err(Failed::fatal)?;
        tmp.persist(dest)
            .with_context(|| format!("cannot move the download to {}", dest.display()))
            .map_err(Failed::fatal)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_are_well_formed() {
        for name in DATASETS {
            let m = manifest(name).unwrap();
            assert_eq!(m.name, name);
            for f in &m.files {
                assert_eq!(f.sha256.len(), 64, "{}", f.name);
                assert!(f
                    .sha256
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
                assert!(!f.urls.is_empty());
                for url in &f.urls {
                    assert!(url.ends_with(&format!("/{}", f.name)), "{url}");
                }
            }
        }
        let err = manifest("imagenet").unwrap_err().to_string();
        assert!(err.contains("mnist, fashion-mnist, cifar10"), "{err}");
        // The reader finds what fetch unpacks: <dir>/cifar10/cifar-10-batches-bin.
        let cifar = manifest("cifar10").unwrap();
        let unpack = cifar.unpack.unwrap();
        assert_eq!(unpack.folder, crate::data::cifar::FOLDER);
        assert_eq!(unpack.expect.len(), 6);
        assert!(unpack.expect.iter().all(|(_, s)| *s == 30_730_000));
        // And the IDX reader finds what fetch downloads.
        for f in manifest("mnist").unwrap().files {
            let stem = f.name.trim_end_matches(".gz");
            assert!([
                crate::data::idx::TRAIN_IMAGES,
                crate::data::idx::TRAIN_LABELS,
                crate::data::idx::TEST_IMAGES,
                crate::data::idx::TEST_LABELS
            ]
            .contains(&stem));
        }
    }

    /// The official files this machine has must match the manifests.
    #[test]
    fn local_official_files_match() {
        let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/mnist");
        let debian = Path::new("/usr/share/datasets/fashion-mnist");
        for (dir, name) in [(shared.as_path(), "mnist"), (debian, "fashion-mnist")] {
            for f in manifest(name).unwrap().files {
                let path = dir.join(&f.name);
                if !path.is_file() {
                    eprintln!("skipped: {} not found", path.display());
                    continue;
                }
                let sha = sha256_file(&path).unwrap();
                assert!(
                    sha == f.sha256 || f.also_accepted.iter().any(|(s, _)| *s == sha),
                    "{}: {sha}",
                    path.display()
                );
            }
        }
    }

    #[test]
    fn only_failures_that_may_pass_are_retried() {
        use std::io::{Error as Io, ErrorKind as K};
        for (e, retry) in [
            (ureq::Error::StatusCode(503), true),
            (ureq::Error::StatusCode(500), true),
            (ureq::Error::StatusCode(429), true),
            (ureq::Error::StatusCode(404), false),
            (ureq::Error::StatusCode(403), false),
            (ureq::Error::Timeout(ureq::Timeout::PerRead), true),
            (ureq::Error::Timeout(ureq::Timeout::Connect), true),
            (ureq::Error::Io(Io::from(K::ConnectionReset)), true),
            (ureq::Error::Io(Io::from(K::UnexpectedEof)), true),
            (ureq::Error::Io(Io::from(K::ConnectionRefused)), false),
            (ureq::Error::HostNotFound, false),
        ] {
            assert_eq!(transient(&e), retry, "{e}");
        }
        let network = Network {
            timeout: Duration::from_millis(1500),
            ..Network::default()
        };
        let text = describe(&ureq::Error::Timeout(ureq::Timeout::PerRead), &network);
        assert!(
            text.starts_with("timed out: the server sent nothing for 1.5 s"),
            "{text}"
        );
        let text = describe(&ureq::Error::Timeout(ureq::Timeout::Connect), &network);
        assert!(
            text.starts_with("timed out (connect) after 1.5 s"),
            "{text}"
        );
    }

    #[test]
    fn sha256_of_a_known_string() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("abc");
        std::fs::write(&path, b"abc").unwrap();
        assert_eq!(
            sha256_file(&path).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
