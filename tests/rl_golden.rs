//! The pieces of pisa's PPO and A2C against Tianshou 1.2.0 itself (tests/data/rl/, written
//! by scripts/rl_golden.py from Tianshou's classes in f64): GAE on a vector buffer, the
//! running statistics that normalise observations and returns, the MuJoCo actor-critic
//! (names, shapes, outputs, log-probabilities, entropy), the PPO and A2C losses with every
//! parameter's gradient before and after norm clipping, and `map_action`.
//!
//! Tianshou's `learn` shuffles the mini-batch, so its sums run in another order: values
//! agree to 1e-12, not bit for bit.
use pisa::models::actor_critic::{entropy, log_prob, ActorCritic};
use pisa::rl::running_mean_std::{RunningMeanStd, OBS_CLIP, OBS_EPS, RETURN_EPS};
use pisa::spec::RlSpec;
use pisa::tasks::policy_loss::{MiniBatch, Objective};
use pisa::tasks::rollout::Rollout;
use serde_json::Value;
use tch::{Kind, Tensor};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/rl");
const TOLERANCE: f64 = 1e-12;

fn golden(name: &str) -> Value {
    let text = std::fs::read_to_string(format!("{DATA}/{name}")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn floats(v: &Value) -> Vec<f64> {
    match v {
        Value::Array(items) => items.iter().flat_map(floats).collect(),
        other => vec![other.as_f64().unwrap()],
    }
}

fn close(ours: &[f64], theirs: &[f64], what: &str) {
    assert_eq!(ours.len(), theirs.len(), "{what}: lengths");
    for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
        let scale = b.abs().max(1.0);
        assert!(
            (a - b).abs() <= TOLERANCE * scale,
            "{what}[{i}]: {a} vs Tianshou's {b}"
        );
    }
}

fn values(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(t.to_kind(Kind::Double).flatten(0, -1)).unwrap()
}

/// A [rows, cols] tensor of the golden's nested array.
fn matrix(v: &Value) -> Tensor {
    let rows = v.as_array().unwrap().len() as i64;
    Tensor::from_slice(&floats(v)).view([rows, -1])
}

#[test]
fn gae_matches_compute_episodic_return() {
    let g = golden("gae.json");
    let (envs, steps) = (g["n_env"].as_u64().unwrap(), g["steps"].as_u64().unwrap());
    let mut rollout = Rollout::new(envs as usize, steps as usize);
    rollout.rew = floats(&g["rew"]);
    let flags = |key: &str| -> Vec<bool> {
        g[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b.as_bool().unwrap())
            .collect()
    };
    rollout.terminated = flags("terminated");
    rollout.truncated = flags("truncated");
    let (gamma, lambda) = (
        g["gamma"].as_f64().unwrap(),
        g["gae_lambda"].as_f64().unwrap(),
    );
    let (returns, adv) = rollout
        .gae(&floats(&g["v_s"]), &floats(&g["v_s_"]), gamma, lambda)
        .unwrap();
    close(&returns, &floats(&g["returns"]), "returns");
    close(&adv, &floats(&g["advantages"]), "advantages");
}

#[test]
fn running_statistics_match_running_mean_std() {
    let g = golden("running_mean_std.json");
    let vector = &g["vector"];
    assert_eq!(vector["eps"].as_f64().unwrap(), OBS_EPS);
    assert_eq!(vector["clip_max"].as_f64().unwrap(), OBS_CLIP);
    let mut rms = RunningMeanStd::new(3);
    for update in vector["updates"].as_array().unwrap() {
        let batch: Vec<Vec<f64>> = serde_json::from_value(update["batch"].clone()).unwrap();
        rms.update(&batch);
        close(&rms.mean, &floats(&update["mean"]), "mean");
        close(&rms.var, &floats(&update["var"]), "var");
        assert_eq!(rms.count, update["count"].as_f64().unwrap());
    }
    let inputs: Vec<Vec<f64>> = serde_json::from_value(vector["norm_input"].clone()).unwrap();
    let normalised: Vec<f64> = inputs
        .into_iter()
        .flat_map(|mut x| {
            rms.normalise(&mut x, OBS_EPS, OBS_CLIP);
            x
        })
        .collect();
    close(&normalised, &floats(&vector["norm_output"]), "norm");

    let returns = &g["scalar_ret_rms"];
    assert_eq!(returns["ret_norm_eps"].as_f64().unwrap(), RETURN_EPS);
    let mut ret_rms = RunningMeanStd::new(1);
    for update in returns["updates"].as_array().unwrap() {
        let rows: Vec<[f64; 1]> = floats(&update["returns"])
            .into_iter()
            .map(|r| [r])
            .collect();
        ret_rms.update(&rows);
        close(
            &ret_rms.mean,
            &[update["mean"].as_f64().unwrap()],
            "return mean",
        );
        close(
            &ret_rms.var,
            &[update["var"].as_f64().unwrap()],
            "return var",
        );
        assert_eq!(ret_rms.count, update["count"].as_f64().unwrap());
    }
}

/// The golden's network as a flat w, after checking its names and shapes against pisa's.
fn network(g: &Value) -> (ActorCritic, Tensor) {
    let hidden: Vec<i64> = serde_json::from_value(g["hidden_sizes"].clone()).unwrap();
    let net = ActorCritic::new(
        g["state_dim"].as_i64().unwrap(),
        g["action_dim"].as_i64().unwrap(),
        &hidden,
    );
    let params = g["parameters"].as_array().unwrap();
    let segments = &net.layout().segments;
    assert_eq!(segments.len(), params.len());
    let mut flat = vec![];
    for (segment, p) in segments.iter().zip(params) {
        assert_eq!(
            segment.name,
            p["name"].as_str().unwrap(),
            "named_parameters order"
        );
        let shape: Vec<i64> = serde_json::from_value(p["shape"].clone()).unwrap();
        assert_eq!(segment.shape, shape, "{}", segment.name);
        flat.extend(floats(&p["values"]));
    }
    (net, Tensor::from_slice(&flat))
}

#[test]
fn the_actor_critic_matches_tianshous_networks() {
    let g = golden("actor_critic.json");
    let (net, w) = network(&g);
    let p = net.params(&w);
    let (obs, act) = (matrix(&g["obs"]), matrix(&g["act"]));
    let (mu, sigma) = p.policy(&obs);
    close(&values(&mu), &floats(&g["mu"]), "mu");
    close(&values(&sigma), &floats(&g["sigma"]), "sigma");
    close(&values(&p.value(&obs)), &floats(&g["value"]), "value");
    close(
        &values(&log_prob(&mu, &sigma, &act)),
        &floats(&g["log_prob"]),
        "log_prob",
    );
    close(&values(&entropy(&sigma)), &floats(&g["entropy"]), "entropy");
}

fn check_losses(algorithm: &str, policy_key: &str) {
    let g = golden("actor_critic.json");
    let expected = &g[algorithm];
    let (net, w) = network(&g);
    let spec: RlSpec = toml::from_str(&format!(
        "env = \"HalfCheetah-v4\"\nalgorithm = \"{algorithm}\""
    ))
    .unwrap();
    let objective = Objective::of(&spec.resolved()).unwrap();
    let batch = MiniBatch {
        obs: matrix(&g["obs"]),
        act: matrix(&g["act"]),
        logp_old: Tensor::from_slice(&floats(&g["logp_old"])),
        adv: Tensor::from_slice(&floats(&g["adv"])),
        returns: Tensor::from_slice(&floats(&g["returns"])),
    };
    let w = w.set_requires_grad(true);
    let (loss, [policy, value, ent]) = objective.loss(&net.params(&w), &batch);
    for (ours, key) in [
        (&loss, "loss"),
        (&policy, policy_key),
        (&value, "vf_loss"),
        (&ent, "ent_loss"),
    ] {
        close(
            &[ours.double_value(&[])],
            &[expected[key].as_f64().unwrap()],
            key,
        );
    }
    let grad = Tensor::run_backward(&[loss], &[&w], false, false).remove(0);
    let total = grad.norm().double_value(&[]);
    close(
        &[total],
        &[expected["total_norm"].as_f64().unwrap()],
        "gradient norm",
    );
    // the loop's `train.clip_norm`
    let mut clipped = grad.copy();
    pisa::train::clip_grad_norm(&mut clipped, expected["max_grad_norm"].as_f64().unwrap());
    for (ours, key) in [(&grad, "grad"), (&clipped, "grad_clipped")] {
        for (segment, theirs) in net
            .layout()
            .segments
            .iter()
            .zip(expected[key].as_array().unwrap())
        {
            let view = segment.view(ours).flatten(0, -1);
            let stride = theirs["stride"].as_u64().unwrap() as usize;
            let strided: Vec<f64> = values(&view).into_iter().step_by(stride).collect();
            let what = format!("{algorithm} {key} {}", segment.name);
            close(&strided, &floats(&theirs["values"]), &what);
            close(
                &[view.sum(Kind::Double).double_value(&[])],
                &[theirs["sum"].as_f64().unwrap()],
                &what,
            );
            close(
                &[view.norm().double_value(&[])],
                &[theirs["norm"].as_f64().unwrap()],
                &what,
            );
        }
    }
}

#[test]
fn the_ppo_loss_and_its_gradients_match_ppo_policy_learn() {
    check_losses("ppo", "clip_loss");
}

#[test]
fn the_a2c_loss_and_its_gradients_match_a2c_policy_learn() {
    check_losses("a2c", "actor_loss");
}

#[test]
fn actions_are_clipped_and_scaled_as_map_action() {
    let g = golden("action_mapping.json");
    for space in g["spaces"].as_array().unwrap() {
        let bounds: Vec<(f64, f64)> = floats(&space["low"])
            .into_iter()
            .zip(floats(&space["high"]))
            .collect();
        let id = space["space"].as_str().unwrap();
        if let Ok(env) = pisa::rl::make(id) {
            assert_eq!(
                env.action_bounds(),
                bounds.as_slice(),
                "{id}'s action space"
            );
        }
        let raw: Vec<Vec<f64>> = serde_json::from_value(space["raw"].clone()).unwrap();
        let mapped: Vec<f64> = raw
            .iter()
            .flat_map(|a| pisa::rl::map_action(a, &bounds))
            .collect();
        assert_eq!(mapped, floats(&space["mapped"]), "{id}");
    }
}
