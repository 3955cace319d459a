//! The vision models a spec can name: their listing ([`catalog`]), construction for a
//! given image shape and class count ([`build`]) and size ([`parameter_count`]);
//! `pisa list models` ([`describe`]) lists the AWD-LSTM language model after them.
use super::alexnet::AlexNet;
use super::awd_lstm::Config as AwdLstmConfig;
use super::densenet::DenseNet121;
use super::resnet::{ResNet, Variant, RESNET18, RESNET34};
use super::resnet_cifar::CifarResNet;
use super::vgg::Vgg11;
use super::vit::{self, VisionTransformer};
use anyhow::{bail, ensure, Result};
use tch::nn;

/// One entry of the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Info {
    pub name: &'static str,
    pub summary: &'static str,
    /// The input the published network takes, channels×height×width.
    pub input: &'static str,
    /// The published parameter count, for that input and the published classes.
    pub parameters: Option<i64>,
    /// Where the definition comes from.
    pub reference: &'static str,
}

const KUANGLIU: &str = "kuangliu/pytorch-cifar";

static CATALOG: [Info; 9] = [
    Info {
        name: "vgg11",
        summary: "VGG-11 without batch norm, classifier 512-512-10 with dropout 0.5",
        input: "3×32×32",
        parameters: Some(9_750_922),
        reference: "AdaBelief benchmark, PyTorch_Experiments/classification_cifar10/models/vgg.py",
    },
    Info {
        name: "resnet18",
        summary: "ResNet-18 for CIFAR: 3×3 stem, no max-pool, basic blocks [2, 2, 2, 2]",
        input: "3×32×32",
        parameters: Some(11_173_962),
        reference: KUANGLIU,
    },
    Info {
        name: "resnet34",
        summary: "ResNet-34 for CIFAR: 3×3 stem, no max-pool, basic blocks [3, 4, 6, 3]",
        input: "3×32×32",
        parameters: Some(21_282_122),
        reference: KUANGLIU,
    },
    Info {
        name: "resnet20",
        summary: "He et al.'s CIFAR ResNet-20: widths 16-32-64, 3 blocks each, option-A shortcuts",
        input: "3×32×32",
        parameters: Some(269_722),
        reference: "akamaster/pytorch_resnet_cifar10 resnet.py (MixML's Figure 2)",
    },
    Info {
        name: "densenet121",
        summary: "DenseNet-121 for CIFAR: growth 32, blocks [6, 12, 24, 16], compression 0.5",
        input: "3×32×32",
        parameters: Some(6_956_298),
        reference: KUANGLIU,
    },
    Info {
        name: "resnet18_imagenet",
        summary: "ResNet-18: 7×7 stride-2 stem, max-pool, basic blocks [2, 2, 2, 2]",
        input: "3×224×224",
        parameters: Some(11_689_512),
        reference: "torchvision.models.resnet18",
    },
    Info {
        name: "alexnet",
        summary: "AlexNet: five convolutions, classifier 4096-4096-1000 with dropout 0.5",
        input: "3×224×224",
        parameters: Some(61_100_840),
        reference: "torchvision.models.alexnet",
    },
    Info {
        name: "vit_b_16",
        summary: "ViT-B/16: 16×16 patches, width 768, 12 blocks of 12 heads, MLP 3072",
        input: "3×224×224",
        parameters: Some(86_567_656),
        reference: "torchvision.models.vit_b_16",
    },
    Info {
        name: "densenet121_imagenet",
        summary: "DenseNet-121: 7×7 stride-2 stem, max-pool, growth 32, blocks [6, 12, 24, 16]",
        input: "3×224×224",
        parameters: Some(7_978_856),
        reference: "torchvision.models.densenet121",
    },
];

/// The catalogue's models, in listing order.
pub fn catalog() -> &'static [Info] {
    &CATALOG
}

