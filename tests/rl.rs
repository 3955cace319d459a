//! The reinforcement-learning task through `pisa run` on InvertedDoublePendulum: collects,
//! passes and chunks on the one loop's clock, the step size's per-collect decay dividing
//! σ and ρ, the ADMM state rebuilt after every collect, determinism, resume after kill -9
//! mid-collect, and located errors for `[rl]` keys.
mod common;

use common::*;

/// PPO-SISA, small: 2 environments, 64-transition collects (2 chunks of 4 workers × 8),
/// 2 passes, 2 collects an epoch (8 iterations).
#[test]
fn ppo_runs_collects_of_passes_and_rebuilds_the_admm_state_after_each() {
    let s = Scratch::new();
    let file = s.write("rl.toml", &rl_spec("", 2));
    run(&file, &s.out(), &[]).expect_code(0, "pisa run");
    let dir = s.out().join("rl/default");
    let m = read_metrics(&dir);
    assert_eq!(m.column("iteration"), [0.0, 8.0, 16.0]);
    assert_eq!(m.column("env_steps"), [0.0, 128.0, 256.0]);
    // 4 collects: collect c runs with f = 1 − c/4, σ = 5/f; a row shows the last one's.
    assert_eq!(m.column("sigma"), [5.0, 5.0 / 0.75, 5.0 / 0.25]);
    for column in [
        "test_return",
        "train_return",
        "policy_loss",
        "value_loss",
        "entropy",
    ] {
        let v = m.column(column);
        assert!(v[1..].iter().all(|x| x.is_finite()), "{column}: {v:?}");
    }
    assert!(
        m.column("test_return")[0] > 0.0,
        "IDP pays for every step alive"
    );
    // The run ended with a collect: the duals were reset after its last iteration.
    let dual = checkpoint_tensor(&dir, "optimizer.dual");
    assert_eq!(dual.abs().max().double_value(&[]), 0.0);

    let kept = Scratch::new();
    let file = kept.write("rl.toml", &rl_spec("restart_admm = false", 2));
    run(&file, &kept.out(), &[]).expect_code(0, "restart_admm = false");
    let dir = kept.out().join("rl/default");
    let dual = checkpoint_tensor(&dir, "optimizer.dual");
    assert!(
        dual.abs().max().double_value(&[]) > 0.0,
        "the duals carried on"
    );
    assert_ne!(read_metrics(&dir).numbers(), m.numbers());

    // The same seed and threads give the same numbers.
    let again = Scratch::new();
    let file = again.write("rl.toml", &rl_spec("", 2));
    run(&file, &again.out(), &[]).expect_code(0, "second run");
    assert_eq!(
        read_metrics(&again.out().join("rl/default")).numbers(),
        m.numbers()
    );
}

#[test]
fn kill_9_mid_collect_resumes_to_identical_metrics() {
    let s = Scratch::new();
    let file = s.write("rl.toml", &rl_spec("", 6));
    assert_kill_9_resumes(&file, s.path().to_str().unwrap(), "rl/default");
}

#[test]
fn rl_keys_are_checked_and_located() {
    let s = Scratch::new();
    let base = rl_spec("", 1);
    for (text, key, fragment) in [
        (
            edit(&base, "InvertedDoublePendulum-v4", "Walker2d-v4"),
            "rl.env",
            "unknown environment",
        ),
        (
            edit(&base, "step_per_collect = 64", "step_per_collect = 63"),
            "rl.step_per_collect",
            "multiple of train_envs",
        ),
        (
            edit(
                &base,
                "repeat = 2",
                "repeat = 2\nalgorithm = \"a2c\"\neps_clip = 0.1",
            ),
            "rl.eps_clip",
            "PPO's",
        ),
        (
            edit(&base, "batch_size = 8", "batch_size = 7"),
            "train.batch_size",
            "more than the 4 workers",
        ),
        (
            edit(&base, "kind = \"environment\"", "kind = \"least_squares\""),
            "rl",
            "data.kind = \"environment\"",
        ),
        (
            edit(&base, "[train]", "[model]\nkind = \"mlp\"\n\n[train]"),
            "model",
            "does not apply to environment data",
        ),
    ] {
        let file = s.write("bad.toml", &text);
        let out = run(&file, &s.out(), &[]);
        out.expect_code(2, key)
            .expect_stderr(&["bad.toml:", key, fragment], key);
        assert_nothing_written(&s.out(), key);
    }
}

fn checkpoint_tensor(run_dir: &std::path::Path, name: &str) -> tch::Tensor {
    let tensors = tch::Tensor::read_safetensors(run_dir.join("checkpoint.safetensors")).unwrap();
    tensors
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no {name} in the checkpoint"))
        .1
}
