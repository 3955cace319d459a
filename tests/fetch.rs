//! `pisa data fetch` and the download behind it, against a minimal HTTP/1.1 server on
//! 127.0.0.1 that serves fixture files: good, corrupt, cut short, missing, stalled, flaky.
mod common;

use common::*;
use pisa::data::fetch::{self, download, FileSpec, Manifest, Network, Unpack};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the server answers for a path.
#[derive(Clone)]
enum Reply {
    /// 200 with the body and its length.
    Body(Vec<u8>),
    /// 200 announcing `announced` bytes, then only the body, then the connection closes.
    Cut { body: Vec<u8>, announced: usize },
    /// This status line (e.g. "503 Service Unavailable") with a short body.
    Status(&'static str),
    /// The connection closes before any answer.
    Hangup,
    /// 200 announcing `announced` bytes, then silence until the client hangs up (at most
    /// 30 s).
    Stall { announced: usize },
    /// The n-th request (from 0) is answered by `first[n]`, the later ones by `then`.
    Flaky { first: Vec<Reply>, then: Box<Reply> },
}

/// A server on 127.0.0.1 that counts the requests for each path.
struct Server {
    /// E.g. http://127.0.0.1:40123.
    base: String,
    hits: Arc<Mutex<HashMap<String, usize>>>,
}

impl Server {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// How many requests `path` had.
    fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}

/// Serves `routes` (path → reply; anything else is a 404), each connection on its own
/// thread, until the test process ends.
fn serve(routes: Vec<(&str, Reply)>) -> Server {
    let routes: Arc<HashMap<String, Reply>> = Arc::new(
        routes
            .into_iter()
            .map(|(p, r)| (p.to_string(), r))
            .collect(),
    );
    let hits = Arc::new(Mutex::new(HashMap::new()));
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let counts = Arc::clone(&hits);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let (routes, counts) = (Arc::clone(&routes), Arc::clone(&counts));
            // A client that hangs up early is not the server's problem.
            std::thread::spawn(move || answer(stream, &routes, &counts));
        }
    });
    Server { base, hits }
}

fn answer(
    mut stream: TcpStream,
    routes: &HashMap<String, Reply>,
    hits: &Mutex<HashMap<String, usize>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    // Skip the headers, up to the empty line.
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
    }
    let path = request_line.split_whitespace().nth(1).unwrap_or("/");
    let n = {
        let mut hits = hits.lock().unwrap();
        let count = hits.entry(path.to_string()).or_insert(0);
        *count += 1;
        *count - 1
    };
    let head = |status: &str, length: usize| {
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/octet-stream\r\n\
             Content-Length: {length}\r\nConnection: close\r\n\r\n"
        )
    };
    let mut reply = routes.get(path).unwrap_or(&Reply::Status("404 Not Found"));
    while let Reply::Flaky { first, then } = reply {
        reply = first.get(n).unwrap_or(then);
    }
    match reply {
        Reply::Body(body) => {
            stream.write_all(head("200 OK", body.len()).as_bytes())?;
            stream.write_all(body)?;
        }
        Reply::Cut { body, announced } => {
            stream.write_all(head("200 OK", *announced).as_bytes())?;
            stream.write_all(body)?;
        }
        Reply::Status(status) => {
            let body = status.as_bytes();
            stream.write_all(head(status, body.len()).as_bytes())?;
            stream.write_all(body)?;
        }
        Reply::Hangup => {}
        Reply::Stall { announced } => {
            stream.write_all(head("200 OK", *announced).as_bytes())?;
            stream.flush()?;
            // Returns when the client closes the connection, or after 30 s.
            stream.set_read_timeout(Some(Duration::from_secs(30)))?;
            let _ = stream.read(&mut [0u8; 1]);
        }
        Reply::Flaky { .. } => unreachable!("resolved above"),
    }
    stream.flush()?;
    stream.shutdown(std::net::Shutdown::Both)
}

