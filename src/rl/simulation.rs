//! A MuJoCo model and its data, stepped as gymnasium's `MujocoEnv` (gymnasium/envs/mujoco/
//! mujoco_env.py) steps them: `frame_skip` calls of `mj_step` per environment step, then
//! `mj_rnePostConstraint` so that the contact forces `cfrc_ext` are current.
//!
//! A [`Simulation::snapshot`] is exact: the environments read quantities MuJoCo derives
//! while stepping (`xpos`, `xipos`, `site_xpos`, `cfrc_ext`), which come from the last
//! `mj_step`'s forward pass and which `mj_setState` does not set, so a snapshot keeps the
//! integration state from before that `mj_step` and a restore repeats it.
use anyhow::{bail, ensure, Context, Result};
use mujoco_rs::wrappers::mj_data::{MjData, MjtState};
use mujoco_rs::wrappers::mj_model::{MjModel, MjtObjBase};
use std::path::{Path, PathBuf};

/// Where the installed gymnasium wheel keeps its MuJoCo model XMLs, below site-packages.
const ASSETS: &str = "gymnasium/envs/mujoco/assets";

/// The model of one environment and its simulation state.
pub struct Simulation {
    data: MjData<Box<MjModel>>,
    frame_skip: usize,
    /// The state a fresh `MjData` starts in (the model's `qpos0`, zero velocities): gymnasium's
    /// `init_qpos` and `init_qvel`, to which reset noise is added.
    init_qpos: Vec<f64>,
    init_qvel: Vec<f64>,
    /// The integration state (`mjSTATE_INTEGRATION`) before the last `mj_step` of the latest
    /// [`Self::do_simulation`], valid while `stepped`; allocated once.
    pre_step: Vec<f64>,
    /// A step has run since the last reset.
    stepped: bool,
}

/// The state spec a snapshot holds: time, qpos, qvel, act, warm start, controls, applied
/// forces, mocap, equality activations, userdata, plugin state.
const INTEGRATION: u32 = MjtState::mjSTATE_INTEGRATION as u32;

impl Simulation {
    /// Loads gymnasium's model `xml` (`"ant.xml"`) from the installed wheel
    /// ([`locate_asset`]), to be stepped `frame_skip` times per environment step.
    pub fn load(xml: &str, frame_skip: usize) -> Result<Self> {
        ensure!(frame_skip > 0, "frame_skip must be positive");
        let path = locate_asset(xml)?;
        let model = MjModel::from_xml(&path)
            .with_context(|| format!("MuJoCo could not load {}", path.display()))?;
        let data = MjData::new(Box::new(model));
        Ok(Self {
            init_qpos: data.qpos().to_vec(),
            init_qvel: data.qvel().to_vec(),
            pre_step: vec![0.0; data.model().state_size(INTEGRATION)],
            stepped: false,
            data,
            frame_skip,
        })
    }

    /// The environment's time step: the model's timestep times `frame_skip` (`MujocoEnv.dt`).
    pub fn dt(&self) -> f64 {
        self.model().opt().timestep * self.frame_skip as f64
    }

    pub fn model(&self) -> &MjModel {
        self.data.model()
    }

    pub fn data(&self) -> &MjData<Box<MjModel>> {
        &self.data
    }

    pub fn init_qpos(&self) -> &[f64] {
        &self.init_qpos
    }

    pub fn init_qvel(&self) -> &[f64] {
        &self.init_qvel
    }

    /// The id of body `name`, for an environment to read its position.
    pub fn body(&self, name: &str) -> Result<usize> {
        self.model()
            .name_to_id(MjtObjBase::mjOBJ_BODY, name)
            .with_context(|| format!("the model has no body named {name:?}"))
    }

    /// The action space from the actuators' control ranges, cast to float32 as
    /// `MujocoEnv._set_action_space` does.
    pub fn action_bounds(&self) -> Vec<(f64, f64)> {
        self.model()
            .actuator_ctrlrange()
            .iter()
            .map(|&[low, high]| (f64::from(low as f32), f64::from(high as f32)))
            .collect()
    }

    /// Starts from joint positions `qpos` and velocities `qvel`: `mj_resetData` (gymnasium's
    /// `reset`, which also clears the solver's warm start `qacc_warmstart`), then `set_state`:
    /// the state copied in and `mj_forward`.
    pub fn reset_to(&mut self, qpos: &[f64], qvel: &[f64]) -> Result<()> {
        let (nq, nv) = (self.init_qpos.len(), self.init_qvel.len());
        ensure!(
            qpos.len() == nq && qvel.len() == nv,
            "a state of this model has {nq} positions and {nv} velocities, not {} and {}",
            qpos.len(),
            qvel.len()
        );
        ensure!(
            qpos.iter().chain(qvel).all(|v| v.is_finite()),
            "the initial state is not finite"
        );
        self.data.reset();
        self.data.qpos_mut().copy_from_slice(qpos);
        self.data.qvel_mut().copy_from_slice(qvel);
        self.data.forward();
        self.stepped = false;
        Ok(())
    }

