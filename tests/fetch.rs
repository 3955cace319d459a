//! `pisa data fetch` and the download behind it, against a minimal HTTP/1.1 server on
//! 127.0.0.1 that serves fixture files: good, corrupt, cut short, missing.
mod common;

use common::*;
use pisa::data::fetch::{self, download, FileSpec, Manifest, Unpack};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;

/// What the server answers for a path.
#[derive(Clone)]
enum Reply {
    /// 200 with the body and its length.
    Body(Vec<u8>),
    /// 200 announcing `announced` bytes, then only the body, then the connection closes.
    Cut { body: Vec<u8>, announced: usize },
}

/// Serves `routes` (path → reply; anything else is a 404) until the test process ends.
/// Returns the base URL, e.g. http://127.0.0.1:40123.
fn serve(routes: Vec<(&str, Reply)>) -> String {
    let routes: HashMap<String, Reply> = routes
        .into_iter()
        .map(|(p, r)| (p.to_string(), r))
        .collect();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            // A client that hangs up early is not the server's problem.
            let _ = answer(stream, &routes);
        }
    });
    base
}

fn answer(mut stream: TcpStream, routes: &HashMap<String, Reply>) -> std::io::Result<()> {
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
    let head = |status: &str, length: usize| {
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/octet-stream\r\n\
             Content-Length: {length}\r\nConnection: close\r\n\r\n"
        )
    };
    match routes.get(path) {
        Some(Reply::Body(body)) => {
            stream.write_all(head("200 OK", body.len()).as_bytes())?;
            stream.write_all(body)?;
        }
        Some(Reply::Cut { body, announced }) => {
            stream.write_all(head("200 OK", *announced).as_bytes())?;
            stream.write_all(body)?;
        }
        None => {
            let body = b"not found";
            stream.write_all(head("404 Not Found", body.len()).as_bytes())?;
            stream.write_all(body)?;
        }
    }
    stream.flush()?;
    stream.shutdown(std::net::Shutdown::Both)
}

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
    let base = serve(vec![("/good.bin", Reply::Body(data.clone()))]);
    let s = Scratch::new();
    let dest = s.path().join("sub/good.bin");
    let sha = sha256(&data);
    download(
        &format!("{base}/good.bin"),
        &dest,
        &sha,
        Some(data.len() as u64),
        false,
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
    )
    .unwrap();
    assert_eq!(entries(&s.path().join("sub")), ["good.bin"]);
}

#[test]
fn a_corrupt_download_is_deleted_and_names_both_hashes() {
    let data = payload();
    let mut corrupt = data.clone();
    corrupt[1234] ^= 1;
    let base = serve(vec![("/data.bin", Reply::Body(corrupt.clone()))]);
    let s = Scratch::new();
    let dest = s.path().join("data.bin");
    let (good, bad) = (sha256(&data), sha256(&corrupt));
    let err = err_of(download(
        &format!("{base}/data.bin"),
        &dest,
        &good,
        None,
        false,
    ));
    assert!(err.contains("SHA-256 mismatch for data.bin"), "{err}");
    assert!(err.contains(&format!("expected {good}")), "{err}");
    assert!(err.contains(&format!("got {bad}")), "{err}");
    assert_nothing_written(s.path(), "corrupt download");

    // A file already at the destination stays as it was.
    std::fs::write(&dest, b"old").unwrap();
    err_of(download(
        &format!("{base}/data.bin"),
        &dest,
        &good,
        None,
        false,
    ));
    assert_eq!(std::fs::read(&dest).unwrap(), b"old");
    assert_eq!(entries(s.path()), ["data.bin"]);
}

#[test]
fn an_interrupted_transfer_leaves_nothing() {
    let data = payload();
    let base = serve(vec![(
        "/cut.bin",
        Reply::Cut {
            body: data[..50_000].to_vec(),
            announced: data.len(),
        },
    )]);
    let s = Scratch::new();
    let dest = s.path().join("cut.bin");
    let err = err_of(download(
        &format!("{base}/cut.bin"),
        &dest,
        &sha256(&data),
        Some(data.len() as u64),
        false,
    ));
    assert!(err.contains(&format!("{base}/cut.bin")), "{err}");
    assert!(err.contains("200000"), "{err}");
    assert_nothing_written(s.path(), "interrupted transfer");
}

#[test]
fn not_found_and_wrong_sizes_name_the_url() {
    let data = payload();
    let base = serve(vec![("/good.bin", Reply::Body(data.clone()))]);
    let s = Scratch::new();
    let dest = s.path().join("x.bin");
    let url = format!("{base}/missing.bin");
    let err = err_of(download(&url, &dest, &sha256(&data), None, false));
    assert!(err.contains(&url) && err.contains("404"), "{err}");
    // A server announcing another size than the manifest's is refused before the body.
    let url = format!("{base}/good.bin");
    let err = err_of(download(&url, &dest, &sha256(&data), Some(7), false));
    assert!(err.contains(&url) && err.contains("200000 bytes"), "{err}");
    let err = err_of(download(
        &closed_port_url(),
        &dest,
        &sha256(&data),
        None,
        false,
    ));
    assert!(err.contains("http://127.0.0.1:"), "{err}");
    assert_nothing_written(s.path(), "failed downloads");
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
    ]);
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
        fetch::fetch(&manifest, s.path(), None, false).unwrap_err()
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
    assert!(entries(&s.path().join("tiny")).is_empty());

    // A good copy already there is kept (its modification time shows it).
    let folder = s.path().join("tiny");
    std::fs::write(folder.join("labels.txt"), &labels).unwrap();
    let before = std::fs::metadata(folder.join("labels.txt"))
        .unwrap()
        .modified()
        .unwrap();
    let got = fetch::fetch(&manifest, s.path(), Some(&format!("{base}/")), false).unwrap();
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
    fetch::fetch(&manifest, s.path(), None, false).unwrap();
    // A wrong copy is replaced.
    std::fs::write(folder.join("labels.txt"), b"tampered").unwrap();
    std::fs::remove_file(folder.join("cifar-10-batches-bin/test_batch.bin")).unwrap();
    fetch::fetch(&manifest, s.path(), Some(&base), false).unwrap();
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
    assert!(entries(&folder).is_empty(), "{:?}", entries(&folder));

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