/// Short timeouts and back-off, so that failures fail fast.
const FAST: Network = Network {
    timeout: Duration::from_secs(2),
    attempts: 3,
    backoff: Duration::from_millis(20),
};

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// 200 kB that are not all alike.
fn payload() -> Vec<u8> {
    (0..200_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

/// A URL nothing listens on.
fn closed_port_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    url
}

fn err_of(r: anyhow::Result<()>) -> String {
    format!("{:#}", r.expect_err("expected an error"))
}

#[test]
fn a_good_download_is_checked_and_renamed_into_place() {
    let data = payload();
    let base = serve(vec![("/good.bin", Reply::Body(data.clone()))]).base;
    let s = Scratch::new();
    let dest = s.path().join("sub/good.bin");
    let sha = sha256(&data);
    download(
        &format!("{base}/good.bin"),
        &dest,
        &sha,
        Some(data.len() as u64),
        false,
        &FAST,
    )
    .unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), data);
    assert_eq!(
        entries(&s.path().join("sub")),
        ["good.bin"],
        "no temporary file left"
    );
    // Upper-case hex is as good, and no size is fine.
    download(
        &format!("{base}/good.bin"),
        &dest,
        &sha.to_uppercase(),
        None,
        false,
        &FAST,
    )
    .unwrap();
    assert_eq!(entries(&s.path().join("sub")), ["good.bin"]);
}

#[test]
fn a_corrupt_download_is_deleted_and_names_both_hashes() {
    let data = payload();
    let mut corrupt = data.clone();
    corrupt[1234] ^= 1;
    let server = serve(vec![("/data.bin", Reply::Body(corrupt.clone()))]);
    let base = &server.base;
    let s = Scratch::new();
    let dest = s.path().join("data.bin");
    let (good, bad) = (sha256(&data), sha256(&corrupt));
    let err = err_of(download(
        &format!("{base}/data.bin"),
        &dest,
        &good,
        None,
        false,
        &FAST,
    ));
    assert!(err.contains("SHA-256 mismatch for data.bin"), "{err}");
    assert!(err.contains(&format!("expected {good}")), "{err}");
    assert!(err.contains(&format!("got {bad}")), "{err}");
    // The server has another file: asking again would not help.
    assert!(err.contains("1 attempt, not retried"), "{err}");
    assert_eq!(server.hits("/data.bin"), 1);
    assert_nothing_written(s.path(), "corrupt download");

    // A file already at the destination stays as it was.
    std::fs::write(&dest, b"old").unwrap();
    err_of(download(
        &format!("{base}/data.bin"),
        &dest,
        &good,
        None,
        false,
        &FAST,
    ));
    assert_eq!(std::fs::read(&dest).unwrap(), b"old");
    assert_eq!(entries(s.path()), ["data.bin"]);
}

#[test]
fn an_interrupted_transfer_leaves_nothing() {
    let data = payload();
    let server = serve(vec![(
        "/cut.bin",
        Reply::Cut {
            body: data[..50_000].to_vec(),
            announced: data.len(),
        },
    )]);
    let base = &server.base;
    let s = Scratch::new();
    let dest = s.path().join("cut.bin");
    let err = err_of(download(
        &format!("{base}/cut.bin"),
        &dest,
        &sha256(&data),
        Some(data.len() as u64),
        false,
        &FAST,
    ));
    assert!(err.contains(&format!("{base}/cut.bin")), "{err}");
    assert!(err.contains("200000"), "{err}");
    assert!(
        err.contains(&format!("to {} (3 attempts)", dest.display())),
        "{err}"
    );
    assert_eq!(server.hits("/cut.bin"), 3);
    assert_nothing_written(s.path(), "interrupted transfer");
}

