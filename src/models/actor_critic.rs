//! The Gaussian actor and the critic of Tianshou's MuJoCo examples
//! (`examples/mujoco/mujoco_ppo.py`, `mujoco_a2c.py`): separate MLPs with tanh hidden
//! layers, the actor's mean unbounded (`ActorProb(unbounded=True)`) and its standard
//! deviation exp(σ_param) independent of the state, all read from views of the flat w so
//! the gradient comes back flat.
use super::seeded;
use crate::optim::layout::Layout;
use tch::{Device, Kind, Tensor};

/// log √(2π), as torch's `Normal.log_prob` subtracts it.
const LOG_SQRT_2PI: f64 = 0.918_938_533_204_672_8;

pub struct ActorCritic {
    layout: Layout,
    hidden: usize,
}

/// A linear layer's weight [out, in] and bias [out].
type Linear = (Tensor, Tensor);

/// The parameters of one point w, as views.
pub struct Params {
    log_sigma: Tensor,
    actor: Vec<Linear>,
    mu: Linear,
    critic: Vec<Linear>,
    value: Linear,
}

impl ActorCritic {
    /// For observations of `obs_dim` values and actions of `act_dim`, hidden widths
    /// `hidden`. The parameters are laid out in the order and under the names of
    /// `ActorCritic(actor, critic).named_parameters()`.
    pub fn new(obs_dim: i64, act_dim: i64, hidden: &[i64]) -> Self {
        let mlp = |prefix: &str, out: i64| {
            let mut shapes = vec![];
            let mut width = obs_dim;
            for (k, &h) in hidden.iter().enumerate() {
                let name = format!("{prefix}.preprocess.model.model.{}", 2 * k);
                shapes.push((format!("{name}.weight"), vec![h, width]));
                shapes.push((format!("{name}.bias"), vec![h]));
                width = h;
            }
            let head = if prefix == "actor" { "mu" } else { "last" };
            shapes.push((format!("{prefix}.{head}.model.0.weight"), vec![out, width]));
            shapes.push((format!("{prefix}.{head}.model.0.bias"), vec![out]));
            shapes
        };
        let mut shapes = vec![("actor.sigma_param".to_string(), vec![act_dim, 1])];
        shapes.extend(mlp("actor", act_dim));
        shapes.extend(mlp("critic", 1));
        Self {
            layout: Layout::new(shapes),
            hidden: hidden.len(),
        }
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// w⁰ as the scripts initialise it: σ_param = −0.5, every weight orthogonal with gain
    /// √2 and every bias 0, then the mean's layer scaled by 0.01; the draws from torch's
    /// generator seeded with `seed`, segment by segment.
    pub fn initial(&self, seed: u64, kind: Kind, device: Device) -> Tensor {
        let w = Tensor::zeros([self.layout.numel()], (Kind::Double, Device::Cpu));
        seeded(seed, || {
            for s in &self.layout.segments {
                let mut view = s.view(&w);
                if s.name == "actor.sigma_param" {
                    let _ = view.fill_(-0.5);
                } else if s.shape.len() == 2 {
                    let scale = if s.name.starts_with("actor.mu.") {
                        0.01
                    } else {
                        1.0
                    };
                    view.copy_(&(orthogonal(s.shape[0], s.shape[1]) * (2f64.sqrt() * scale)));
                }
            }
        });
        w.to_kind(kind).to_device(device)
    }

    /// The views of `w`'s parameters.
    pub fn params(&self, w: &Tensor) -> Params {
        let s = &self.layout.segments;
        let linear = |k: usize| (s[k].view(w), s[k + 1].view(w));
        let layers = |first: usize| (0..self.hidden).map(|k| linear(first + 2 * k)).collect();
        let critic = 1 + 2 * (self.hidden + 1);
        Params {
            log_sigma: s[0].view(w),
            actor: layers(1),
            mu: linear(1 + 2 * self.hidden),
            critic: layers(critic),
            value: linear(critic + 2 * self.hidden),
        }
    }
}

impl Params {
    /// The policy's mean and standard deviation for observations `obs` [B, obs_dim],
    /// each [B, act_dim].
    pub fn policy(&self, obs: &Tensor) -> (Tensor, Tensor) {
        let mu = affine(&hidden(obs, &self.actor), &self.mu);
        let sigma = self.log_sigma.view([1, -1]).exp().expand_as(&mu);
        (mu, sigma)
    }