    /// One environment step under controls `ctrl` (`MujocoEnv.do_simulation`): the controls
    /// set once, `frame_skip` × `mj_step`, then `mj_rnePostConstraint`. The state before the
    /// last `mj_step` is kept for [`Self::snapshot`].
    pub fn do_simulation(&mut self, ctrl: &[f64]) -> Result<()> {
        let nu = self.data.ctrl().len();
        ensure!(
            ctrl.len() == nu,
            "action dimension mismatch: expected {nu}, found {}",
            ctrl.len()
        );
        ensure!(
            ctrl.iter().all(|v| v.is_finite()),
            "the action {ctrl:?} is not finite"
        );
        self.data.ctrl_mut().copy_from_slice(ctrl);
        for _ in 1..self.frame_skip {
            self.data.step();
        }
        self.data.read_state_into(INTEGRATION, &mut self.pre_step);
        self.data.step();
        self.data.rne_post_constraint();
        self.stepped = true;
        Ok(())
    }

    /// The length of a [`Self::snapshot`]: one flag and the model's `mj_stateSize` of
    /// `mjSTATE_INTEGRATION`.
    pub fn snapshot_len(&self) -> usize {
        1 + self.pre_step.len()
    }

    /// The whole simulation state, `[stepped, state…]`: after a step (`stepped` 1), the
    /// integration state before its last `mj_step`; otherwise (0) the current one.
    pub fn snapshot(&self) -> Vec<f64> {
        let mut snapshot = vec![0.0; self.snapshot_len()];
        if self.stepped {
            snapshot[0] = 1.0;
            snapshot[1..].copy_from_slice(&self.pre_step);
        } else {
            self.data.read_state_into(INTEGRATION, &mut snapshot[1..]);
        }
        snapshot
    }

    /// Returns to a [`Self::snapshot`] of this model: `mj_resetData` and `mj_setState`, then
    /// what had run on that state: `mj_step` and `mj_rnePostConstraint` after a step,
    /// `mj_forward` after a reset. Every derived quantity is then as it was. A snapshot of
    /// another length, not finite or without its flag is an error that changes nothing.
    pub fn restore(&mut self, snapshot: &[f64]) -> Result<()> {
        let len = self.snapshot_len();
        ensure!(
            snapshot.len() == len,
            "a simulation snapshot of this model has {len} values, not {}",
            snapshot.len()
        );
        ensure!(
            snapshot.iter().all(|v| v.is_finite()),
            "the simulation snapshot is not finite"
        );
        let stepped = match snapshot[0] {
            0.0 => false,
            1.0 => true,
            flag => bail!("a simulation snapshot starts with 0 (reset) or 1 (stepped), not {flag}"),
        };
        let state = &snapshot[1..];
        self.data.reset();
        self.data
            .set_state(state, INTEGRATION)
            .context("MuJoCo refused the snapshot's state")?;
        if stepped {
            self.pre_step.copy_from_slice(state);
            self.data.step();
            self.data.rne_post_constraint();
        } else {
            self.data.forward();
        }
        self.stepped = stepped;
        Ok(())
    }

    /// qpos and qvel are finite (`np.isfinite(self.state_vector()).all()`).
    pub fn state_is_finite(&self) -> bool {
        self.data
            .qpos()
            .iter()
            .chain(self.data.qvel())
            .all(|v| v.is_finite())
    }
}

/// The path of gymnasium's model `xml` in the venv ([`crate::venv::root`]), under
/// `lib/python3*/site-packages/gymnasium/envs/mujoco/assets/`.
pub fn locate_asset(xml: &str) -> Result<PathBuf> {
    let pattern = crate::venv::root()?
        .join(crate::venv::SITE_PACKAGES)
        .join(ASSETS)
        .join(xml);
    crate::venv::first_match(&pattern, Path::is_file).with_context(|| {
        format!(
            "gymnasium's model {xml} not found at {}: it comes with the gymnasium wheel that \
                 scripts/env.sh installs (`. scripts/env.sh`, or `pip install \
                 'gymnasium[mujoco]==1.4.0'` in that venv)",
            pattern.display()
        )
    })
}