#[test]
fn not_found_and_wrong_sizes_name_the_url() {
    let data = payload();
    let server = serve(vec![("/good.bin", Reply::Body(data.clone()))]);
    let base = &server.base;
    let s = Scratch::new();
    // The folders the download would have created are gone too.
    let dest = s.path().join("new/sub/x.bin");
    let url = format!("{base}/missing.bin");
    let err = err_of(download(&url, &dest, &sha256(&data), None, false, &FAST));
    assert!(
        err.contains(&url) && err.contains("HTTP status 404"),
        "{err}"
    );
    assert!(err.contains(&dest.display().to_string()), "{err}");
    assert!(err.contains("1 attempt, not retried"), "{err}");
    assert_eq!(server.hits("/missing.bin"), 1, "a 404 is not retried");
    // A server announcing another size than the manifest's is refused before the body.
    let url = format!("{base}/good.bin");
    let err = err_of(download(&url, &dest, &sha256(&data), Some(7), false, &FAST));
    assert!(err.contains(&url) && err.contains("200000 bytes"), "{err}");
    assert_eq!(server.hits("/good.bin"), 1, "another file is not retried");
    // Nothing listens there: refused at once, not retried.
    let err = err_of(download(
        &closed_port_url(),
        &dest,
        &sha256(&data),
        None,
        false,
        &FAST,
    ));
    assert!(err.contains("http://127.0.0.1:"), "{err}");
    assert!(err.contains("1 attempt, not retried"), "{err}");
    assert_nothing_written(s.path(), "failed downloads");
}

#[test]
fn transient_failures_are_retried_until_the_right_bytes_come() {
    let data = payload();
    let sha = sha256(&data);
    let half = Reply::Cut {
        body: data[..100_000].to_vec(),
        announced: data.len(),
    };
    let server = serve(vec![
        (
            "/flaky.bin",
            Reply::Flaky {
                first: vec![Reply::Status("503 Service Unavailable"), half],
                then: Box::new(Reply::Body(data.clone())),
            },
        ),
        (
            "/reset.bin",
            Reply::Flaky {
                first: vec![Reply::Hangup],
                then: Box::new(Reply::Body(data.clone())),
            },
        ),
        ("/down.bin", Reply::Status("503 Service Unavailable")),
    ]);
    let s = Scratch::new();
    let size = Some(data.len() as u64);

    // A 503, then a body cut short, then the file.
    let dest = s.path().join("flaky.bin");
    download(&server.url("/flaky.bin"), &dest, &sha, size, false, &FAST).unwrap();
    assert_eq!(server.hits("/flaky.bin"), 3);
    assert_eq!(std::fs::read(&dest).unwrap(), data);
    // A connection closed before any answer, then the file.
    let dest = s.path().join("reset.bin");
    download(&server.url("/reset.bin"), &dest, &sha, size, false, &FAST).unwrap();
    assert_eq!(server.hits("/reset.bin"), 2);
    assert_eq!(std::fs::read(&dest).unwrap(), data);
    assert_eq!(entries(s.path()), ["flaky.bin", "reset.bin"]);

    // A server that stays down: three tries, then an error that says so.
    let dest = s.path().join("down.bin");
    let url = server.url("/down.bin");
    let err = err_of(download(&url, &dest, &sha, size, false, &FAST));
    assert!(
        err.contains(&format!(
            "cannot download {url} to {} (3 attempts): HTTP status 503",
            dest.display()
        )),
        "{err}"
    );
    assert_eq!(server.hits("/down.bin"), 3);
    assert_eq!(entries(s.path()), ["flaky.bin", "reset.bin"]);
}