/// The networks built from `[model]`'s own settings (not by [`build`]).
static CONFIGURABLE: [Info; 3] = [
    Info {
        name: "mlp",
        summary: "fully connected: hidden = [widths], activation, dropout (Adult: [32, 16, 8])",
        input: "any",
        parameters: None,
        reference: "NIID-Bench's Adult MLP; the Fed-LAMB paper's MNIST MLP",
    },
    Info {
        name: "simple_cnn",
        summary: "two 5×5 conv + pool, fully connected 120-84-classes",
        input: "1×28×28 or 3×32×32",
        parameters: Some(44_426),
        reference: "NIID-Bench SimpleCNN (62,006 parameters on 3×32×32)",
    },
    Info {
        name: "fed_lamb_cnn",
        summary: "two conv + pool, dropout, fully connected 320-50-10",
        input: "1×28×28",
        parameters: None,
        reference: "the Fed-LAMB paper's MNIST CNN",
    },
];

/// `pisa list models`: every `[model] kind`, its input, published size and reference; the
/// vision models, then the language model ([`super::awd_lstm`]).
pub fn describe() -> String {
    let mut out = String::new();
    for info in CONFIGURABLE.iter().chain(CATALOG.iter()) {
        let parameters = info
            .parameters
            .map_or("—".to_string(), |p| format!("{p} parameters"));
        out += &format!(
            "{}\n  {}\n  input {}, {parameters}\n  reference: {}\n\n",
            info.name, info.summary, info.input, info.reference
        );
    }
    out + &describe_awd_lstm() + &describe_gpt()
}

/// The GPT presets (`[model] kind = "gpt"`, `preset`), each with its parameter count (the
/// tied embedding counted once).
fn describe_gpt() -> String {
    use super::gpt::{Config, Style};
    let mut out = String::new();
    for &name in Config::PRESETS {
        let c = Config::preset(name).expect("a listed preset");
        let layout = match c.style {
            Style::Modded => {
                "modded-nanogpt (rotary, QK RMS-norm, ReLU², zero-initialised projections)"
            }
            Style::Classic => "GPT-2 (learned positions, GELU, LayerNorm, biases)",
        };
        out += &format!(
            "gpt, preset = \"{name}\"\n  {layout}: {} layers, {} heads, width {}, vocabulary {}, \
             block {}\n  input token ids, {} parameters (tied embedding)\n  reference: {}\n\n",
            c.n_layer,
            c.n_head,
            c.n_embd,
            c.vocab_size,
            c.block_size,
            c.parameters(),
            match c.style {
                Style::Modded =>
                    "Tracy-Wang7/PISA GPT2_new_version/NanoGPT/train_gpt_sisa_lower_memory.py",
                Style::Classic =>
                    "Radford et al. 2019; Hugging Face GPT2LMHeadModel (gpt2, gpt2-medium, gpt2-xl)",
            }
        );
    }
    out
}

/// The AWD-LSTM's entry: its size depends on the vocabulary, given at PTB's for the suite's
/// 1, 2 and 3 layers.
fn describe_awd_lstm() -> String {
    let sizes: Vec<String> = (1..=3)
        .map(|n| {
            let layers = if n == 1 { "layer" } else { "layers" };
            let count = AwdLstmConfig::ptb(n).parameter_count();
            format!("{n} {layers} {count}")
        })
        .collect();
    format!(
        "awd_lstm\n  AWD-LSTM: embedding 400 tied to the decoder, LSTMs of 1150 (the last 400), \
         weight drop, locked and embedding dropout\n  input word indices, {} parameters (PTB's \
         10000 words)\n  reference: AdaBelief benchmark, PyTorch_Experiments/LSTM/model.py\n\n",
        sizes.join(", ")
    )
}

/// A catalogue model set up for an image shape and a class count.
enum Model {
    Vgg(Vgg11),
    ResNet(ResNet),
    CifarResNet(CifarResNet),
    DenseNet(DenseNet121),
    AlexNet(AlexNet),
    Vit(VisionTransformer),
}

