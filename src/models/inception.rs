//! The InceptionV3 of FID, exactly as pytorch-fid builds it (mseitzer/pytorch-fid,
//! `pytorch_fid/inception.py`): `InceptionV3([3])` over `fid_inception_v3()`, i.e.
//! torchvision's `Inception3` with the blocks patched to match TensorFlow's FID graph
//! (`FIDInceptionA`, `FIDInceptionC`, `FIDInceptionE_1`, `FIDInceptionE_2`), cut after the
//! final average pool: 2048 features per image (the "pool3" features).
//!
//! What it computes, in evaluation mode (FID never trains the network):
//! - images [N, C, H, W] in [0, 1]; one channel is repeated to three, as pytorch-fid's
//!   `ImagePathDataset` does by opening every image with `.convert('RGB')`;
//! - `resize_input`: bilinear to 299×299 with `align_corners=False` (`F.interpolate`);
//! - `normalize_input`: 2x − 1;
//! - conv+BN+ReLU blocks (torchvision's `BasicConv2d`: convolution without bias, batch
//!   norm with eps 0.001 and its running statistics, ReLU), the stem with two 3×3/2 max
//!   pools, Mixed_5b–5d (A), 6a (B), 6b–6e (C), 7a (D), 7b–7c (E), adaptive average pool
//!   to 1×1;
//! - the FID patches: the pooling branches of A, C and the first E average without the
//!   zero padding (`count_include_pad=False`), the second E (Mixed_7c) max-pools instead.
//!
//! The weights are pytorch-fid's `pt_inception-2015-12-05-6726825d.pth`, converted by
//! `scripts/convert_inception.py` to safetensors under the same state_dict names
//! (`Conv2d_1a_3x3.conv.weight`, `Mixed_5b.branch1x1.bn.running_mean`, …); pisa never
//! downloads them. `tests/fid_golden.rs` checks the architecture against pytorch-fid's
//! module on deterministic weights.
use crate::metrics::FeatureExtractor;
use anyhow::{bail, ensure, Context, Result};
use std::collections::BTreeMap;
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// The feature dimension (pool3).
pub const FEATURES: i64 = 2048;
/// The side images are resized to (`resize_input`).
pub const INPUT_SIZE: i64 = 299;
/// torchvision's `BasicConv2d` batch norm epsilon.
const BN_EPS: f64 = 1e-3;
/// The default number of images per forward pass (pytorch-fid's `--batch-size`).
pub const BATCH_SIZE: i64 = 50;

/// A tensor name and shape, in state_dict order.
pub type WeightLayout = Vec<(String, Vec<i64>)>;

/// torchvision's `BasicConv2d` in evaluation mode: convolution (no bias), batch norm with
/// the running statistics, ReLU.
#[derive(Debug)]
struct BasicConv {
    weight: Tensor,
    gamma: Tensor,
    beta: Tensor,
    mean: Tensor,
    var: Tensor,
    stride: [i64; 2],
    padding: [i64; 2],
}

impl BasicConv {
    fn forward(&self, x: &Tensor) -> Tensor {
        x.conv2d(
            &self.weight,
            None::<Tensor>,
            self.stride,
            self.padding,
            [1, 1],
            1,
        )
        .batch_norm(
            Some(&self.gamma),
            Some(&self.beta),
            Some(&self.mean),
            Some(&self.var),
            false,
            0.0,
            BN_EPS,
            true,
        )
        .relu()
    }
}

/// The poolings of the blocks.
#[derive(Debug, Clone, Copy)]
enum Pool {
    /// 3×3, stride 1, padding 1, averaging over the pixels inside the image only (the FID
    /// patch: `count_include_pad=False`).
    AvgInside,
    /// 3×3, stride 1, padding 1 (FIDInceptionE_2's patch).
    MaxSame,
    /// 3×3, stride 2, no padding (the stem, InceptionB and InceptionD).
    MaxHalve,
}

impl Pool {
    fn forward(self, x: &Tensor) -> Tensor {
        match self {
            Pool::AvgInside => x.avg_pool2d([3, 3], [1, 1], [1, 1], false, false, None),
            Pool::MaxSame => x.max_pool2d([3, 3], [1, 1], [1, 1], [1, 1], false),
            Pool::MaxHalve => x.max_pool2d([3, 3], [2, 2], [0, 0], [1, 1], false),
        }
    }
}

/// One branch of an Inception block: an optional pooling, a chain of convolutions, and
/// optionally a fork into convolutions whose outputs are concatenated (InceptionE's
/// 1×3 and 3×1 pairs).
#[derive(Debug)]
struct Branch {
    pool: Option<Pool>,
    chain: Vec<BasicConv>,
    fork: Vec<BasicConv>,
}