#[test]
fn a_404_is_asked_once_and_the_folder_is_left_as_it_was() {
    let server = serve(vec![]);
    let kept = b"kept".to_vec();
    let spec = |name: &str, bytes: &[u8]| FileSpec {
        name: name.into(),
        urls: vec![server.url(&format!("/{name}"))],
        sha256: sha256(bytes),
        size: bytes.len() as u64,
        also_accepted: vec![],
    };
    let manifest = Manifest {
        name: "pair".into(),
        folder: "pair".into(),
        files: vec![spec("kept.txt", &kept), spec("missing.txt", b"missing")],
        unpack: None,
    };
    let s = Scratch::new();
    // Neither the data directory nor the dataset folder exists: neither is left behind.
    let data_dir = s.path().join("data");
    let err = format!(
        "{:#}",
        fetch::fetch(&manifest, &data_dir, None, false, &FAST).unwrap_err()
    );
    assert!(
        err.contains("could not download 2 of the 2 files of pair"),
        "{err}"
    );
    let dest = data_dir.join("pair/missing.txt");
    assert!(
        err.contains(&format!(
            "cannot download {} to {} (1 attempt, not retried): HTTP status 404",
            server.url("/missing.txt"),
            dest.display()
        )),
        "{err}"
    );
    assert_eq!(server.hits("/kept.txt"), 1);
    assert_eq!(server.hits("/missing.txt"), 1);
    assert!(!data_dir.exists(), "{:?}", entries(s.path()));

    // A folder that was there stays, with the file already verified in it.
    let folder = data_dir.join("pair");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("kept.txt"), &kept).unwrap();
    let err = format!(
        "{:#}",
        fetch::fetch(&manifest, &data_dir, None, false, &FAST).unwrap_err()
    );
    assert!(
        err.contains("could not download 1 of the 2 files of pair"),
        "{err}"
    );
    assert_eq!(
        server.hits("/kept.txt"),
        1,
        "a verified file is not fetched"
    );
    assert_eq!(server.hits("/missing.txt"), 2);
    assert_eq!(entries(&folder), ["kept.txt"]);
    assert_eq!(std::fs::read(folder.join("kept.txt")).unwrap(), kept);
}