impl Model {
    fn new(name: &str, image: [i64; 3], classes: i64) -> Result<Self> {
        let [channels, height, width] = image;
        ensure!(
            image.iter().all(|&n| n >= 1) && classes >= 1,
            "model {name}: need images of positive size and at least one class, got \
             {channels}×{height}×{width} and {classes}"
        );
        Ok(match name {
            "vgg11" => Self::Vgg(Vgg11::new(image, classes)?),
            "resnet18" => Self::ResNet(ResNet::new(Variant::Cifar, RESNET18, channels, classes)),
            "resnet34" => Self::ResNet(ResNet::new(Variant::Cifar, RESNET34, channels, classes)),
            "resnet20" => Self::CifarResNet(CifarResNet::resnet20(channels, classes)),
            "densenet121" => Self::DenseNet(DenseNet121::new(Variant::Cifar, image, classes)?),
            "resnet18_imagenet" => {
                Self::ResNet(ResNet::new(Variant::ImageNet, RESNET18, channels, classes))
            }
            "alexnet" => Self::AlexNet(AlexNet::new(image, classes)?),
            "vit_b_16" => Self::Vit(VisionTransformer::new(vit::B_16, image, classes)?),
            "densenet121_imagenet" => {
                Self::DenseNet(DenseNet121::new(Variant::ImageNet, image, classes)?)
            }
            _ => bail!(
                "unknown model {name:?}; known: {}",
                CATALOG.map(|info| info.name).join(", ")
            ),
        })
    }
}

/// Builds `name` for images [channels, height, width] and `classes` outputs under `path`
/// as one network: it takes N·C·H·W values (images [N, C, H, W], or [N, H, W] for one
/// channel, which it reshapes) and returns logits [N, classes]. Errors for an unknown
/// name or an image shape the architecture cannot take.
pub fn build(
    name: &str,
    path: &nn::Path,
    image: [i64; 3],
    classes: i64,
) -> Result<nn::SequentialT> {
    let net = nn::seq_t().add_fn(move |x| x.reshape([-1, image[0], image[1], image[2]]));
    Ok(match Model::new(name, image, classes)? {
        Model::Vgg(m) => net.add(m.build(path)),
        Model::ResNet(m) => net.add(m.build(path)),
        Model::CifarResNet(m) => net.add(m.build(path)),
        Model::DenseNet(m) => net.add(m.build(path)),
        Model::AlexNet(m) => net.add(m.build(path)),
        Model::Vit(m) => net.add(m.build(path)),
    })
}