impl Branch {
    fn forward(&self, x: &Tensor) -> Tensor {
        let mut y = match self.pool {
            Some(pool) => pool.forward(x),
            None => x.shallow_clone(),
        };
        for conv in &self.chain {
            y = conv.forward(&y);
        }
        if self.fork.is_empty() {
            y
        } else {
            Tensor::cat(
                &self.fork.iter().map(|c| c.forward(&y)).collect::<Vec<_>>(),
                1,
            )
        }
    }
}

/// An Inception block: its branches' outputs concatenated along the channels.
#[derive(Debug)]
struct Block(Vec<Branch>);

impl Block {
    fn forward(&self, x: &Tensor) -> Tensor {
        Tensor::cat(&self.0.iter().map(|b| b.forward(x)).collect::<Vec<_>>(), 1)
    }
}

/// The tensors a network is built from: taken by name from `given`, each checked against
/// the shape the architecture asks for; the names and shapes asked for are recorded in
/// order (the state_dict order), and every problem is collected for one error.
struct Weights {
    given: BTreeMap<String, Tensor>,
    device: Device,
    layout: WeightLayout,
    problems: Vec<String>,
}

impl Weights {
    fn tensor(&mut self, name: String, shape: Vec<i64>) -> Tensor {
        let taken = match self.given.remove(&name) {
            None => {
                self.problems
                    .push(format!("tensor `{name}` {shape:?} is missing"));
                None
            }
            Some(t) if t.size() != shape => {
                self.problems.push(format!(
                    "tensor `{name}` is {:?}, but the network's is {shape:?}",
                    t.size()
                ));
                None
            }
            Some(t) if t.kind() != Kind::Float => {
                self.problems
                    .push(format!("tensor `{name}` is {:?}, expected f32", t.kind()));
                None
            }
            Some(t) => Some(t.to_device(self.device)),
        };
        self.layout.push((name, shape));
        taken.unwrap_or_else(|| Tensor::zeros([0], (Kind::Float, self.device)))
    }

    /// `name`.conv and `name`.bn: `input` → `output` channels, a kh×kw kernel.
    fn conv(
        &mut self,
        name: &str,
        (input, output): (i64, i64),
        [kh, kw]: [i64; 2],
        stride: i64,
        padding: [i64; 2],
    ) -> BasicConv {
        let weight = self.tensor(format!("{name}.conv.weight"), vec![output, input, kh, kw]);
        let mut bn = |what: &str| self.tensor(format!("{name}.bn.{what}"), vec![output]);
        let (gamma, beta, mean, var) = (
            bn("weight"),
            bn("bias"),
            bn("running_mean"),
            bn("running_var"),
        );
        BasicConv {
            weight,
            gamma,
            beta,
            mean,
            var,
            stride: [stride; 2],
            padding,
        }
    }

    /// A square `k`×`k` convolution with stride 1 and "same" padding (k / 2).
    fn same(&mut self, name: &str, channels: (i64, i64), k: i64) -> BasicConv {
        self.conv(name, channels, [k, k], 1, [k / 2, k / 2])
    }

    /// A 1×7 or 7×1 (or 1×3, 3×1) convolution with "same" padding.
    fn line(&mut self, name: &str, channels: (i64, i64), kernel: [i64; 2]) -> BasicConv {
        self.conv(name, channels, kernel, 1, [kernel[0] / 2, kernel[1] / 2])
    }

    /// torchvision's InceptionA with the FIDInceptionA pool patch: 64 + 64 + 96 +
    /// `pool_features` channels.
    fn inception_a(&mut self, name: &str, input: i64, pool_features: i64) -> Block {
        let n = |b: &str| format!("{name}.{b}");
        Block(vec![
            branch(None, vec![self.same(&n("branch1x1"), (input, 64), 1)]),
            branch(
                None,
                vec![
                    self.same(&n("branch5x5_1"), (input, 48), 1),
                    self.same(&n("branch5x5_2"), (48, 64), 5),
                ],
            ),
            branch(
                None,
                vec![
                    self.same(&n("branch3x3dbl_1"), (input, 64), 1),
                    self.same(&n("branch3x3dbl_2"), (64, 96), 3),
                    self.same(&n("branch3x3dbl_3"), (96, 96), 3),
                ],
            ),
            branch(
                Some(Pool::AvgInside),
                vec![self.same(&n("branch_pool"), (input, pool_features), 1)],
            ),
        ])
    }