/// A CIFAR-10-like archive: cifar-10-batches-bin/ with two 2-record files.
fn tiny_cifar_tar_gz() -> Vec<u8> {
    let record = |label: u8| {
        let mut r = vec![label];
        r.extend((0..3072u32).map(|i| (i % 251) as u8));
        r
    };
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    for (name, labels) in [("data_batch_1.bin", [3u8, 4]), ("test_batch.bin", [9, 0])] {
        let bytes: Vec<u8> = labels.iter().flat_map(|&l| record(l)).collect();
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(
            &mut header,
            format!("cifar-10-batches-bin/{name}"),
            bytes.as_slice(),
        )
        .unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap()
}

#[test]
fn fetch_skips_good_files_downloads_the_rest_and_unpacks_for_the_reader() {
    let archive = tiny_cifar_tar_gz();
    let labels = b"labels".to_vec();
    let base = serve(vec![
        ("/tiny.tar.gz", Reply::Body(archive.clone())),
        ("/labels.txt", Reply::Body(labels.clone())),
    ])
    .base;
    let spec = |name: &str, bytes: &[u8]| FileSpec {
        name: name.into(),
        urls: vec![format!("{}/{name}", closed_port_url())],
        sha256: sha256(bytes),
        size: bytes.len() as u64,
        also_accepted: vec![],
    };
    let manifest = Manifest {
        name: "tiny".into(),
        folder: "tiny".into(),
        files: vec![spec("tiny.tar.gz", &archive), spec("labels.txt", &labels)],
        unpack: Some(Unpack {
            archive: "tiny.tar.gz".into(),
            folder: "cifar-10-batches-bin".into(),
            expect: vec![
                ("data_batch_1.bin".into(), 2 * 3073),
                ("test_batch.bin".into(), 2 * 3073),
            ],
        }),
    };
    let s = Scratch::new();
    // The official URLs fail, so without a mirror the error says what to put where.
    let err = format!(
        "{:#}",
        fetch::fetch(&manifest, s.path(), None, false, &FAST).unwrap_err()
    );
    assert!(
        err.contains("could not download 2 of the 2 files of tiny"),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "put these files in {}",
            s.path().join("tiny").display()
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "tiny.tar.gz ({} bytes, SHA-256 {})",
            archive.len(),
            sha256(&archive)
        )),
        "{err}"
    );
    assert!(err.contains("tar xzf tiny.tar.gz"), "{err}");
    // The dataset folder it created is not left behind empty.
    assert!(!s.path().join("tiny").exists());

    // A good copy already there is kept (its modification time shows it).
    let folder = s.path().join("tiny");
    std::fs::create_dir(&folder).unwrap();
    std::fs::write(folder.join("labels.txt"), &labels).unwrap();
    let before = std::fs::metadata(folder.join("labels.txt"))
        .unwrap()
        .modified()
        .unwrap();
    let got = fetch::fetch(&manifest, s.path(), Some(&format!("{base}/")), false, &FAST).unwrap();
    assert_eq!(got, folder);
    let after = std::fs::metadata(folder.join("labels.txt"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(before, after);
    assert_eq!(
        entries(&folder),
        ["cifar-10-batches-bin", "labels.txt", "tiny.tar.gz"]
    );

    // The CIFAR reader reads what was unpacked, from the dataset folder.
    let data = pisa::data::cifar::load(&folder).unwrap();
    assert_eq!(data.train.images.size(), vec![2, 3, 32, 32]);
    assert_eq!(Vec::<i64>::try_from(&data.test.labels).unwrap(), vec![9, 0]);

    // Once unpacked, fetching again needs no network at all.
    fetch::fetch(&manifest, s.path(), None, false, &FAST).unwrap();
    // A wrong copy is replaced.
    std::fs::write(folder.join("labels.txt"), b"tampered").unwrap();
    std::fs::remove_file(folder.join("cifar-10-batches-bin/test_batch.bin")).unwrap();
    fetch::fetch(&manifest, s.path(), Some(&base), false, &FAST).unwrap();
    assert_eq!(std::fs::read(folder.join("labels.txt")).unwrap(), labels);
    assert_eq!(
        entries(&folder.join("cifar-10-batches-bin")),
        ["data_batch_1.bin", "test_batch.bin"]
    );
}

#[test]
fn cli_without_network_says_where_to_put_the_files() {
    let s = Scratch::new();
    let o = pisa([
        "data",
        "fetch",
        "mnist",
        "--dir",
        s.path().to_str().unwrap(),
        "--mirror",
        &closed_port_url(),
    ]);
    o.expect_code(1, "fetch with no server");
    let folder = s.path().join("mnist");
    o.expect_stderr(
        &[
            "could not download 4 of the 4 files of mnist",
            &format!("put these files in {} by hand", folder.display()),
            "train-images-idx3-ubyte.gz (9912422 bytes, SHA-256 440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609)",
            "t10k-labels-idx1-ubyte.gz",
            "https://ossci-datasets.s3.amazonaws.com/mnist/train-labels-idx1-ubyte.gz",
            "pisa data fetch mnist",
        ],
        "fetch with no server",
    );
    assert!(!folder.exists(), "{:?}", entries(&folder));

    let o = pisa([
        "data",
        "fetch",
        "imagenet",
        "--dir",
        s.path().to_str().unwrap(),
    ]);
    o.expect_code(2, "unknown dataset");
    o.expect_stderr(&["mnist", "fashion-mnist", "cifar10"], "unknown dataset");
}

#[test]
fn cli_gives_up_on_a_stalled_body_within_seconds() {
    let stalled = "/train-labels-idx1-ubyte.gz";
    let server = serve(vec![(stalled, Reply::Stall { announced: 28_881 })]);
    let s = Scratch::new();
    let dir = s.path().to_str().unwrap();
    let mut c = command();
    c.args([
        "data",
        "fetch",
        "mnist",
        "--dir",
        dir,
        "--mirror",
        &server.base,
    ]);
    c.env(fetch::TIMEOUT_VAR, "1");
    let start = Instant::now();
    let o = finish(&mut c);
    let took = start.elapsed();
    o.expect_code(1, "stalled body");
    let dest = s.path().join("mnist/train-labels-idx1-ubyte.gz");
    o.expect_stderr(
        &[
            &format!(
                "cannot download {} to {} (3 attempts): transfer interrupted after 0 of 28881 \
                 bytes: timed out: the server sent nothing for 1 s",
                server.url(stalled),
                dest.display()
            ),
            "HTTP status 404",
            "could not download 4 of the 4 files of mnist",
        ],
        "stalled body",
    );
    assert_eq!(server.hits(stalled), 3);
    for other in [
        "/train-images-idx3-ubyte.gz",
        "/t10k-images-idx3-ubyte.gz",
        "/t10k-labels-idx1-ubyte.gz",
    ] {
        assert_eq!(server.hits(other), 1, "{other}");
    }
    // Three tries of 1 s and two pauses (0.5 s, 1 s); the default timeout would take 90 s.
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_secs(15),
        "{took:?}"
    );
    // No temporary file, and not the mnist folder the command created.
    assert!(entries(s.path()).is_empty(), "{:?}", entries(s.path()));

    for bad in ["soon", "0", "-1"] {
        let mut c = command();
        c.args([
            "data",
            "fetch",
            "mnist",
            "--dir",
            dir,
            "--mirror",
            &server.base,
        ]);
        c.env(fetch::TIMEOUT_VAR, bad);
        let o = finish(&mut c);
        o.expect_code(1, bad);
        o.expect_stderr(
            &[&format!(
                "{}={bad:?} is not a positive number of seconds",
                fetch::TIMEOUT_VAR
            )],
            bad,
        );
    }
    assert_eq!(
        server.hits(stalled),
        3,
        "a bad timeout fails before the network"
    );
}