/// The number of trainable values of `name` for that image shape and class count,
/// computed without building it; errors as [`build`].
pub fn parameter_count(name: &str, image: [i64; 3], classes: i64) -> Result<i64> {
    Ok(match Model::new(name, image, classes)? {
        Model::Vgg(m) => m.parameter_count(),
        Model::ResNet(m) => m.parameter_count(),
        Model::CifarResNet(m) => m.parameter_count(),
        Model::DenseNet(m) => m.parameter_count(),
        Model::AlexNet(m) => m.parameter_count(),
        Model::Vit(m) => m.parameter_count(),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use tch::nn::ModuleT;
    use tch::{Device, Kind, Tensor};

    /// Checks that the analytic count and the built store's trainable values both equal
    /// `published`, and that two images of shape `image` give finite logits [2, classes]
    /// in training and in evaluation mode; returns the store.
    pub(crate) fn check(name: &str, image: [i64; 3], classes: i64, published: i64) -> nn::VarStore {
        assert_eq!(parameter_count(name, image, classes).unwrap(), published);
        let vs = nn::VarStore::new(Device::Cpu);
        let (net, x) = crate::models::seeded(0, || {
            let net = build(name, &vs.root(), image, classes).unwrap();
            let x = Tensor::randn(
                [2, image[0], image[1], image[2]],
                (Kind::Float, Device::Cpu),
            );
            (net, x)
        });
        let built: i64 = vs
            .trainable_variables()
            .iter()
            .map(Tensor::numel)
            .sum::<usize>() as i64;
        assert_eq!(built, published, "{name}");
        for train in [true, false] {
            let out = tch::no_grad(|| net.forward_t(&x, train));
            assert_eq!(out.size(), [2, classes], "{name}");
            assert!(bool::try_from(out.isfinite().all()).unwrap(), "{name}");
        }
        vs
    }

    // alexnet and vit_b_16 are checked in their own modules, built once there.

    #[test]
    fn vgg11() {
        check("vgg11", [3, 32, 32], 10, 9_750_922);
    }

    #[test]
    fn resnet18() {
        check("resnet18", [3, 32, 32], 10, 11_173_962);
    }

    #[test]
    fn resnet34() {
        check("resnet34", [3, 32, 32], 10, 21_282_122);
    }

    #[test]
    fn resnet20() {
        check("resnet20", [3, 32, 32], 10, 269_722);
        check("resnet20", [1, 28, 28], 10, 269_434);
    }

    #[test]
    fn densenet121() {
        check("densenet121", [3, 32, 32], 10, 6_956_298);
    }

    #[test]
    fn resnet18_imagenet() {
        // The count does not depend on the image size; 64×64 keeps the test quick.
        check("resnet18_imagenet", [3, 64, 64], 1000, 11_689_512);
    }

    #[test]
    fn densenet121_imagenet() {
        // As for resnet18_imagenet: 64×64 keeps the test quick.
        check("densenet121_imagenet", [3, 64, 64], 1000, 7_978_856);
    }

    #[test]
    fn published_counts_are_listed() {
        for info in catalog() {
            let (image, classes) = match info.input {
                "3×32×32" => ([3, 32, 32], 10),
                "3×224×224" => ([3, 224, 224], 1000),
                other => panic!("unexpected input {other}"),
            };
            assert_eq!(
                Some(parameter_count(info.name, image, classes).unwrap()),
                info.parameters,
                "{}",
                info.name
            );
        }
    }

    #[test]
    fn the_listing_gives_the_awd_lstm_at_ptb_size() {
        let listing = describe();
        let entry = &listing[listing.find("awd_lstm\n").unwrap()..];
        assert!(
            entry.contains("1 layer 5293200, 2 layers 13632400, 3 layers 24221600 parameters"),
            "{entry}"
        );
    }

    #[test]
    fn cifar_networks_take_mnist_images() {
        for name in ["resnet18", "densenet121"] {
            let vs = nn::VarStore::new(Device::Cpu);
            let net =
                crate::models::seeded(0, || build(name, &vs.root(), [1, 28, 28], 10)).unwrap();
            let built: i64 = vs
                .trainable_variables()
                .iter()
                .map(Tensor::numel)
                .sum::<usize>() as i64;
            assert_eq!(built, parameter_count(name, [1, 28, 28], 10).unwrap());
            // Images without a channel dimension are reshaped.
            let x = Tensor::zeros([2, 28, 28], (Kind::Float, Device::Cpu));
            assert_eq!(tch::no_grad(|| net.forward_t(&x, false)).size(), [2, 10]);
        }
    }

    #[test]
    fn shapes_an_architecture_cannot_take_are_errors() {
        let error = |name, image| parameter_count(name, image, 10).unwrap_err().to_string();
        let e = error("vgg11", [1, 28, 28]);
        assert!(
            e.contains("vgg11") && e.contains("28×28") && e.contains("32 to 63"),
            "{e}"
        );
        let e = error("vit_b_16", [3, 200, 224]);
        assert!(e.contains("multiples of 16"), "{e}");
        let e = error("alexnet", [3, 62, 224]);
        assert!(e.contains("at least 63×63"), "{e}");
        let e = error("densenet121", [3, 7, 32]);
        assert!(e.contains("at least 8×8"), "{e}");
        let e = error("densenet121_imagenet", [3, 224, 28]);
        assert!(e.contains("at least 29×29"), "{e}");
        assert!(error("resnet18", [0, 32, 32]).contains("positive"));
        assert!(parameter_count("resnet18", [3, 32, 32], 0).is_err());
        let e = error("resnet50", [3, 32, 32]);
        assert!(e.contains("unknown model \"resnet50\""), "{e}");
        assert!(
            e.contains(
                "vgg11, resnet18, resnet34, resnet20, densenet121, resnet18_imagenet, alexnet, \
                 vit_b_16, densenet121_imagenet"
            ),
            "{e}"
        );
        // Building checks the same.
        let vs = nn::VarStore::new(Device::Cpu);
        assert!(build("vgg11", &vs.root(), [3, 64, 64], 10).is_err());
        assert!(vs.variables().is_empty());
    }
}