    /// torchvision's InceptionB (Mixed_6a): halves the grid, 384 + 96 + `input` channels.
    fn inception_b(&mut self, name: &str, input: i64) -> Block {
        let n = |b: &str| format!("{name}.{b}");
        Block(vec![
            branch(
                None,
                vec![self.conv(&n("branch3x3"), (input, 384), [3, 3], 2, [0, 0])],
            ),
            branch(
                None,
                vec![
                    self.same(&n("branch3x3dbl_1"), (input, 64), 1),
                    self.same(&n("branch3x3dbl_2"), (64, 96), 3),
                    self.conv(&n("branch3x3dbl_3"), (96, 96), [3, 3], 2, [0, 0]),
                ],
            ),
            branch(Some(Pool::MaxHalve), vec![]),
        ])
    }

    /// torchvision's InceptionC with the FIDInceptionC pool patch: 4 × 192 channels.
    fn inception_c(&mut self, name: &str, c7: i64) -> Block {
        let n = |b: &str| format!("{name}.{b}");
        let input = 768;
        let (row, col) = ([1, 7], [7, 1]);
        Block(vec![
            branch(None, vec![self.same(&n("branch1x1"), (input, 192), 1)]),
            branch(
                None,
                vec![
                    self.same(&n("branch7x7_1"), (input, c7), 1),
                    self.line(&n("branch7x7_2"), (c7, c7), row),
                    self.line(&n("branch7x7_3"), (c7, 192), col),
                ],
            ),
            branch(
                None,
                vec![
                    self.same(&n("branch7x7dbl_1"), (input, c7), 1),
                    self.line(&n("branch7x7dbl_2"), (c7, c7), col),
                    self.line(&n("branch7x7dbl_3"), (c7, c7), row),
                    self.line(&n("branch7x7dbl_4"), (c7, c7), col),
                    self.line(&n("branch7x7dbl_5"), (c7, 192), row),
                ],
            ),
            branch(
                Some(Pool::AvgInside),
                vec![self.same(&n("branch_pool"), (input, 192), 1)],
            ),
        ])
    }

    /// torchvision's InceptionD (Mixed_7a): halves the grid, 320 + 192 + 768 channels.
    fn inception_d(&mut self, name: &str) -> Block {
        let n = |b: &str| format!("{name}.{b}");
        let input = 768;
        Block(vec![
            branch(
                None,
                vec![
                    self.same(&n("branch3x3_1"), (input, 192), 1),
                    self.conv(&n("branch3x3_2"), (192, 320), [3, 3], 2, [0, 0]),
                ],
            ),
            branch(
                None,
                vec![
                    self.same(&n("branch7x7x3_1"), (input, 192), 1),
                    self.line(&n("branch7x7x3_2"), (192, 192), [1, 7]),
                    self.line(&n("branch7x7x3_3"), (192, 192), [7, 1]),
                    self.conv(&n("branch7x7x3_4"), (192, 192), [3, 3], 2, [0, 0]),
                ],
            ),
            branch(Some(Pool::MaxHalve), vec![]),
        ])
    }

    /// torchvision's InceptionE with FIDInceptionE_1's (`pool` = AvgInside) or
    /// FIDInceptionE_2's (`pool` = MaxSame) pooling: 320 + 768 + 768 + 192 = 2048
    /// channels.
    fn inception_e(&mut self, name: &str, input: i64, pool: Pool) -> Block {
        let n = |b: &str| format!("{name}.{b}");
        let b1x1 = self.same(&n("branch1x1"), (input, 320), 1);
        let b3x3_1 = vec![self.same(&n("branch3x3_1"), (input, 384), 1)];
        let b3x3 = self.forked(name, b3x3_1, ["branch3x3_2a", "branch3x3_2b"]);
        let dbl = vec![
            self.same(&n("branch3x3dbl_1"), (input, 448), 1),
            self.same(&n("branch3x3dbl_2"), (448, 384), 3),
        ];
        let b3x3dbl = self.forked(name, dbl, ["branch3x3dbl_3a", "branch3x3dbl_3b"]);
        let b_pool = branch(
            Some(pool),
            vec![self.same(&n("branch_pool"), (input, 192), 1)],
        );
        Block(vec![branch(None, vec![b1x1]), b3x3, b3x3dbl, b_pool])
    }

    /// InceptionE's forked branch: `chain`, then a 1×3 and a 3×1 convolution (384 → 384
    /// channels each) on its output, concatenated.
    fn forked(&mut self, name: &str, chain: Vec<BasicConv>, [a, b]: [&str; 2]) -> Branch {
        let fork = vec![
            self.line(&format!("{name}.{a}"), (384, 384), [1, 3]),
            self.line(&format!("{name}.{b}"), (384, 384), [3, 1]),
        ];
        Branch {
            pool: None,
            chain,
            fork,
        }
    }
}