/// Copies the official files this machine has into `<dir>/<folder>`; false if absent.
fn place(from: &Path, names: &[&str], to: &Path) -> bool {
    if !names.iter().all(|n| from.join(n).is_file()) {
        eprintln!("skipped: {} lacks {names:?}", from.display());
        return false;
    }
    std::fs::create_dir_all(to).unwrap();
    for n in names {
        std::fs::copy(from.join(n), to.join(n)).unwrap();
    }
    true
}

#[test]
fn cli_keeps_files_already_there() {
    let s = Scratch::new();
    let dir = s.path().to_str().unwrap();
    let mirror = closed_port_url();

    // The shared MNIST test files are the official ones: only the training pair fails.
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/mnist");
    let test_files = ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"];
    if place(&shared, &test_files, &s.path().join("mnist")) {
        let o = pisa(["data", "fetch", "mnist", "--dir", dir, "--mirror", &mirror]);
        o.expect_code(1, "mnist with its test files");
        o.expect_stderr(
            &[
                "t10k-images-idx3-ubyte.gz already there, SHA-256 ok",
                "could not download 2 of the 4 files of mnist",
            ],
            "mnist with its test files",
        );
        assert!(
            !o.stderr.contains("t10k-labels-idx1-ubyte.gz ("),
            "{}",
            o.stderr
        );
        assert_eq!(entries(&s.path().join("mnist")), test_files);
    }

    // Debian's Fashion-MNIST: all four there, nothing to download.
    let names = [
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ];
    let debian = Path::new("/usr/share/datasets/fashion-mnist");
    if place(debian, &names, &s.path().join("fashion-mnist")) {
        let mut c = command();
        c.args(["data", "fetch", "fashion-mnist", "--mirror", &mirror]);
        c.env("PISA_DATA_DIR", dir);
        let o = finish(&mut c);
        o.expect_code(0, "fashion-mnist in place");
        o.expect_stderr(
            &["train-images-idx3-ubyte.gz already there, SHA-256 ok"],
            "fashion-mnist in place",
        );
        assert_eq!(
            o.stdout.trim(),
            s.path().join("fashion-mnist").display().to_string()
        );
    }
}
