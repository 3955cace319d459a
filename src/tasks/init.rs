//! A task's initial weights as a safetensors file whose tensor names are the model's
//! PyTorch `state_dict` names (`fc1.weight`, `layer1.0.bn1.running_mean`, …; least
//! squares' one vector is `w`): `pisa init` writes the w⁰ and batch-norm buffers a spec
//! starts from, and `train.init` starts a run from such a file, checked strictly against
//! the model.
use super::Task;
use crate::optim::layout::Layout;
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

/// PyTorch's batch-norm layers count their batches in a `<layer>.num_batches_tracked`
/// buffer, which only matters with `momentum = None` (pisa's batch norm has a fixed
/// momentum of 0.1). A file may hold it beside its layer's `running_mean`; it is skipped.
const BATCH_COUNTER: &str = "num_batches_tracked";

/// Problems listed in one error before the rest are counted.
const SHOWN: usize = 8;

/// The task's w⁰ and buffers as named tensors on the CPU: each parameter and buffer
/// under its name, with its shape.
pub fn named(task: &dyn Task) -> Vec<(String, Tensor)> {
    let (buffer_layout, buffers) = task.initial_buffers();
    let w0 = task.initial_point();
    [(task.layout(), w0), (buffer_layout, buffers)]
        .iter()
        .flat_map(|(layout, flat)| {
            layout.segments.iter().map(move |s| {
                let t = s.view(flat).to_device(Device::Cpu).contiguous();
                (s.name.clone(), t)
            })
        })
        .collect()
}