fn branch(pool: Option<Pool>, chain: Vec<BasicConv>) -> Branch {
    Branch {
        pool,
        chain,
        fork: vec![],
    }
}

/// pytorch-fid's FID InceptionV3 up to pool3, with its weights on one device.
#[derive(Debug)]
pub struct Inception {
    /// Conv2d_1a_3x3 … Conv2d_4a_3x3, with a 3×3/2 max pool after the third and fifth.
    stem: Vec<BasicConv>,
    /// Mixed_5b … Mixed_7c.
    blocks: Vec<Block>,
    device: Device,
    /// Images per forward pass in [`FeatureExtractor::features`] (at least 1).
    pub batch_size: i64,
}

impl Inception {
    /// Builds the network from `weights` (tensors of pytorch-fid's state_dict names).
    fn build(weights: &mut Weights) -> Self {
        let w = weights;
        let stem = vec![
            w.conv("Conv2d_1a_3x3", (3, 32), [3, 3], 2, [0, 0]),
            w.conv("Conv2d_2a_3x3", (32, 32), [3, 3], 1, [0, 0]),
            w.same("Conv2d_2b_3x3", (32, 64), 3),
            w.same("Conv2d_3b_1x1", (64, 80), 1),
            w.conv("Conv2d_4a_3x3", (80, 192), [3, 3], 1, [0, 0]),
        ];
        let blocks = vec![
            w.inception_a("Mixed_5b", 192, 32),
            w.inception_a("Mixed_5c", 256, 64),
            w.inception_a("Mixed_5d", 288, 64),
            w.inception_b("Mixed_6a", 288),
            w.inception_c("Mixed_6b", 128),
            w.inception_c("Mixed_6c", 160),
            w.inception_c("Mixed_6d", 160),
            w.inception_c("Mixed_6e", 192),
            w.inception_d("Mixed_7a"),
            w.inception_e("Mixed_7b", 1280, Pool::AvgInside),
            w.inception_e("Mixed_7c", 2048, Pool::MaxSame),
        ];
        Self {
            stem,
            blocks,
            device: w.device,
            batch_size: BATCH_SIZE,
        }
    }

    /// The names and shapes of the weights, in pytorch-fid's state_dict order (that of
    /// `fid_inception_v3().state_dict()` without `fc.*` and the batch counters): 94
    /// conv+BN blocks, 470 tensors, 21,820,000 values.
    pub fn layout() -> WeightLayout {
        let mut weights = Weights {
            given: BTreeMap::new(),
            device: Device::Cpu,
            layout: vec![],
            problems: vec![],
        };
        Self::build(&mut weights);
        weights.layout
    }

    /// The network with `tensors` as its weights, on `device`. Strict: every tensor of
    /// [`Inception::layout`] must be there, f32 with its shape, and nothing else;
    /// otherwise the error names each offending tensor.
    pub fn from_tensors(
        tensors: impl IntoIterator<Item = (String, Tensor)>,
        device: Device,
    ) -> Result<Self> {
        let mut weights = Weights {
            given: tensors.into_iter().collect(),
            device,
            layout: vec![],
            problems: vec![],
        };
        let net = Self::build(&mut weights);
        let extra = weights.given.keys();
        let mut problems = weights.problems;
        problems.extend(extra.map(|name| format!("tensor `{name}` is not in the network")));
        if !problems.is_empty() {
            let n = problems.len();
            problems.truncate(10);
            let more = if n > 10 {
                format!("\n  … and {} more", n - 10)
            } else {
                String::new()
            };
            bail!(
                "these are not pytorch-fid's FID Inception weights:\n  {}{more}",
                problems.join("\n  ")
            );
        }
        Ok(net)
    }

    /// Reads the weights from `path`, a safetensors file written by
    /// `scripts/convert_inception.py` from pytorch-fid's
    /// `pt_inception-2015-12-05-6726825d.pth`, onto `device` (see
    /// [`Inception::from_tensors`]).
    pub fn load(path: &Path, device: Device) -> Result<Self> {
        let shown = path.display();
        let how = "convert pytorch-fid's pt_inception-2015-12-05-6726825d.pth with \
                   `python scripts/convert_inception.py PTH OUT`";
        ensure!(
            path.is_file(),
            "the FID Inception weights {shown} do not exist: {how}"
        );
        let tensors = Tensor::read_safetensors(path)
            .with_context(|| format!("cannot read {shown} as safetensors ({how})"))?;
        Self::from_tensors(tensors, device).with_context(|| format!("{shown}"))
    }

