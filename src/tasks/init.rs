//! A task's initial weights as a safetensors file whose tensor names are the model's
//! PyTorch `state_dict` names (`fc1.weight`, `layer1.0.bn1.running_mean`, …; least
//! squares' one vector is `w`): `pisa init` writes the w⁰ and batch-norm buffers a spec
//! starts from, and `train.init` starts a run from such a file, checked strictly against
//! the model.
use super::Task;
use crate::optim::layout::Layout;
use anyhow::{bail, ensure, Context, Result};
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

/// Whose weights a file is meant to hold, for the errors of [`read`].
#[derive(Debug, Clone, Copy)]
pub struct Role<'a> {
    /// What the file is, e.g. "init file" (the error names the file after it).
    pub what: &'a str,
    /// The setting that named the file, e.g. "train.init"; empty when none did.
    pub key: &'a str,
    /// Who sets the model's dtype, e.g. "the run trains in", and the setting that does
    /// ("train.dtype", or empty): a kind mismatch reads "tensor `x` is f32, but the run
    /// trains in f64 (train.dtype)".
    pub dtype: (&'a str, &'a str),
    /// Appended to a mismatch: how to get a file that fits.
    pub hint: &'a str,
}

/// `train.init`'s file, as `pisa init` writes it.
const TRAIN_INIT: Role = Role {
    what: "init file",
    key: "train.init",
    dtype: ("the run trains in", "train.dtype"),
    hint: ". `pisa init SPEC --out FILE` writes the tensors the model expects.",
};

impl Role<'_> {
    fn describe(&self, file: &Path) -> String {
        match self.key {
            "" => format!("{} {}", self.what, file.display()),
            key => format!("{} {} ({key})", self.what, file.display()),
        }
    }
}

/// Reads the tensors of `file` for a model whose parameters are laid out as `params` and
/// whose buffers as `buffers`, all of `kind`, and returns them flat in those layouts
/// ([P] and [B], on the CPU). Every tensor of the model must be there with the model's
/// shape and kind, and nothing else except PyTorch's batch counters ([`BATCH_COUNTER`]);
/// otherwise the error names the file (as `role` describes it) and each offending tensor.
pub fn read(
    file: &Path,
    role: Role,
    params: &Layout,
    buffers: &Layout,
    kind: Kind,
) -> Result<(Tensor, Tensor)> {
    let shown = role.describe(file);
    let mut given: BTreeMap<String, Tensor> = Tensor::read_safetensors(file)
        .with_context(|| format!("cannot read {shown} as safetensors"))?
        .into_iter()
        .collect();
    let mut problems = vec![];
    let mut take = |layout: &Layout| -> Tensor {
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
                let (who, key) = role.dtype;
                let key = if key.is_empty() {
                    String::new()
                } else {
                    format!(" ({key})")
                };
                problems.push(format!(
                    "tensor `{}` is {}, but {who} {}{key}",
                    s.name,
                    kind_name(t.kind()),
                    kind_name(kind)
                ));
            }
            out.push(t.reshape([-1]));
        }
        if out.is_empty() {
            Tensor::zeros([0], (kind, Device::Cpu))
        } else {
            Tensor::cat(&out, 0)
        }
    };
    let w = take(params);
    let b = take(buffers);
    let counters: Vec<String> = buffers
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
            "{shown} does not fit the model: {}{}",
            problems.join("; "),
            role.hint
        );
    }
    Ok((w, b))
}

/// Reads `file` ([`read`]) and makes its tensors the task's w⁰ and buffers, of the run's
/// dtype (`train.dtype`).
pub fn load(task: &mut dyn Task, file: &Path) -> Result<()> {
    let buffer_layout = task.initial_buffers().0;
    let w0 = task.initial_point();
    let (w, buffers) = read(file, TRAIN_INIT, &task.layout(), &buffer_layout, w0.kind())?;
    let device = w0.device();
    task.set_initial(&w.to_device(device), &buffers.to_device(device))
        .with_context(|| TRAIN_INIT.describe(file))
}

/// Writes the weights a finished (or checkpointed) run reached, in the format of [`write`]:
/// the w of `run_dir`'s last checkpoint (`optimizer.w`) and worker 0's batch-norm
/// statistics (`task.model_state`'s first row, which evaluation uses), on the task its
/// `spec.toml` describes (its data looked up in `data_dir`). `pisa export` runs it.
pub fn export(run_dir: &Path, data_dir: &Path, out: &Path) -> Result<()> {
    let spec_file = run_dir.join(crate::results::SPEC_FILE);
    let spec = crate::spec::Spec::load(&spec_file, &[])?.resolved();
    let checkpoint_file = run_dir.join(crate::results::checkpoint::CHECKPOINT_FILE);
    ensure!(
        checkpoint_file.is_file(),
        "{} not found: a run keeps the weights it reached only in its checkpoint (set \
         train.checkpoint_every, e.g. \"epoch\")",
        checkpoint_file.display()
    );
    let checkpoint = crate::results::checkpoint::load(&checkpoint_file)?;
    let data = super::from_spec::locate_data(&spec, data_dir)?;
    let device = spec.train.device()?;
    let mut task = super::from_spec::build(&spec, data_dir, data.as_deref(), device)?.task;
    let shown = checkpoint_file.display();
    let numel = task.layout().numel();
    let w = checkpoint
        .optimizer
        .get("w")
        .with_context(|| format!("{shown} holds no optimizer.w"))?;
    ensure!(
        w.size() == [numel],
        "{shown}: optimizer.w is {:?}, but the model of {} has {numel} parameters",
        w.size(),
        spec_file.display()
    );
    let (_, start_buffers) = task.initial_buffers();
    let buffers = match checkpoint.task.get("model_state") {
        Some(rows) => rows.get(0),
        None => start_buffers,
    };
    ensure!(
        buffers.size() == task.initial_buffers().1.size(),
        "{shown}: task.model_state rows are {:?}, but the model has {:?} buffer values",
        buffers.size(),
        task.initial_buffers().1.size()
    );
    task.set_initial(&w.to_device(device), &buffers.to_device(device))?;
    write(task.as_ref(), out)
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
