//! pisa's PISA/SISA against trajectories from an independent PyTorch implementation of
//! Algorithms 1-2 (scripts/reference_ls.py golden tests/data/least_squares).
use std::path::Path;
use std::process::Command;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/least_squares");

fn objectives(csv: &Path) -> Vec<f64> {
    let text = std::fs::read_to_string(csv).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = header.iter().position(|h| *h == "objective").unwrap();
    lines
        .map(|l| l.split(',').nth(col).unwrap().parse().unwrap())
        .collect()
}

fn check(case: &str, optimizer: &str) {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("spec.toml");
    std::fs::write(
        &spec,
        format!(
            "name = \"golden\"\n[data]\nkind = \"least_squares\"\npath = \"problem.npz\"\n\
             [train]\nworkers = 4\niterations = 60\n\
             [optimizer]\n{optimizer}\nsigma0 = 4.0\nrho = 0.5\ngamma = 0.9\nk0 = 2\nlambda = 0.01\nmu = 0.03\n"
        ),
    )
    .unwrap();
    let out = dir.path().join("out");
    let status = Command::new(env!("CARGO_BIN_EXE_pisa"))
        .args([
            "run",
            spec.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--data-dir",
            DATA,
        ])
        .status()
        .unwrap();
    assert!(status.success(), "{case}: pisa run failed");
    let ours = objectives(&out.join("golden/default/metrics.csv"));
    let want = objectives(&Path::new(DATA).join(format!("golden-{case}.csv")));
    assert_eq!(ours.len(), want.len(), "{case}: rows");
    for (l, (o, w)) in ours.iter().zip(&want).enumerate() {
        assert!(
            (o - w).abs() <= 1e-10 * w.abs(),
            "{case}: iteration {l}: pisa {o}, reference {w}"
        );
    }
    assert!(ours[60] < 0.5 * ours[0], "{case}: the objective decreased");
}

#[test]
fn pisa_identity_matches_reference() {
    check(
        "pisa-identity",
        "name = \"pisa\"\nprecondition = \"identity\"",
    );
}

#[test]
fn pisa_hessian_matches_reference() {
    check(
        "pisa-hessian",
        "name = \"pisa\"\nprecondition = \"hessian\"",
    );
}

#[test]
fn sisa_scheme_one_matches_reference() {
    check("sisa-1", "name = \"sisa\"\nscheme = 1");
}

#[test]
fn sisa_scheme_two_matches_reference() {
    check("sisa-2", "name = \"sisa\"\nscheme = 2");
}

#[test]
fn sisa_scheme_three_with_clip_matches_reference() {
    check("sisa-3", "name = \"sisa\"\nscheme = 3\neta = 3.0");
}