    /// The device the weights are on.
    pub fn device(&self) -> Device {
        self.device
    }

    /// pytorch-fid's `InceptionV3.forward` up to block 3, squeezed: images [N, 3, H, W]
    /// in [0, 1] on the network's device → features [N, 2048] (f32).
    fn forward(&self, images: &Tensor) -> Tensor {
        let x = images.upsample_bilinear2d([INPUT_SIZE, INPUT_SIZE], false, None, None);
        let mut x = x * 2.0 - 1.0;
        for (i, conv) in self.stem.iter().enumerate() {
            x = conv.forward(&x);
            // maxpool1 after Conv2d_2b_3x3, maxpool2 after Conv2d_4a_3x3.
            if i == 2 || i == 4 {
                x = Pool::MaxHalve.forward(&x);
            }
        }
        for block in &self.blocks {
            x = block.forward(&x);
        }
        x.adaptive_avg_pool2d([1, 1]).flatten(1, -1)
    }
}

impl FeatureExtractor for Inception {
    fn dims(&self) -> i64 {
        FEATURES
    }

    /// Pool3 features of `images` [N, C, H, W] (C = 1 or 3, any size from 1×1, values in
    /// [0, 1], on any device, any float kind), `batch_size` images per forward pass.
    fn features(&self, images: &Tensor) -> Result<Tensor> {
        let size = images.size();
        ensure!(
            size.len() == 4 && (size[1] == 1 || size[1] == 3),
            "FID Inception: expected images [N, 1 or 3, H, W], got {size:?}"
        );
        ensure!(
            size[2] >= 1 && size[3] >= 1,
            "FID Inception: empty images {size:?}"
        );
        ensure!(
            images.is_floating_point(),
            "FID Inception: images must be floats in [0, 1], got {:?}",
            images.kind()
        );
        ensure!(
            self.batch_size >= 1,
            "FID Inception: batch_size must be at least 1, got {}",
            self.batch_size
        );
        let mut out = vec![];
        tch::no_grad(|| {
            let mut start = 0;
            while start < size[0] {
                let len = self.batch_size.min(size[0] - start);
                let batch = images
                    .narrow(0, start, len)
                    .to_device(self.device)
                    .to_kind(Kind::Float)
                    .expand([len, 3, size[2], size[3]], false);
                let f = self.forward(&batch);
                out.push(f.to_device(Device::Cpu).to_kind(Kind::Double));
                start += len;
            }
        });
        if out.is_empty() {
            return Ok(Tensor::zeros([0, FEATURES], (Kind::Double, Device::Cpu)));
        }
        Ok(Tensor::cat(&out, 0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_has_pytorch_fid_sizes() {
        let layout = Inception::layout();
        assert_eq!(layout.len(), 470);
        let values: i64 = layout.iter().map(|(_, s)| s.iter().product::<i64>()).sum();
        assert_eq!(values, 21_820_000);
        assert_eq!(layout[0].0, "Conv2d_1a_3x3.conv.weight");
        assert_eq!(layout[0].1, vec![32, 3, 3, 3]);
        assert_eq!(layout[4].0, "Conv2d_1a_3x3.bn.running_var");
    }

    #[test]
    fn strict_loading_names_every_problem() {
        let mut tensors: BTreeMap<String, Tensor> = Inception::layout()
            .into_iter()
            .map(|(name, shape)| (name, Tensor::zeros(shape, (Kind::Float, Device::Cpu))))
            .collect();
        tensors.remove("Mixed_6b.branch7x7_2.conv.weight");
        tensors.insert(
            "Mixed_5b.branch1x1.bn.bias".into(),
            Tensor::zeros([65], (Kind::Float, Device::Cpu)),
        );
        tensors.insert(
            "fc.weight".into(),
            Tensor::zeros([1008, 2048], (Kind::Float, Device::Cpu)),
        );
        let err = Inception::from_tensors(tensors, Device::Cpu)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`Mixed_6b.branch7x7_2.conv.weight` [128, 128, 1, 7] is missing"),
            "{err}"
        );
        assert!(
            err.contains("`Mixed_5b.branch1x1.bn.bias` is [65], but the network's is [64]"),
            "{err}"
        );
        assert!(err.contains("`fc.weight` is not in the network"), "{err}");
    }

    #[test]
    fn load_says_how_to_get_the_weights() {
        let err = Inception::load(Path::new("/nonexistent/inception.safetensors"), Device::Cpu)
            .unwrap_err()
            .to_string();
        assert!(err.contains("scripts/convert_inception.py"), "{err}");
    }
}
