//! The GAN task through `pisa run` on a small Fashion-MNIST-shaped folder: two players
//! trained in turns by their own optimizers in the one loop, WGAN's critic kept inside its
//! clip, per-player optimizer tables, the Fréchet score and the samples grid, determinism,
//! resume after kill -9, and located errors for GAN keys.
mod common;

use common::*;
use std::path::Path;

/// 160 training and 64 test images: 10 iterations an epoch at m·b = 16.
fn data(dir: &Path) {
    let folder = dir.join("fmnist");
    write_mnist(&folder, "train", 160);
    write_mnist(&folder, "t10k", 64);
}

fn spec(model: &str, optimizer: &str, extra: &str) -> String {
    let game = match model {
        "wgan" => "clip_value = 0.01",
        _ => "gp_weight = 10.0",
    };
    format!(
        r#"name = "gan"
seed = 4

[data]
kind = "fashion_mnist"
path = "fmnist"

[model]
kind = "{model}"

[gan]
nz = 8
ngf = 4
ndf = 4
image_size = 32
n_critic = 2
{game}
score_samples = 48
final_samples = 96

[train]
workers = 2
batch_size = 8
epochs = 2
eval_every = "epoch"
checkpoint_every = 3
threads = 1
{extra}

[optimizer]
{optimizer}
"#
    )
}

const SISA: &str = r#"name = "sisa"
scheme = 3
beta = 0.999
sigma0 = 0.1
rho = 999.9
gamma = 1.0
lambda = 1e-5"#;

fn checkpoint_tensor(run_dir: &Path, name: &str) -> tch::Tensor {
    let named = tch::Tensor::read_safetensors(run_dir.join("checkpoint.safetensors")).unwrap();
    let names: Vec<&String> = named.iter().map(|(n, _)| n).collect();
    named
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no {name} among {names:?}"))
        .1
        .shallow_clone()
}

#[test]
fn wgan_plays_both_players_in_turns_and_keeps_the_critic_clipped() {
    let s = Scratch::new();
    data(s.path());
    let file = s.write("gan.toml", &spec("wgan", SISA, ""));
    let data = s.path().to_str().unwrap().to_string();
    run(&file, &s.out(), &["--data-dir", &data]).expect_code(0, "pisa run");
    let dir = s.out().join("gan/default");
    let m = read_metrics(&dir);
    assert_eq!(m.column("iteration"), [0.0, 10.0, 20.0]);
    for column in [
        "wasserstein",
        "critic_loss",
        "generator_loss",
        "fd_fmnist",
        "critic_sigma",
        "generator_sigma",
    ] {
        let values = m.column(column);
        assert!(values.iter().all(|v| v.is_finite()), "{column}: {values:?}");
    }
    let fd = m.column("fd_fmnist");
    assert!(fd.iter().all(|&v| v > 0.0), "a distance: {fd:?}");
    // WGAN: critic_loss is −W (no penalty).
    let (w, loss) = (m.column("wasserstein"), m.column("critic_loss"));
    for (w, loss) in w.iter().zip(&loss) {
        assert!((w + loss).abs() < 1e-6, "{w} {loss}");
    }
    let critic = checkpoint_tensor(&dir, "optimizer.critic.w");
    let generator = checkpoint_tensor(&dir, "optimizer.generator.w");
    assert!(
        critic.abs().max().double_value(&[]) <= 0.01 + 1e-7,
        "clipped to ±0.01"
    );
    assert!(
        generator.abs().max().double_value(&[]) > 0.01,
        "the generator is not clipped"
    );
    // The generator moved every n_critic = 2 iterations: 10 of the 20 turns of the critic.
    let turns = |name: &str| checkpoint_tensor(&dir, name).int64_value(&[]);
    assert_eq!(turns("optimizer.critic.iteration"), 20);
    assert_eq!(turns("optimizer.generator.iteration"), 10);
    let png = std::fs::read(dir.join("samples.png")).unwrap();
    assert_eq!(&png[1..4], b"PNG", "samples.png is a PNG");
    assert_eq!(status(&dir), "completed");

    // The same seed and threads give the same numbers.
    let again = Scratch::new();
    run(&file, &again.out(), &["--data-dir", &data]).expect_code(0, "second run");
    assert_eq!(
        read_metrics(&again.out().join("gan/default")).numbers(),
        m.numbers()
    );
}

#[test]
fn wgan_gp_reports_its_penalty_and_players_take_their_own_optimizer_tables() {
    let s = Scratch::new();
    data(s.path());
    let adam = "name = \"adam\"\nlr = 0.0002\nbeta1 = 0.5\n\n[optimizer.generator]\nlr = 0.001";
    let file = s.write("gan.toml", &spec("wgan_gp", adam, ""));
    let data = s.path().to_str().unwrap().to_string();
    run(&file, &s.out(), &["--data-dir", &data]).expect_code(0, "pisa run");
    let dir = s.out().join("gan/default");
    let m = read_metrics(&dir);
    assert!(m.column("critic_lr").iter().all(|&lr| lr == 0.0002));
    assert!(m.column("generator_lr").iter().all(|&lr| lr == 0.001));
    // critic_loss = −W + the penalty, which is positive.
    let (w, loss) = (m.column("wasserstein"), m.column("critic_loss"));
    assert!(
        w.iter().zip(&loss).all(|(w, l)| l + w > 0.0),
        "{w:?} {loss:?}"
    );
    let resolved = read_spec(&dir);
    assert_eq!(
        toml_get(&resolved, "optimizer.generator.lr").and_then(|v| v.as_float()),
        Some(0.001)
    );
    assert_eq!(
        toml_get(&resolved, "optimizer.beta2").and_then(|v| v.as_float()),
        Some(0.999),
        "the shared table's defaults are written out"
    );
}

#[test]
fn kill_9_resumes_to_identical_metrics() {
    let s = Scratch::new();
    data(s.path());
    let file = s.write("gan.toml", &spec("wgan", SISA, ""));
    let data = s.path().to_str().unwrap().to_string();
    assert_kill_9_resumes(&file, &data, "gan/default");
}

#[test]
fn gan_keys_are_checked_and_located() {
    let s = Scratch::new();
    data(s.path());
    let data = s.path().to_str().unwrap().to_string();
    for (text, key, fragment) in [
        (
            spec("wgan", SISA, "").replace("clip_value = 0.01", "gp_weight = 10.0"),
            "gan.gp_weight",
            "wgan clips",
        ),
        (
            spec("wgan", SISA, "").replace("image_size = 32", "image_size = 48"),
            "gan.image_size",
            "32 or 64",
        ),
        (
            spec(
                "wgan",
                &format!("{SISA}\n\n[optimizer.critic]\nsigma = 2.0"),
                "",
            ),
            "optimizer.critic.sigma",
            "sigma",
        ),
        (
            spec("wgan", SISA, "micro_batch = 4"),
            "train.micro_batch",
            "does not apply to a GAN",
        ),
    ] {
        let file = s.write("bad.toml", &text);
        let out = run(&file, &s.out(), &["--data-dir", &data]);
        out.expect_code(2, key)
            .expect_stderr(&["bad.toml:", key, fragment], key);
        assert_nothing_written(&s.out(), key);
    }
}