    /// V(s) for observations `obs` [B, obs_dim], as [B].
    pub fn value(&self, obs: &Tensor) -> Tensor {
        affine(&hidden(obs, &self.critic), &self.value).flatten(0, -1)
    }
}

fn affine(x: &Tensor, (weight, bias): &Linear) -> Tensor {
    x.linear(weight, Some(bias))
}

fn hidden(obs: &Tensor, layers: &[Linear]) -> Tensor {
    layers
        .iter()
        .fold(obs.shallow_clone(), |x, layer| affine(&x, layer).tanh())
}

/// log π(a|s) of the diagonal Gaussian, `Independent(Normal(μ, σ), 1).log_prob(a)`: [B].
pub fn log_prob(mu: &Tensor, sigma: &Tensor, act: &Tensor) -> Tensor {
    let z = (act - mu) / sigma;
    (z.square() * -0.5 - sigma.log() - LOG_SQRT_2PI).sum_dim_intlist(-1, false, None)
}

/// The Gaussian's entropy, Σ_d ½ + log √(2π) + log σ_d: [B].
pub fn entropy(sigma: &Tensor) -> Tensor {
    (sigma.log() + (0.5 + LOG_SQRT_2PI)).sum_dim_intlist(-1, false, None)
}

/// torch.nn.init.orthogonal_ of a [rows, cols] weight with gain 1: the Q of a standard
/// normal matrix's QR (of its transpose when rows < cols), signed by R's diagonal.
fn orthogonal(rows: i64, cols: i64) -> Tensor {
    let flat = Tensor::randn([rows, cols], (Kind::Double, Device::Cpu));
    let flat = if rows < cols { flat.tr() } else { flat };
    let (q, r) = Tensor::linalg_qr(&flat, "reduced");
    let q = q * r.diagonal(0, 0, 1).sign();
    if rows < cols {
        q.tr()
    } else {
        q
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initialisation_follows_the_scripts() {
        let net = ActorCritic::new(11, 1, &[64, 64]);
        // Tianshou's [64, 64] actor and critic on InvertedDoublePendulum: 768 + 4160 + 65
        // + 1 and 768 + 4160 + 65.
        assert_eq!(net.layout().numel(), 1 + 768 + 4160 + 65 + 768 + 4160 + 65);
        let w = net.initial(3, Kind::Double, Device::Cpu);
        assert_eq!(w, net.initial(3, Kind::Double, Device::Cpu));
        let p = net.params(&w);
        assert_eq!(
            Vec::<f64>::try_from(p.log_sigma.flatten(0, -1)).unwrap(),
            [-0.5]
        );
        let (w1, b1) = &p.actor[0];
        let gram = w1.tr().mm(w1) / 2.0;
        assert!(gram.allclose(
            &Tensor::eye(11, (Kind::Double, Device::Cpu)),
            1e-10,
            1e-10,
            false
        ));
        assert_eq!(b1.abs().max().double_value(&[]), 0.0);
        let (mu, _) = &p.mu;
        let gram = mu.mm(&mu.tr()) / (2.0 * 1e-4);
        assert!(
            (gram.double_value(&[0, 0]) - 1.0).abs() < 1e-10,
            "the mean's layer ×0.01"
        );
        let obs = seeded(0, || Tensor::randn([5, 11], (Kind::Double, Device::Cpu)));
        let (mean, sigma) = p.policy(&obs);
        assert_eq!(mean.size(), [5, 1]);
        assert_eq!(sigma.size(), [5, 1]);
        assert_eq!(p.value(&obs).size(), [5]);
    }

    #[test]
    fn the_gaussian_matches_its_closed_forms() {
        let mu = Tensor::from_slice(&[0.5, -1.0]).view([1, 2]);
        let sigma = Tensor::from_slice(&[2.0, 0.5]).view([1, 2]);
        let act = Tensor::from_slice(&[1.5, -1.0]).view([1, 2]);
        let expected = -0.125 - 2f64.ln() - 0.5f64.ln() - 2.0 * LOG_SQRT_2PI;
        assert!((log_prob(&mu, &sigma, &act).double_value(&[0]) - expected).abs() < 1e-15);
        let h = 1.0 + 2.0 * LOG_SQRT_2PI + 2f64.ln() + 0.5f64.ln();
        assert!((entropy(&sigma).double_value(&[0]) - h).abs() < 1e-15);
    }
}