/// Writes [`named`] to `path` atomically (a temporary file beside it, then a rename).
pub fn write(task: &dyn Task, path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let file = path
        .file_name()
        .with_context(|| format!("{} is not a file name", path.display()))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        file.to_string_lossy(),
        std::process::id()
    ));
    let written = Tensor::write_safetensors(&named(task), &tmp)
        .map_err(anyhow::Error::from)
        .and_then(|()| Ok(std::fs::rename(&tmp, path)?))
        .with_context(|| format!("cannot write {}", path.display()));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Where a `train.init` file is: absolute as given, relative in the data directory (as
/// `data.path`). A missing file is an error naming where it was looked for.
pub fn locate(path: &Path, data_dir: &Path) -> Result<PathBuf> {
    let full = if path.is_absolute() {
        path.to_path_buf()
    } else {
        data_dir.join(path)
    };
    if !full.is_file() {
        bail!(
            "init file {} not found (train.init = {path:?}; a relative path is looked up in \
             the data directory {}, like data.path). Expected a safetensors file of the \
             model's state_dict, as `pisa init` writes.",
            full.display(),
            data_dir.display()
        );
    }
    Ok(full)
}

/// Reads `file` and makes its tensors the task's w⁰ and buffers. Every tensor of the model
/// must be there with the model's shape and the run's dtype, and nothing else except
/// PyTorch's batch counters ([`BATCH_COUNTER`]); otherwise the error names the file and
/// each offending tensor.
pub fn load(task: &mut dyn Task, file: &Path) -> Result<()> {
    let shown = file.display();
    let mut given: BTreeMap<String, Tensor> = Tensor::read_safetensors(file)
        .with_context(|| format!("cannot read init file {shown} (train.init) as safetensors"))?
        .into_iter()
        .collect();
    let (buffer_layout, start_buffers) = task.initial_buffers();
    let w0 = task.initial_point();
    let (kind, device) = (w0.kind(), w0.device());
    let mut problems = vec![];
    let mut take = |layout: &Layout| -> Vec<Tensor> {
        let mut out = vec![];
        for s in &layout.segments {
            let Some(t) = given.remove(&s.name) else {
                problems.push(format!("tensor `{}` {:?} is missing", s.name, s.shape));
                continue;
            };
            if t.size() != s.shape {
                problems.push(format!(
                    "tensor `{}` is {:?}, but the model's is {:?}",
                    s.name,
                    t.size(),
                    s.shape
                ));
            } else if t.kind() != kind {
                problems.push(format!(
                    "tensor `{}` is {}, but the run trains in {} (train.dtype)",
                    s.name,
                    kind_name(t.kind()),
                    kind_name(kind)
                ));
            }
            out.push(t.reshape([-1]));
        }
        out
    };
    let params = take(&task.layout());
    let buffers = take(&buffer_layout);
    let counters: Vec<String> = buffer_layout
        .segments
        .iter()
        .filter_map(|s| s.name.strip_suffix("running_mean"))
        .map(|layer| format!("{layer}{BATCH_COUNTER}"))
        .collect();
    for name in given.keys().filter(|name| !counters.contains(name)) {
        problems.push(format!("tensor `{name}` is not in the model"));
    }
    if !problems.is_empty() {
        let more = problems.len().saturating_sub(SHOWN);
        problems.truncate(SHOWN);
        if more > 0 {
            problems.push(format!("and {more} more"));
        }
        bail!(
            "init file {shown} (train.init) does not fit the model: {}. `pisa init SPEC --out \
             FILE` writes the tensors the model expects.",
            problems.join("; ")
        );
    }
    let flat = |parts: &[Tensor], empty: &Tensor| {
        if parts.is_empty() {
            empty.shallow_clone()
        } else {
            Tensor::cat(parts, 0).to_device(device)
        }
    };
    task.set_initial(&flat(&params, &w0), &flat(&buffers, &start_buffers))
        .with_context(|| format!("init file {shown} (train.init)"))
}

/// The spec's name of a dtype (`train.dtype`), or libtorch's.
fn kind_name(kind: Kind) -> String {
    match kind {
        Kind::Double => "f64".into(),
        Kind::Float => "f32".into(),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::classification::{Classification, Config, Examples};
    use tch::nn;

    /// 2 → batch norm → linear 2: parameters and running statistics.
    fn batch_norm_task(seed: u64) -> Classification {
        let x = Tensor::arange(64, (Kind::Double, Device::Cpu))
            .remainder(7)
            .view([32, 2]);
        let y = Tensor::arange(32, (Kind::Int64, Device::Cpu)).remainder(2);
        let examples = || Examples {
            x: x.shallow_clone(),
            y: y.shallow_clone(),
        };
        Classification::new(
            examples(),
            examples(),
            |p| {
                nn::seq_t()
                    .add(nn::batch_norm1d(p / "bn", 2, Default::default()))
                    .add(crate::models::mlp::linear(&(p / "fc"), 2, 2))
            },
            Config::new(2, 4, seed, Kind::Double, Device::Cpu),
        )
        .unwrap()
    }

    #[test]
    fn written_weights_start_another_task_at_the_same_point_with_its_buffers() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("init.safetensors");
        let mut source = batch_norm_task(1);
        // Move the running statistics away from (0, 1).
        let w = source.initial_point();
        source.local(0, &w, false).unwrap();
        let (layout, moved) = source.initial_buffers();
        source.set_initial(&w, &moved).unwrap();
        write(&source, &file).unwrap();
        let names: Vec<String> = named(&source).into_iter().map(|(n, _)| n).collect();
        let expected = [
            "bn.weight",
            "bn.bias",
            "fc.weight",
            "fc.bias",
            "bn.running_mean",
            "bn.running_var",
        ];
        assert_eq!(names, expected);
        assert_eq!(layout.names(), expected[4..]);

        let mut target = batch_norm_task(2);
        assert!(!target.initial_point().equal(&w));
        assert!(!target.initial_buffers().1.equal(&moved));
        load(&mut target, &file).unwrap();
        assert!(target.initial_point().equal(&w));
        assert!(target.initial_buffers().1.equal(&moved));
        // The test split's loss and accuracy (the training rows' order, hence the sums
        // behind train_loss, follows each task's seed).
        let (a, b) = (target.evaluate(&w).unwrap(), source.evaluate(&w).unwrap());
        assert_eq!(a[2..], b[2..]);
    }

    #[test]
    fn pytorchs_batch_counters_are_skipped_and_other_extras_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let source = batch_norm_task(1);
        let with = |extra: &str| {
            let mut tensors = named(&source);
            tensors.push((extra.to_string(), Tensor::from(3i64)));
            let file = dir.path().join(format!("{extra}.safetensors"));
            Tensor::write_safetensors(&tensors, &file).unwrap();
            let mut target = batch_norm_task(2);
            load(&mut target, &file).map(|()| target.initial_point())
        };
        assert!(with("bn.num_batches_tracked")
            .unwrap()
            .equal(&source.initial_point()));
        let e = format!("{:#}", with("fc.num_batches_tracked").unwrap_err());
        assert!(
            e.contains("tensor `fc.num_batches_tracked` is not in the model"),
            "{e}"
        );
    }
}
